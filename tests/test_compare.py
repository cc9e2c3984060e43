"""`bft compare` end to end on a tiny model, its resume path, and the report's statistics."""

import json
import math
import shutil
from pathlib import Path

import pytest
import yaml

from bft import compare
from bft.cli import main
from bft.compare import builds, evaluations, plan, report, reuse, runs
from bft.compare.report import paired_difference, t_interval
from bft.errors import InputError
from bft.eval.tasks import TASKS
from tests.conftest import SHARED_DATA


def test_statistics_hand_computed():
    interval = t_interval([1.0, 2.0, 3.0])  # sd 1, t(0.975, 2) = 4.3027
    assert interval["mean"] == 2.0 and interval["n"] == 3
    assert interval["ci_high"] - 2.0 == pytest.approx(4.302653 / math.sqrt(3), rel=1e-5)
    single = t_interval([0.7])
    assert single["mean"] == 0.7 and math.isnan(single["ci_low"])
    # paired by seed: differences 0.1, 0.3 (seed 2 only in one) -> mean 0.2, sd 0.1414, t(0.975, 1) = 12.706
    difference = paired_difference({0: 0.5, 1: 0.6, 2: 0.9}, {0: 0.4, 1: 0.3})
    assert difference["mean"] == pytest.approx(0.2) and difference["n"] == 2
    assert difference["ci_high"] - 0.2 == pytest.approx(12.7062 * 0.141421 / math.sqrt(2), rel=1e-4)


def test_the_report_says_what_was_run():
    """report.md names the model, data and training every method shares, each method's own settings (of the methods
    run), and each evaluation with the items it scored, so that the tables below read on their own."""
    recipe = {"name": "tiny", "loss_types": ["dft"], "evaluate_base": True,
              "variants": {"bft-lr2e-3": {"loss_type": "bft", "learning_rate": 0.002},
                           "bft-floor0.1": {"loss_type": "bft", "token_weight_floor": 0.1}},
              "train": {"model_name_or_path": "smollm2-135m-instruct", "data": "facts/train.jsonl", "max_steps": 2,
                        "learning_rate": 0.001, "padding_free": True, "report_to": ["none"]},
              "evaluations": [{"task": "mcq", "data": "medqa/test.jsonl", "limit": 4}, {"task": "pubmedqa"}]}
    scored = {"mcq-medqa": {"accuracy": {"1": 1.0, "2": 0.0, "3": 1.0, "4": 0.0}}}
    runs = {"dft-seed0": {"method": "dft", "item_scores": scored}, "bft-lr2e-3-seed0": {"method": "bft-lr2e-3"},
            "base-seed0": {"method": "base"}}
    text = report.markdown({"config": "tiny", "seeds": [0], "recipe": recipe, "runs": runs, "tables": {}})
    setup = text[text.index("## Setup"):].split("\n\n")[1].splitlines()
    assert setup == [
        "- Training: model_name_or_path: smollm2-135m-instruct, data: facts/train.jsonl, max_steps: 2, "
        "learning_rate: 0.001, padding_free: true, report_to: [\"none\"]",
        "- Methods (their settings replace the training's):", "  - dft: loss_type: dft",
        "  - bft-lr2e-3: loss_type: bft, learning_rate: 0.002", "  - base: the untrained model",
        "- Evaluations:", "  - mcq-medqa: mcq, data: medqa/test.jsonl, limit: 4 (4 items)", "  - pubmedqa: pubmedqa"]


def tiny_inputs(tmp_path, demo_records):
    """Six training examples and four two-option questions."""
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in demo_records[:6]))
    questions = tmp_path / "mcq" / "test.jsonl"
    questions.parent.mkdir()
    questions.write_text("".join(json.dumps({"question": f"Gene {i}?", "options": {"A": "TP53", "B": "EGFR"},
                                             "answer_idx": "AB"[i % 2]}) + "\n" for i in range(4)))
    return data, questions


def test_compare_end_to_end_and_resume(tiny_model, tmp_path, demo_records, monkeypatch, caplog, capsys):
    data, questions = tiny_inputs(tmp_path, demo_records)
    recipe = tmp_path / "compare.yaml"
    recipe.write_text(yaml.safe_dump({
        "name": "tiny", "loss_types": ["dft", "bft"], "seeds": [0, 1], "evaluate_base": True,
        "baselines": ["dft", "base"],
        "train": {"model_name_or_path": tiny_model, "data": str(data), "max_steps": 2, "per_device_train_batch_size": 3,
                  "logging_steps": 1, "report_to": "none", "save_strategy": "steps", "save_steps": 1,
                  "disable_tqdm": True, "activation_checkpointing": False, "bft_group_size": 4, "learning_rate": 1e-3},
        "evaluations": [{"task": "mcq", "data": str(questions)}],
    }))
    out = tmp_path / "cmp"
    caplog.set_level("INFO", logger="bft.compare")
    assert main(["compare", "--config", str(recipe), "--output", str(out)]) == 0
    assert "run 1 of 4: dft-seed0" in caplog.text and "run 4 of 4: bft-seed1" in caplog.text
    report = json.loads((out / "report.json").read_text())
    assert sorted(report["runs"]) == ["base-seed0", "base-seed1", "bft-seed0", "bft-seed1", "dft-seed0", "dft-seed1"]
    assert not list((out / "runs").glob("*/checkpoint-*"))  # a finished run keeps its final model only
    table = report["tables"]["mcq-mcq"]["accuracy"]
    assert set(table["methods"]) == {"base", "dft", "bft"}
    assert set(table["differences"]) == {"bft - dft", "bft - base"}
    # the untrained model, evaluated once: the same score at every seed
    base = json.loads((out / "evals" / "base" / "mcq-mcq" / "results.json").read_text())["accuracy"]
    assert table["methods"]["base"] == {"mean": base, "ci_low": base, "ci_high": base, "n": 2}
    bft_scores = [report["runs"][f"bft-seed{s}"]["scores"]["mcq-mcq"]["accuracy"] for s in (0, 1)]
    assert table["methods"]["bft"]["mean"] == pytest.approx(sum(bft_scores) / 2)
    # the bootstrap over seeds and items: its mean is the mean paired difference
    assert table["bootstrap"]["bft - dft"]["mean"] == pytest.approx(table["differences"]["bft - dft"]["mean"])
    assert table["bootstrap"]["bft - dft"]["items"] == 4 and table["bootstrap"]["bft - dft"]["seeds"] == 2
    assert "| bft - dft |" in (out / "report.md").read_text()
    assert "| bft - dft (bootstrap over seeds and items) |" in (out / "report.md").read_text()
    assert f"  - mcq-mcq: mcq, data: {questions} (4 items)" in (out / "report.md").read_text()
    for plot in ("loss_curves.png", "bft_weights.png", "scores.png"):
        assert (out / plot).stat().st_size > 1000
    # the two seeds really are different runs, and the methods different losses
    logs = {name: json.loads((out / "runs" / name / "log_history.json").read_text())[0]["loss"]
            for name in report["runs"] if not name.startswith("base")}
    assert logs["bft-seed0"] != logs["dft-seed0"]

    # resume: a killed comparison reuses what is finished (here: everything but one evaluation)
    (out / "evals" / "bft-seed1" / "mcq-mcq" / "results.json").unlink()
    evaluated = []
    monkeypatch.setattr("bft.train.run_training", lambda *a: pytest.fail("a finished run was trained again"))
    real_evaluate = evaluations._evaluate
    monkeypatch.setattr(evaluations, "_evaluate", lambda *a: evaluated.append(a) or real_evaluate(*a))
    # --plan runs nothing and lists what is left to do
    capsys.readouterr()
    assert main(["compare", "--config", str(recipe), "--output", str(out), "--plan"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["runs"]["base"] == {"training": "untrained model", "evaluations": {"mcq-mcq": "done"}}
    assert plan["runs"]["bft-seed0"] == {"training": "finished", "evaluations": {"mcq-mcq": "done"}}
    assert plan["runs"]["bft-seed1"] == {"training": "finished", "evaluations": {"mcq-mcq": "to evaluate"}}
    assert sorted(plan["runs"]) == ["base", "bft-seed0", "bft-seed1", "dft-seed0", "dft-seed1"] and not evaluated
    assert plan["in all"] == {"runs": {"finished": 4}, "evaluations": {"done": 4, "to evaluate": 1}}
    assert main(["compare", "--config", str(recipe), "--output", str(out)]) == 0
    assert len(evaluated) == 1 and str(evaluated[0][1]).endswith("bft-seed1/mcq-mcq")
    # --methods: runs (here: reuses) and reports those methods only
    assert main(["compare", "--config", str(recipe), "--output", str(out), "--methods", "bft"]) == 0
    assert sorted(json.loads((out / "report.json").read_text())["runs"]) == ["base-seed0", "base-seed1", "bft-seed0",
                                                                            "bft-seed1"]
    # with every run and evaluation done, the inputs are not read again: a comparison moved without them reports
    hidden = tmp_path / "hidden"
    hidden.mkdir()
    for path in (data, questions):
        path.rename(hidden / path.name)
    assert main(["compare", "--config", str(recipe), "--output", str(out)]) == 0
    for path in (data, questions):
        (hidden / path.name).rename(path)

    # each evaluation's record says what made it: the model (a run by its name and fingerprint) and the options
    assert yaml.safe_load((out / "evals" / "base" / "mcq-mcq" / "evaluation.yaml").read_text()) == {
        "model": tiny_model, "data": str(questions), "task": "mcq"}
    assert yaml.safe_load((out / "evals" / "bft-seed1" / "mcq-mcq" / "evaluation.yaml").read_text()) == {
        "model": "bft-seed1", "run": reuse.fingerprint(out / "runs" / "bft-seed1"), "data": str(questions),
        "task": "mcq"}
    # an edited recipe: a run trained otherwise fails before anything runs, instead of being reported under the new
    # settings; evaluations made with other options are evaluated again
    report = (out / "report.json").read_text()
    edited = yaml.safe_load(recipe.read_text())
    edited["train"]["learning_rate"] = 2e-3
    recipe.write_text(yaml.safe_dump(edited))
    assert main(["compare", "--config", str(recipe), "--output", str(out)]) == 2
    error = capsys.readouterr().err
    assert f"{out / 'runs' / 'dft-seed0'} was trained with other settings than the recipe's (learning_rate: 0.001 " \
           "there, 0.002 in the recipe)" in error
    assert (out / "report.json").read_text() == report and len(evaluated) == 1
    edited["train"]["learning_rate"] = 1e-3
    edited["evaluations"][0]["limit"] = 2
    recipe.write_text(yaml.safe_dump(edited))
    assert main(["compare", "--config", str(recipe), "--output", str(out), "--methods", "bft"]) == 0
    assert len(evaluated) == 1 + 3  # base and the two bft runs
    assert json.loads((out / "evals" / "bft-seed0" / "mcq-mcq" / "results.json").read_text())["n"] == 2


def test_bad_recipe(tmp_path, capsys):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text(yaml.safe_dump({"train": {}, "evaluations": [{"task": "chess"}]}))
    assert main(["compare", "--config", str(recipe), "--output", str(tmp_path / "o")]) == 2
    assert f"unknown evaluation task 'chess': expected one of {', '.join(TASKS)}" in capsys.readouterr().err
    # a misspelt top-level key fails instead of being ignored (here it would keep every run's checkpoints)
    recipe.write_text(yaml.safe_dump({"train": {}, "keep_checkpoint": True, "seed": [0]}))
    assert main(["compare", "--config", str(recipe), "--output", str(tmp_path / "o")]) == 2
    error = capsys.readouterr().err
    assert "unknown keys 'keep_checkpoint', 'seed'" in error and "keep_checkpoints" in error
    # so does a misspelt evaluation option (here the profiles would silently keep their default length)
    recipe.write_text(yaml.safe_dump({"train": {}, "evaluations": [{"task": "represent", "max_new_token": 96}]}))
    assert main(["compare", "--config", str(recipe), "--output", str(tmp_path / "o")]) == 2
    error = capsys.readouterr().err
    assert "evaluation 'represent' (task represent): unknown option 'max_new_token'" in error
    assert "max_new_tokens" in error
    # two evaluations with one results folder would overwrite each other's results and table
    recipe.write_text(yaml.safe_dump({"train": {}, "evaluations": [{"task": "mcq", "data": "a/test/q.jsonl"},
                                                                   {"task": "mcq", "data": "b/test/q.jsonl"}]}))
    assert main(["compare", "--config", str(recipe), "--output", str(tmp_path / "o")]) == 2
    assert "share the results folder and table 'mcq-test': give each a distinct `name`" in capsys.readouterr().err
    # no recipe: only --archive does without one; an archive needs a comparison's folder
    assert main(["compare", "--output", str(tmp_path / "o")]) == 2
    assert "--config is required (only --archive does without it)" in capsys.readouterr().err
    assert main(["compare", "--output", str(tmp_path), "--archive", str(tmp_path.parent / "kept")]) == 2
    assert "not a comparison's output folder (it has no runs/ or evals/)" in capsys.readouterr().err


@pytest.mark.parametrize("variant, message", [
    ({"loss_type": "bft", "bft_group_sise": 4}, "bft_group_sise"),  # a misspelt field
    ({"loss_type": "bft", "packing": True, "track_sample_weights": True}, "packing"),  # settings that exclude another
])
def test_bad_variant_fails_before_any_run(tiny_model, tmp_path, capsys, monkeypatch, variant, message):
    recipe = tmp_path / "compare.yaml"
    recipe.write_text(yaml.safe_dump({
        "loss_types": ["nll", "bft"], "seeds": [0],
        "train": {"model_name_or_path": tiny_model, "data": "demo", "max_steps": 1, "report_to": "none"},
        "variants": {"bft-g4": variant},
        "evaluations": [{"task": "mcq", "data": "q.jsonl"}],
    }))
    monkeypatch.setattr("bft.train.run_training", lambda *a: pytest.fail("trained before checking every method"))
    assert main(["compare", "--config", str(recipe), "--output", str(tmp_path / "o")]) == 2
    error = capsys.readouterr().err
    assert "method 'bft-g4'" in error and message in error
    assert not (tmp_path / "o" / "runs").exists()


# (what the recipe changes, what the one-line error must say): each found before any run trains
RECIPE_FAULTS = [
    ({"variants": {"nll": {"loss_type": "bft"}}}, "variant 'nll' has a loss type's name"),
    ({"baselines": ["nll", "nope"]}, "baselines 'nope' are no method of the recipe"),
    ({"seeds": [0, -1]}, "each of seeds must be a whole number in [0, 4294967295], got -1"),
    ({"variants": {"fast": {"loss_type": "bft", "learning_rate": "fast"}}},
     "method 'fast': bad training settings: learning_rate must be at least 0, got 'fast'"),
    ({"variants": {"bad": {"loss_type": "bft", "per_device_train_batch_size": 0}}},
     "method 'bad': bad training settings: per_device_train_batch_size must be a whole number at least 1, got 0"),
    ({"variants": {"other": {"loss_type": "bft", "model_name_or_path": "./no-such-model"}}},
     "method 'other': model ./no-such-model not found"),
    ({"variants": {"other": {"loss_type": "bft", "data": "{bad_data}"}}}, "method 'other': {bad_data}:1: expected"),
    ({"variants": {"misspelt": {"loss_type": "bft", "learning_rte": 1.0e-4}}},
     "method 'misspelt': unknown setting(s) learning_rte (did you mean learning_rate?)"),
    ({"grpo": {"data": "{questions}", "lerning_rate": 1.0e-4}}, "grpo: unknown setting(s) lerning_rate (did you mean "
                                                                 "learning_rate?) (`bft grpo --help` lists them)"),
    ({"variants": {"typo": {"loss_type": "bft", "data": "data/go-tny"}}},
     "method 'typo': data/go-tny: file or dataset not found (nor in the hub's cache"),
    ({"evaluations": [{"task": "mcq", "data": "absent.jsonl"}]},
     "evaluation 'mcq-absent': absent.jsonl: file not found"),
    ({"evaluations": [{"task": "mcq", "data": "{questions}", "limit": 1.5}]},
     "evaluation 'mcq-mcq' (task mcq): limit must be a whole number at least 1, got 1.5"),
    ({"evaluations": [{"task": "mcq", "data": "{questions}", "batch_size": "abc"}]},
     "evaluation 'mcq-mcq' (task mcq): batch_size must be a whole number at least 1, got 'abc'"),
    ({"build": {"builder": "go-naming", "output": "{out}/data", "limit": "ten"}},
     "build 'go-naming': limit must be a whole number at least 1, got 'ten'"),
    ({"variants": {"split": {"loss_type": "bft", "packing": True, "packing_strategy": "bfd_split"}}},
     "method 'split': bad training settings: loss_type='bft' cannot use packing_strategy='bfd_split'"),
    ({"grpo": {"data": "absent-prompts.jsonl"}}, "method 'nll': absent-prompts.jsonl: file not found"),
]


@pytest.mark.parametrize("change, message", RECIPE_FAULTS, ids=[fault[1].split(":")[0] for fault in RECIPE_FAULTS])
def test_recipe_faults_fail_before_any_run(tiny_model, tmp_path, demo_records, capsys, monkeypatch, change, message):
    data, questions = tiny_inputs(tmp_path, demo_records)
    bad_data = tmp_path / "bad.jsonl"
    bad_data.write_text(json.dumps({"question": "q", "answer": "a"}) + "\n")
    out = tmp_path / "o"
    values = {"bad_data": str(bad_data), "questions": str(questions), "out": str(out)}
    recipe = {"loss_types": ["nll", "bft"], "seeds": [0],
              "train": {"model_name_or_path": tiny_model, "data": str(data), "max_steps": 1, "report_to": "none"},
              "evaluations": [{"task": "mcq", "data": str(questions)}], **json.loads(
                  json.dumps(change).replace("{bad_data}", values["bad_data"]).replace(
                      "{questions}", values["questions"]).replace("{out}", values["out"]))}
    path = tmp_path / "compare.yaml"
    path.write_text(yaml.safe_dump(recipe))
    monkeypatch.setattr("bft.train.run_training", lambda *a: pytest.fail("trained before checking the recipe"))
    for only_plan in ([], ["--plan"]):
        assert main(["compare", "--config", str(path), "--output", str(out), *only_plan]) == 2
        error = capsys.readouterr().err.strip().splitlines()[-1]
        assert error.startswith("bft compare: error: ") and message.format(**values) in error, error
    assert not (out / "runs").exists()


def test_compare_with_a_grpo_second_stage_and_resume(tiny_model, tmp_path, demo_records, monkeypatch, capsys):
    data, questions = tiny_inputs(tmp_path, demo_records)
    recipe = tmp_path / "compare.yaml"
    recipe.write_text(yaml.safe_dump({
        "name": "tiny-grpo", "loss_types": ["dft", "bft"], "seeds": [0, 1],
        "train": {"model_name_or_path": tiny_model, "data": str(data), "max_steps": 1, "per_device_train_batch_size": 3,
                  "logging_steps": 1, "report_to": "none", "save_strategy": "no", "disable_tqdm": True,
                  "bft_group_size": 4, "bf16": False},
        "grpo": {"data": str(data), "task": "go-naming", "rewards": ["format"], "max_steps": 1,
                 "per_device_train_batch_size": 4, "num_generations": 2, "max_completion_length": 4,
                 "logging_steps": 1, "report_to": "none", "save_strategy": "no", "disable_tqdm": True, "bf16": False},
        "evaluations": [{"task": "mcq", "data": str(questions)}],
    }))
    out = tmp_path / "cmp"
    assert main(["compare", "--config", str(recipe), "--output", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert sorted(report["runs"]) == sorted(f"{m}{s}-seed{i}" for m in ("dft", "bft") for s in ("", "+grpo")
                                            for i in (0, 1))
    table = report["tables"]["mcq-mcq"]["accuracy"]
    assert set(table["differences"]) == {"bft - dft", "bft+grpo - dft+grpo"}
    assert set(table["changes"]) == {"dft", "bft"} and set(table["change_differences"]) == {"bft - dft"}
    change = [report["runs"][f"bft+grpo-seed{s}"]["scores"]["mcq-mcq"]["accuracy"]
              - report["runs"][f"bft-seed{s}"]["scores"]["mcq-mcq"]["accuracy"] for s in (0, 1)]
    assert table["changes"]["bft"]["mean"] == pytest.approx(sum(change) / 2)
    assert "change by GRPO: bft - dft" in (out / "report.md").read_text()

    # resume: a lost GRPO run is redone from its first stage, nothing else, and the new run evaluated again
    (out / "runs" / "bft+grpo-seed1" / "metrics.json").unlink()
    evaluated, real_evaluate = [], evaluations._evaluate
    monkeypatch.setattr(evaluations, "_evaluate", lambda *a: evaluated.append(Path(a[1])) or real_evaluate(*a))
    monkeypatch.setattr("bft.train.run_training", lambda *a: pytest.fail("a finished run was trained again"))
    import bft.grpo

    redone, real_grpo = [], bft.grpo.run_grpo
    monkeypatch.setattr(bft.grpo, "run_grpo", lambda *a: redone.append(a[1].output_dir) or real_grpo(*a))
    assert main(["compare", "--config", str(recipe), "--output", str(out)]) == 0
    assert [Path(d).name for d in redone] == ["bft+grpo-seed1"]
    assert (out / "runs" / "bft+grpo-seed1" / "metrics.json").exists()
    record = yaml.safe_load((out / "evals" / "bft+grpo-seed1" / "mcq-mcq" / "evaluation.yaml").read_text())
    assert record["run"] == reuse.fingerprint(out / "runs" / "bft+grpo-seed1")
    assert evaluated == [out / "evals" / "bft+grpo-seed1" / "mcq-mcq"]
    # a first stage to be trained again: its GRPO stage, trained from the old one, is not reused
    shutil.rmtree(out / "runs" / "dft-seed0")
    assert main(["compare", "--config", str(recipe), "--output", str(out)]) == 2
    error = capsys.readouterr().err
    assert f"{out / 'runs' / 'dft+grpo-seed0'} was trained from {out / 'runs' / 'dft-seed0'}, which is to be " \
           "trained again" in error
    assert redone == [redone[0]]


@pytest.mark.slow
def test_compare_under_accelerate_launch(tiny_model, tmp_path, demo_records):
    """Two processes: both train (DDP), the main one evaluates and reports; the process group ends once."""
    import os
    import subprocess
    import sys

    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in demo_records[:8]))
    questions = tmp_path / "mcq" / "test.jsonl"
    questions.parent.mkdir()
    questions.write_text(json.dumps({"question": "Gene?", "options": {"A": "TP53", "B": "EGFR"}, "answer_idx": "A"})
                         + "\n")
    recipe = tmp_path / "compare.yaml"
    recipe.write_text(yaml.safe_dump({
        "loss_types": ["bft", "nll"], "seeds": [0],
        "train": {"model_name_or_path": tiny_model, "data": str(data), "max_steps": 2, "per_device_train_batch_size": 2,
                  "report_to": "none", "save_strategy": "no", "disable_tqdm": True, "bft_group_size": 4,
                  "bf16": False},
        "evaluations": [{"task": "mcq", "data": str(questions)}]}))
    out = tmp_path / "cmp"
    root = Path(__file__).resolve().parents[1]
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "-m", "bft.cli", "compare", "--config", str(recipe), "--output", str(out)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=root,
                            env={**os.environ, "PYTHONPATH": str(root / "src")})
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert sorted(report["runs"]) == ["bft-seed0", "nll-seed0"]
    assert json.loads((out / "runs" / "bft-seed0" / "metrics.json").read_text())["global_step"] == 2


def test_paired_bootstrap_over_seeds_and_items():
    import itertools

    import numpy as np

    from bft.stats import paired_bootstrap

    # a constant difference has no spread at all
    constant = paired_bootstrap({0: {"x": 0.9, "y": 0.5}, 1: {"x": 0.7, "y": 0.2}},
                                {0: {"x": 0.8, "y": 0.4}, 1: {"x": 0.6, "y": 0.1}})
    assert constant["mean"] == pytest.approx(0.1) and constant["ci_low"] == pytest.approx(0.1)
    assert constant["ci_high"] == pytest.approx(0.1) and (constant["seeds"], constant["items"]) == (2, 2)
    # 2 seeds x 2 items: every resample of seeds and of items enumerated by hand
    diff = {0: {"x": 1.0, "y": 0.0}, 1: {"x": 0.0, "y": -1.0}}
    zero = {s: {"x": 0.0, "y": 0.0} for s in (0, 1)}
    exact = [np.mean([diff[s][i] for s in seeds for i in items])
             for seeds in itertools.product((0, 1), repeat=2) for items in itertools.product("xy", repeat=2)]
    result = paired_bootstrap(diff, zero, resamples=20000)
    assert result["mean"] == 0.0
    assert result["ci_low"] == pytest.approx(np.quantile(exact, 0.025, method="inverted_cdf"), abs=0.01)
    assert result["ci_high"] == pytest.approx(np.quantile(exact, 0.975, method="inverted_cdf"), abs=0.01)
    # seeds or items only one side has are left out
    assert paired_bootstrap({0: {"x": 1.0, "z": 5.0}, 2: {"x": 9.0}}, {0: {"x": 0.5}})["mean"] == 0.5


def test_a_variant_can_start_from_another_methods_run(tmp_path):
    recipe = {"train": {"max_steps": 1}, "loss_types": ["nll"],
              "variants": {"bft-after-sft": {"loss_type": "bft", "init_from": "nll"}}}
    assert compare.methods(recipe)["bft-after-sft"]["init_from"] == "nll"
    with pytest.raises(ValueError, match="must be a loss type or an earlier variant"):
        compare.methods({**recipe, "variants": {"x": {"loss_type": "bft", "init_from": "dft"}}})


def test_methods_can_be_chosen_with_those_they_start_from(tmp_path):
    found = compare.methods({"train": {}, "loss_types": ["nll", "dft", "bft"],
                             "variants": {"nll-1ep": {"loss_type": "nll"},
                                          "bft-after-sft": {"loss_type": "bft", "init_from": "nll-1ep"}}})
    assert list(compare.select_methods(found, ["bft-after-sft", "dft"])) == ["dft", "nll-1ep", "bft-after-sft"]
    with pytest.raises(ValueError, match="no method named 'bft-g4'; its methods are nll, dft, bft, nll-1ep"):
        compare.select_methods(found, ["bft", "bft-g4"])
    with pytest.raises(ValueError, match="clashes with the untrained model"):
        compare.methods({"train": {}, "evaluate_base": True, "variants": {"base": {"loss_type": "nll"}}})


def test_the_plan_names_the_checkpoint_a_killed_run_resumes_from(tmp_path):
    run_dir = tmp_path / "bft-seed0"
    assert plan._training_state(run_dir) == "to train"
    for step in (100, 20):
        (run_dir / f"checkpoint-{step}").mkdir(parents=True)
    assert plan._training_state(run_dir) == "to resume from checkpoint-100"
    (run_dir / "metrics.json").write_text("{}")
    assert plan._training_state(run_dir) == "finished (results only: no model)"  # as restored from an archive
    (run_dir / "training_args.bin").write_bytes(b"")  # the trainer's settings are no model
    assert plan._training_state(run_dir) == "finished (results only: no model)"
    (run_dir / "model.safetensors").write_bytes(b"")
    assert plan._training_state(run_dir) == "finished"


def test_a_killed_run_continues_from_its_last_checkpoint(tmp_path):
    run_dir = tmp_path / "runs" / "bft-seed0"
    (run_dir / "checkpoint-20").mkdir(parents=True)
    calls = []
    runs._run_once(run_dir, {"learning_rate": 1e-4}, calls.append)
    assert calls == [{"learning_rate": 1e-4, "output_dir": str(run_dir), "overwrite": True,
                      "resume_from_checkpoint": True}]
    (run_dir / "metrics.json").write_text("{}")  # finished: not run again
    runs._run_once(run_dir, {}, calls.append)
    assert len(calls) == 1


def test_a_killed_run_made_with_other_settings_is_not_resumed(tmp_path):
    run_dir = tmp_path / "runs" / "bft-seed0"
    (run_dir / "checkpoint-20").mkdir(parents=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump({"learning_rate": 1e-4, "seed": 0, "output_dir": "/moved"}))
    reuse.check_run(run_dir, {"learning_rate": 1e-4, "seed": 0, "output_dir": str(run_dir)})  # same: resumed
    # where it ran is no setting: bft.precision sets use_cpu from the machine (a run from a GPU machine, on a CPU)
    reuse.check_run(run_dir, {"learning_rate": 1e-4, "seed": 0, "use_cpu": False})
    with pytest.raises(InputError, match=r"\(bft_gamma: the default there, 0.5 in the recipe; learning_rate: 0.0001 "
                                                 r"there, 5e-05 in the recipe\)"):
        reuse.check_run(run_dir, {"learning_rate": 5e-5, "seed": 0, "bft_gamma": 0.5})
    # a folder with nothing to reuse starts afresh, whatever its config.yaml says
    (run_dir / "checkpoint-20").rmdir()
    reuse.check_run(run_dir, {"learning_rate": 5e-5})


def test_a_run_started_from_another_training_of_its_start_is_not_reused(tmp_path):
    start, run_dir = tmp_path / "nll-1ep-seed0", tmp_path / "bft-after-sft-seed0"
    start.mkdir()
    (start / "metrics.json").write_text('{"train_runtime": 1.0}')
    reuse.record_start(run_dir, start)
    (run_dir / "metrics.json").write_text("{}")
    reuse.check_run(run_dir, {}, start)  # the same training of its start: reused
    (start / "metrics.json").write_text('{"train_runtime": 2.0}')  # its start trained again since
    with pytest.raises(InputError, match="as it was before it was trained again"):
        reuse.check_run(run_dir, {}, start)


def test_data_built_otherwise_is_not_reused(tmp_path):
    folder = tmp_path / "go-naming-1k"
    folder.mkdir()
    (folder / "meta.json").write_text(json.dumps({"task": "go-naming", "min_genes": 3, "max_genes": 20,
                                                  "valid_fraction": 0.1, "seed": 0, "limit": 100}))
    build = {"builder": "go-naming", "output": str(folder), "max_genes": 20, "limit": 100}
    builds.build_data(build)  # the same options (the defaults included): reused, not built again
    assert sorted(path.name for path in folder.iterdir()) == ["meta.json"]
    for change, message in (({"limit": 200}, "(limit: 100 there, 200 in the recipe)"),
                            ({"max_genes": None}, "(max_genes: 20 there, 100 in the recipe)"),  # back to the default
                            ({"builder": "gene-profiles", "max_genes": None},
                             "builder: 'go-naming' there, 'gene-profiles' in the recipe"),
                            ({"max_gene": 20}, "unknown option 'max_gene'; its options are exclude, min_genes")):
        changed = {key: value for key, value in {**build, **change}.items() if value is not None}
        with pytest.raises(InputError) as error:
            builds.build_data(changed)
        assert message in str(error.value)


def test_an_evaluation_made_otherwise_is_evaluated_again(tmp_path, monkeypatch):
    out, evaluation = tmp_path / "go", {"task": "go-naming", "limit": 5}
    evaluated = []

    def evaluate(model, folder, evaluation):
        evaluated.append(model)
        assert not (folder / "profiles.jsonl").exists()  # nothing of the earlier model is resumed
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "results.json").write_text(json.dumps(dict.fromkeys(TASKS["go-naming"].metrics, 0.5)))

    monkeypatch.setattr(evaluations, "_evaluate", evaluate)
    first = reuse.evaluation_record({"model": "bft-seed0", "run": "aaa"}, evaluation)
    evaluations._evaluate_once("runs/bft-seed0", out, evaluation, first)
    evaluations._evaluate_once("runs/bft-seed0", out, evaluation, first)
    assert evaluated == ["runs/bft-seed0"]  # the same: read back
    (out / "profiles.jsonl").write_text("{}\n")
    retrained = reuse.evaluation_record({"model": "bft-seed0", "run": "bbb"}, evaluation)
    evaluations._evaluate_once("runs/bft-seed0", out, evaluation, retrained)
    assert len(evaluated) == 2 and reuse.read_evaluation_record(out) == retrained
    # results written before records were kept are taken as the recipe's
    (out / "evaluation.yaml").unlink()
    evaluations._evaluate_once("runs/bft-seed0", out, evaluation, retrained)
    assert len(evaluated) == 2 and reuse.read_evaluation_record(out) == retrained


def test_results_written_before_a_metric_existed_are_evaluated_again(tmp_path, monkeypatch):
    evaluated = []

    def evaluate(model, out, evaluation):
        evaluated.append(model)
        scores = dict.fromkeys(TASKS["go-naming"].metrics, 0.5)
        (out / "results.json").write_text(json.dumps(scores))

    monkeypatch.setattr(evaluations, "_evaluate", evaluate)
    evaluation = {"task": "go-naming", "name": "go"}
    (tmp_path / "results.json").write_text(json.dumps({"semantic_similarity_mean": 0.3}))  # an older results file
    record = reuse.evaluation_record({"model": "run"}, evaluation)
    reuse.write_evaluation_record(tmp_path, record)
    assert evaluations._evaluate_once("run", tmp_path, evaluation, record)["distinct_name_share"] == 0.5
    assert evaluations._evaluate_once("run", tmp_path, evaluation, record)["semantic_similarity_mean"] == 0.5
    assert evaluated == ["run"]  # complete results are read back, not evaluated again


def test_ggi_of_summaries_and_symbols_stands_beside_the_profiles_in_the_report(tmp_path):
    from bft.compare.report import markdown, tables

    def scores(auroc):
        return {"auroc": auroc, "auroc_ci_low": auroc - 0.05, "auroc_ci_high": auroc + 0.05,
                "auprc": 0.9, "auprc_ci_low": 0.88, "auprc_ci_high": 0.93}

    ggi = {"model profile": scores(0.6), "NCBI summary": scores(0.664), "gene symbol": scores(0.486)}
    for run in ("base", "bft-seed0"):
        (tmp_path / "evals" / run / "represent").mkdir(parents=True)
        (tmp_path / "evals" / run / "represent" / "summary.json").write_text(json.dumps({"ggi": ggi}))
    recipe = {"evaluations": [{"task": "represent", "limit_genes": 600}, {"task": "mcq", "data": "medqa/test.jsonl"}]}
    references = evaluations.reference_scores(tmp_path / "evals", recipe)
    assert list(references) == ["represent"] and list(references["represent"]) == ["NCBI summary", "gene symbol"]
    assert references["represent"]["gene symbol"]["ggi_auroc"] == pytest.approx(
        {"mean": 0.486, "ci_low": 0.436, "ci_high": 0.536})
    runs = {"bft-seed0": {"method": "bft", "loss_type": "bft", "seed": 0, "run_dir": None,
                          "scores": {"represent": {"ggi_auroc": 0.6, "ggi_auprc": 0.9, "profile_looping_share": 0.1}}}}
    text = markdown({"config": "c", "seeds": [0], "tables": tables(runs), "references": references})
    rows = ("| bft | 0.600 | 0.900 | 0.100 |\n"
            "| NCBI summary (reference) | 0.664 [0.614, 0.714] | 0.900 [0.880, 0.930] |  |")
    assert rows in text


def test_a_finished_runs_checkpoints_are_dropped_unless_kept(tmp_path):
    from accelerate import PartialState

    run_dir = tmp_path / "runs" / "bft-seed0"
    for step in (100, 200):
        (run_dir / f"checkpoint-{step}").mkdir(parents=True)
        (run_dir / f"checkpoint-{step}" / "optimizer.pt").write_bytes(b"0" * 10)
    (run_dir / "model.safetensors").write_bytes(b"0")
    runs._drop_checkpoints(PartialState(), run_dir, {"keep_checkpoints": True})
    assert sorted(path.name for path in run_dir.iterdir()) == ["checkpoint-100", "checkpoint-200", "model.safetensors"]
    runs._drop_checkpoints(PartialState(), run_dir, {})
    assert [path.name for path in run_dir.iterdir()] == ["model.safetensors"]


def test_data_folder_setting(monkeypatch, tmp_path):
    from bft.data import data_dir

    monkeypatch.delenv("BFT_DATA_DIR", raising=False)
    assert str(data_dir()) == "../shared/data"
    monkeypatch.setenv("BFT_DATA_DIR", str(tmp_path))
    assert data_dir() == tmp_path and data_dir("given") == Path("given")


def test_sample_weight_summary_by_hand(tmp_path):
    """Percentiles, the share of low weights and the rank correlation with SFT's P_b, against hand-computed values."""
    from bft.compare.report import markdown, sample_weight_summary

    def tracked_run(name, loss_type, p_min_by_epoch):
        folder = tmp_path / name
        folder.mkdir()
        epochs = [{"epoch": float(e), "min_group_conf": p, "sample_weight": [1 - v for v in p]}
                  for e, p in enumerate(p_min_by_epoch)]
        (folder / "sample_weights.json").write_text(json.dumps({"group_size": 8, "gamma": 1.0, "epochs": epochs}))
        return {"run_dir": str(folder), "seed": 0, "loss_type": loss_type, "method": loss_type, "scores": {}}

    runs = {"nll-seed0": tracked_run("nll-seed0", "nll", [[0.0] * 5, [0.9, 0.7, 0.5, 0.3, 0.1]]),
            "bft-seed0": tracked_run("bft-seed0", "bft", [[0.0] * 5, [0.1, 0.2, 0.3, 0.4, 0.5]]),
            "dft-seed0": {"run_dir": str(tmp_path / "untracked"), "seed": 0, "loss_type": "dft", "scores": {}}}
    summary = sample_weight_summary(runs)
    assert set(summary) == {"nll-seed0", "bft-seed0"}
    last = summary["bft-seed0"]["epochs"][-1]
    # P_b 0.1..0.5: 10th percentile 0.1 + 0.4 * 0.1 = 0.14, median 0.3, 90th 0.46; s_b = 1 - P_b, all >= 0.5
    assert last["p_min"] == pytest.approx([0.14, 0.3, 0.46])
    assert last["sample_weight"] == pytest.approx([0.54, 0.7, 0.86]) and last["share_below_half"] == 0
    assert summary["nll-seed0"]["epochs"][-1]["share_below_half"] == pytest.approx(0.4)  # s_b 0.1 and 0.3
    # BFT's s_b (0.9, 0.8, ..., 0.5) falls as SFT's P_b (0.9, 0.7, ..., 0.1) falls: rank correlation +1
    assert summary["bft-seed0"]["spearman_with_sft_p_min"] == {"sft_run": "nll-seed0", "rho": pytest.approx(1.0)}
    assert "spearman_with_sft_p_min" not in summary["nll-seed0"]
    text = markdown({"config": "x", "seeds": [0], "tables": {}, "sample_weights": summary})
    assert "| bft-seed0 | 1 | 0.140 / 0.300 / 0.460 | 0.540 / 0.700 / 0.860 | 0.000 |" in text
    assert "last-epoch P_b: +1.000" in text


def test_a_diverged_run_is_reported_not_a_crash(tmp_path):
    """A diverged run logs NaN, which the run's strict-JSON files hold as null: its plots and the comparison's report
    read those back as NaN (the cells say nan), and report.json is strict JSON again."""
    from bft.plots import plot_sample_weights

    folder = tmp_path / "runs" / "bft-seed0"
    folder.mkdir(parents=True)
    tracked = {"epochs": [{"epoch": 0.0, "min_group_conf": [0.5, None], "sample_weight": [0.5, None]}]}
    (folder / "sample_weights.json").write_text(json.dumps(tracked))
    logged = {key: None for key in ("loss", "nll", "bft/sample_weight_mean", "bft/sample_weight_std",
                                    "bft/min_group_conf_mean", "bft/min_group_conf_std")}
    (folder / "log_history.json").write_text(json.dumps([{"step": 1, **logged}, {"step": 2, **logged}]))
    runs = {"bft-seed0": {"method": "bft", "loss_type": "bft", "seed": 0, "run_dir": str(folder),
                          "scores": {"mcq": {"accuracy": 0.25}}, "item_scores": {}}}
    written = report.write_report(tmp_path, {"train": {"max_steps": 2}, "loss_types": ["bft"]}, runs, [0])
    assert all(math.isnan(value) for value in written["sample_weights"]["bft-seed0"]["epochs"][0]["p_min"])
    json.loads((tmp_path / "report.json").read_text(), parse_constant=lambda name: pytest.fail(f"{name} written"))
    assert "| bft-seed0 | 0 | nan / nan / nan |" in (tmp_path / "report.md").read_text()
    plot_sample_weights(tracked, tmp_path / "sample_weights.png")
    assert (tmp_path / "sample_weights.png").stat().st_size > 1000


def test_a_comparison_continues_from_its_archive_elsewhere(tiny_model, tmp_path, demo_records, monkeypatch, capsys):
    data, questions = tiny_inputs(tmp_path, demo_records)
    recipe = tmp_path / "compare.yaml"
    recipe.write_text(yaml.safe_dump({
        "loss_types": ["dft"], "seeds": [0], "variants": {"bft-after-dft": {"loss_type": "bft", "init_from": "dft"}},
        "train": {"model_name_or_path": tiny_model, "data": str(data), "max_steps": 1, "per_device_train_batch_size": 3,
                  "report_to": "none", "disable_tqdm": True, "activation_checkpointing": False, "bft_group_size": 4},
        "evaluations": [{"task": "mcq", "data": str(questions)}],
    }))
    out, archive = tmp_path / "cmp", tmp_path / "kept" / "cmp"
    assert main(["compare", "--config", str(recipe), "--output", str(out), "--methods", "dft"]) == 0
    capsys.readouterr()
    assert main(["compare", "--output", str(out), "--archive", str(archive)]) == 0
    assert json.loads(capsys.readouterr().out)["runs"] == 1
    kept = sorted(str(path.relative_to(archive)) for path in archive.rglob("*") if path.is_file())
    assert {"report.md", "report.json", "runs/dft-seed0/metrics.json", "runs/dft-seed0/config.yaml",
            "evals/dft-seed0/mcq-mcq/results.json", "evals/dft-seed0/mcq-mcq/predictions.jsonl"} <= set(kept)
    assert not [name for name in kept if name.endswith((".safetensors", ".bin")) or "checkpoint" in name]
    assert main(["compare", "--output", str(out), "--archive", str(out / "kept")]) == 2  # not inside the comparison

    # another machine: the archive copied to a new output folder is reused as it stands, nothing trained or evaluated
    restored = tmp_path / "elsewhere"
    shutil.copytree(archive, restored)
    monkeypatch.setattr("bft.train.run_training", lambda *a: pytest.fail("a finished run was trained again"))
    monkeypatch.setattr(evaluations, "_evaluate", lambda *a: pytest.fail("a finished evaluation was made again"))
    capsys.readouterr()
    assert main(["compare", "--config", str(recipe), "--output", str(restored), "--methods", "dft", "--plan"]) == 0
    assert json.loads(capsys.readouterr().out)["runs"]["dft-seed0"] == {
        "training": "finished (results only: no model)", "evaluations": {"mcq-mcq": "done"}}
    assert main(["compare", "--config", str(recipe), "--output", str(restored), "--methods", "dft"]) == 0
    scores = [json.loads((folder / "report.json").read_text())["runs"]["dft-seed0"]["scores"]
              for folder in (out, restored)]
    assert scores[0] == scores[1]
    # its runs have no model: a run to be trained from one, or an evaluation to be made anew, fails before anything
    assert main(["compare", "--config", str(recipe), "--output", str(restored), "--methods", "bft-after-dft"]) == 2
    error = capsys.readouterr().err
    assert f"{restored / 'runs' / 'dft-seed0'} (bft-after-dft-seed0 is to be trained from it)" in error
    shutil.rmtree(restored / "evals" / "dft-seed0")
    assert main(["compare", "--config", str(recipe), "--output", str(restored), "--methods", "dft"]) == 2
    assert f"{restored / 'runs' / 'dft-seed0'} (its mcq-mcq evaluation is to be made)" in capsys.readouterr().err

    # archiving again replaces the earlier archive as a whole
    assert main(["compare", "--output", str(restored), "--archive", str(archive)]) == 0
    assert not (archive / "evals").exists() and sorted(path.name for path in archive.parent.iterdir()) == ["cmp"]


@pytest.mark.slow
def test_a_lora_comparison_copied_to_another_machine_is_reused_and_evaluated(embedded_tiny, tmp_path, demo_records,
                                                                             monkeypatch):
    data, questions = tiny_inputs(tmp_path, demo_records)
    recipe = tmp_path / "compare.yaml"
    recipe.write_text(yaml.safe_dump({
        "loss_types": ["nll"], "seeds": [0], "variants": {"bft-after-nll": {"loss_type": "bft", "init_from": "nll"}},
        "train": {"model_name_or_path": "tiny-embedded", "data": str(data), "max_steps": 1, "use_peft": True,
                  "lora_r": 2, "lora_target_modules": ["q_proj", "v_proj"], "per_device_train_batch_size": 3,
                  "report_to": "none", "disable_tqdm": True, "gradient_checkpointing": False, "bft_group_size": 4},
        "evaluations": [{"task": "mcq", "data": str(questions)}],
    }))
    out = tmp_path / "cmp"
    assert main(["compare", "--config", str(recipe), "--output", str(out)]) == 0
    adapters = {run.name: json.loads((run / "adapter_config.json").read_text())["base_model_name_or_path"]
                for run in (out / "runs").iterdir()}
    assert adapters == {"nll-seed0": "tiny-embedded", "bft-after-nll-seed0": str(out / "runs" / "nll-seed0")}
    scores = json.loads((out / "report.json").read_text())["runs"]["bft-after-nll-seed0"]["scores"]

    # another machine: the folder copied elsewhere, the embedded model in another cache, the original folder gone
    shutil.move(out, tmp_path / "copied")
    embedded_tiny("cache-b")
    shutil.rmtree(tmp_path / "copied" / "evals" / "bft-after-nll-seed0")
    monkeypatch.setattr("bft.train.run_training", lambda *a: pytest.fail("a finished run was trained again"))
    assert main(["compare", "--config", str(recipe), "--output", str(tmp_path / "copied")]) == 0
    again = json.loads((tmp_path / "copied" / "report.json").read_text())["runs"]["bft-after-nll-seed0"]["scores"]
    assert again == scores  # evaluated anew from the copied adapters, on the embedded model of the other cache


def test_a_builds_exclude_may_name_one_file_as_a_string(tmp_path):
    """`exclude: FILE` in a recipe is that file, as `--exclude FILE` is, not its characters one by one."""
    from bft.compare.builds import resolve_build

    _, _, _, options = resolve_build({"builder": "go-naming", "output": str(tmp_path / "d"), "exclude": "sets.tsv"})
    assert options["exclude"] == ["sets.tsv"]


def test_recipe_numbers_as_yaml_leaves_them_and_paths_as_one_likes(tiny_model, tmp_path, monkeypatch, capsys):
    """`learning_rate: 2e-4` (text to YAML 1.1) is the number `bft train --config` makes of it; training data that the
    recipe's build makes, named relatively where the build's output is absolute, is not looked for before it is
    built."""
    monkeypatch.chdir(tmp_path)
    recipe = tmp_path / "compare.yaml"
    recipe.write_text("loss_types: [nll]\nseeds: [0]\n"
                      f"build: {{builder: go-naming, output: {tmp_path / 'built'}, data_dir: {SHARED_DATA}}}\n"
                      f"train: {{model_name_or_path: {tiny_model}, data: built/../built/train.jsonl, "
                      "learning_rate: 2e-4}\n")
    assert main(["compare", "--config", str(recipe), "--output", str(tmp_path / "o"), "--plan"]) == 0
    assert json.loads(capsys.readouterr().out)["data"] == {str(tmp_path / "built"): "to build"}


def test_an_archive_counts_runs_by_their_place_in_the_comparison(tmp_path):
    """A comparison that itself sits in folders named `runs/` and `evals/`: its report files are no run nor
    evaluation; runs are `runs/RUN/`, evaluations `evals/RUN/TASK/` under the comparison's folder."""
    from bft.compare.archive import archive_comparison

    out = tmp_path / "evals" / "runs" / "cmp-tiny"
    for name in ("report.json", "report.md", "runs/nll-seed0/metrics.json", "runs/bft-seed0/config.yaml",
                 "evals/nll-seed0/mcq-medqa/results.json", "evals/bft-seed0/mcq-medqa/predictions.jsonl"):
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text("{}")
    kept = archive_comparison(out, tmp_path / "kept")
    assert (kept["files"], kept["runs"], kept["evaluations"]) == (6, 2, 2)


def test_a_build_error_starts_with_the_recipe_and_names_a_missing_input(tmp_path):
    """`check_builds`: what a recipe's `build` would refuse, found before anything runs, in one line that starts
    with the recipe's path, as every other recipe error does."""
    path, out = tmp_path / "compare.yaml", str(tmp_path / "data")
    for build, message in (
            ({"builder": "go-naming", "output": out, "limt": 10}, "build 'go-naming': unknown option 'limt'"),
            ({"builder": "go-namig", "output": out}, "build: unknown builder 'go-namig': expected one of go-naming"),
            ({"output": out}, "build: expected a mapping with builder, output and the builder's options"),
            ({"builder": "go-naming", "output": out, "data_dir": str(tmp_path / "empty")},
             f"{tmp_path / 'empty' / 'go_bp' / 'goID_2_name.tab'}: file not found: bft data go-naming reads "
             "go_bp/goID_2_name.tab (GO term names) from the data folder, given by --data-dir")):
        with pytest.raises(InputError) as error:
            builds.check_builds({"build": [build]}, path)
        assert str(error.value).startswith(f"{path}: {message}"), str(error.value)
