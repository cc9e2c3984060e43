"""`bft compare` end to end on a tiny model, its resume path, and the report's statistics."""

import json
import math

import pytest
import yaml

from bft import compare
from bft.cli import main
from bft.report import paired_difference, t_interval


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


def test_compare_end_to_end_and_resume(tiny_model, tmp_path, demo_records, monkeypatch):
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in demo_records[:6]))
    questions = tmp_path / "mcq" / "test.jsonl"
    questions.parent.mkdir()
    questions.write_text("".join(json.dumps({"question": f"Gene {i}?", "options": {"A": "TP53", "B": "EGFR"},
                                             "answer_idx": "AB"[i % 2]}) + "\n" for i in range(4)))
    recipe = tmp_path / "compare.yaml"
    recipe.write_text(yaml.safe_dump({
        "name": "tiny", "loss_types": ["dft", "bft"], "seeds": [0, 1],
        "train": {"model_name_or_path": tiny_model, "data": str(data), "max_steps": 2, "per_device_train_batch_size": 3,
                  "logging_steps": 1, "report_to": "none", "save_strategy": "no", "disable_tqdm": True,
                  "gradient_checkpointing": False, "bft_group_size": 4, "learning_rate": 1e-3},
        "evaluations": [{"task": "mcq", "data": str(questions)}],
    }))
    out = tmp_path / "cmp"
    assert main(["compare", "--config", str(recipe), "--output", str(out)]) == 0
    report = json.loads((out / "report.json").read_text())
    assert sorted(report["runs"]) == ["bft-seed0", "bft-seed1", "dft-seed0", "dft-seed1"]
    table = report["tables"]["mcq-mcq"]["accuracy"]
    assert set(table["methods"]) == {"dft", "bft"} and set(table["differences"]) == {"bft - dft"}
    bft_scores = [report["runs"][f"bft-seed{s}"]["scores"]["mcq-mcq"]["accuracy"] for s in (0, 1)]
    assert table["methods"]["bft"]["mean"] == pytest.approx(sum(bft_scores) / 2)
    assert "| bft - dft |" in (out / "report.md").read_text()
    for plot in ("loss_curves.png", "bft_weights.png", "scores.png"):
        assert (out / plot).stat().st_size > 1000
    # the two seeds really are different runs, and the methods different losses
    logs = {name: json.loads((out / "runs" / name / "log_history.json").read_text())[0]["loss"]
            for name in report["runs"]}
    assert logs["bft-seed0"] != logs["dft-seed0"]

    # resume: a killed comparison reuses what is finished (here: everything but one evaluation)
    (out / "evals" / "bft-seed1" / "mcq-mcq" / "results.json").unlink()
    evaluated = []
    monkeypatch.setattr("bft.train.run_training", lambda *a: pytest.fail("a finished run was trained again"))
    real_evaluate = compare._evaluate
    monkeypatch.setattr(compare, "_evaluate", lambda *a: evaluated.append(a) or real_evaluate(*a))
    assert main(["compare", "--config", str(recipe), "--output", str(out)]) == 0
    assert len(evaluated) == 1 and str(evaluated[0][1]).endswith("bft-seed1/mcq-mcq")


def test_bad_recipe(tmp_path, capsys):
    recipe = tmp_path / "bad.yaml"
    recipe.write_text(yaml.safe_dump({"train": {}, "evaluations": [{"task": "chess"}]}))
    assert main(["compare", "--config", str(recipe), "--output", str(tmp_path / "o")]) == 2
    assert "evaluation task 'chess' is not one of" in capsys.readouterr().err
