"""`bft train` end to end on a tiny model: the run folder, LoRA, and clear errors for bad input."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bft.cli import main
from bft.models import is_adapter, load_for_eval, resolve

FAST = ["--max_steps", "2", "--per_device_train_batch_size", "2", "--logging_steps", "1", "--report_to", "none",
        "--save_strategy", "no", "--disable_tqdm", "true", "--activation_checkpointing", "false"]


@pytest.fixture
def small_data(tmp_path, demo_records):
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(record) + "\n" for record in demo_records[:8]))
    return path


def test_train_writes_a_complete_run(tiny_model, small_data, tmp_path):
    out = tmp_path / "run"
    code = main(["train", "--model_name_or_path", tiny_model, "--data", str(small_data), "--output_dir", str(out),
                 "--loss_type", "bft", "--bft_group_size", "4", *FAST])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["loss_type"] == "bft" and metrics["global_step"] == 2
    assert metrics["train_tokens"] > 0 and metrics["train_runtime"] > 0 and metrics["train_loss"] > 0
    assert 0 <= metrics["bft/sample_weight_mean"] <= 1 and "bft/token_weight_std" in metrics
    history = json.loads((out / "log_history.json").read_text())
    assert metrics["nll"] == [row["nll"] for row in history if "nll" in row][-1] > 0  # the plain NLL beside the loss
    assert len(json.loads((out / "log_history.json").read_text())) >= 2
    assert (out / "loss.png").stat().st_size > 1000
    assert (out / "model.safetensors").exists() and (out / "tokenizer.json").exists()
    recipe = yaml.safe_load((out / "config.yaml").read_text())
    assert recipe["loss_type"] == "bft" and recipe["bft_group_size"] == 4 and recipe["max_steps"] == 2

    # the resolved recipe reproduces the run's settings, and the run folder is a model argument
    from bft.train import parse_train_args

    script_args, config, model_args = parse_train_args(["--config", str(out / "config.yaml")])
    assert (config.loss_type, config.bft_group_size, config.max_steps) == ("bft", 4, 2)
    assert model_args.model_name_or_path == tiny_model and script_args.data == str(small_data)
    assert resolve(str(out)) == str(out.resolve())

    # a finished run is not overwritten by accident
    assert main(["train", "--model_name_or_path", tiny_model, "--data", str(small_data), "--output_dir", str(out),
                 *FAST]) == 2


def test_train_lora_adapter_is_merged_for_eval(tiny_model, small_data, tmp_path):
    out = tmp_path / "lora"
    assert main(["train", "--model_name_or_path", tiny_model, "--data", str(small_data), "--output_dir", str(out),
                 "--loss_type", "dft", "--use_peft", "true", "--lora_r", "4", "--lora_target_modules", "q_proj",
                 "v_proj", *FAST]) == 0
    assert is_adapter(resolve(str(out)))
    model, tokenizer = load_for_eval(str(out))
    assert not hasattr(model, "peft_config") and tokenizer.padding_side == "left"


@pytest.mark.parametrize("content, expected", [
    ('{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}\n{"messages": [\n',
     ":2: not valid JSON"),
    ('{"prompt": "q", "completion": "a"}\n{"question": "q", "answer": "a"}\n',
     ":2: expected a 'messages' list or 'prompt' and 'completion' fields; found keys: answer, question"),
    ('{"messages": [{"role": "user", "content": "only a question"}]}\n', ":1: 'messages' must end with an assistant"),
    ('{"messages": [{"role": "doctor", "content": "q"}, {"role": "assistant", "content": "a"}]}\n',
     ":1: 'messages'[0] has role 'doctor'"),
    ('{"prompt": "q", "completion": "a"}\n{"messages": [{"role": "user", "content": "q"}, '
     '{"role": "assistant", "content": "a"}]}\n', ":2: this record is conversational but the first is prompt-comp"),
    # an empty answer would train its end-of-turn token alone, as the string form's empty completion would
    ('{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": " "}]}\n',
     ":1: the final assistant turn is empty: nothing to train on"),
    ('{"prompt": "q", "completion": ""}\n', ":1: 'completion' is empty"),
    ('{"prompt": [{"role": "user", "content": "q"}], "completion": [{"role": "assistant", "content": ""}]}\n',
     ":1: 'completion' is empty"),
])
def test_bad_data_is_reported_with_file_and_line(tiny_model, tmp_path, capsys, content, expected):
    data = tmp_path / "bad.jsonl"
    data.write_text(content)
    out = tmp_path / "run"
    assert main(["train", "--model_name_or_path", tiny_model, "--data", str(data), "--output_dir", str(out)]) == 2
    error = capsys.readouterr().err
    assert f"{data}{expected}" in error and "Traceback" not in error
    assert not out.exists()  # nothing written, nothing that looks like a run


def test_console_script_exit_code_and_message(tmp_path):
    bft = Path(sys.executable).parent / "bft"
    result = subprocess.run([str(bft), "train", "--data", str(tmp_path / "missing.jsonl"), "--output_dir",
                             str(tmp_path / "run")], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2
    assert "missing.jsonl: file not found" in result.stderr and "Traceback" not in result.stderr


def test_help_explains_the_bft_fields():
    result = subprocess.run([str(Path(sys.executable).parent / "bft"), "train", "--help"], capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0
    for text in ("--config FILE.yaml", "--model MODEL_NAME_OR_PATH", "--loss_type", "--bft_group_size", "--bft_gamma",
                 "--bft_token_weighting", "--data", "--use_peft"):
        assert text in result.stdout


def test_grpo_help_lists_the_recipe_and_the_model_options(capsys):
    with pytest.raises(SystemExit):
        main(["grpo", "--help"])
    shown = capsys.readouterr().out
    assert "--config FILE.yaml" in shown and "--model MODEL_NAME_OR_PATH" in shown and "--reward_weights" in shown


def test_evaluation_logs_bft_diagnostics_of_its_own(tiny_model, small_data, tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--model_name_or_path", tiny_model, "--data", str(small_data), "--eval_data",
                 str(small_data), "--eval_strategy", "steps", "--eval_steps", "2", "--output_dir", str(out),
                 "--loss_type", "bft", "--bft_group_size", "4", *FAST]) == 0
    history = json.loads((out / "log_history.json").read_text())
    evaluation = next(row for row in history if "eval_loss" in row)
    assert 0 <= evaluation["eval_bft/sample_weight_mean"] <= 1
    assert evaluation["eval_bft/sample_weight_mean"] + evaluation["eval_bft/min_group_conf_mean"] == pytest.approx(1)


def train_killed_in_step(step: int, argv: list[str], monkeypatch) -> None:
    """`bft train ARGV` killed in its training step number `step` (an exception, as a killed job leaves it)."""
    from bft.trainer import BFTTrainer

    real_step, calls = BFTTrainer.training_step, []

    def killed(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == step:
            raise RuntimeError("killed")
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(BFTTrainer, "training_step", killed)
    with pytest.raises(RuntimeError, match="killed"):  # not an input error: the traceback is kept
        main(["train", *argv])
    monkeypatch.setattr(BFTTrainer, "training_step", real_step)


def test_a_run_killed_after_a_checkpoint_resumes_with_the_same_losses(tiny_model, small_data, tmp_path, monkeypatch,
                                                                       capsys, caplog):
    common = ["--model_name_or_path", tiny_model, "--data", str(small_data), "--loss_type", "bft",
              "--bft_group_size", "4", "--max_steps", "4", "--per_device_train_batch_size", "2", "--logging_steps", "1",
              "--save_strategy", "steps", "--save_steps", "2", "--report_to", "none", "--disable_tqdm", "true",
              "--bf16", "false", "--learning_rate", "1e-3", "--activation_checkpointing", "false"]
    assert main(["train", *common, "--output_dir", str(tmp_path / "whole")]) == 0

    train_killed_in_step(3, [*common, "--output_dir", str(tmp_path / "killed")], monkeypatch)
    assert (tmp_path / "killed" / "checkpoint-2").is_dir() and not (tmp_path / "killed" / "metrics.json").exists()
    # what the killed run was made with is on disk before it finishes (bft compare checks it before resuming)
    assert yaml.safe_load((tmp_path / "killed" / "config.yaml").read_text())["learning_rate"] == 1e-3
    assert main(["train", *common, "--output_dir", str(tmp_path / "killed"), "--resume_from_checkpoint", "true"]) == 0

    def losses(run):
        return {row["step"]: row["loss"] for row in json.loads((run / "log_history.json").read_text()) if "loss" in row}

    whole, resumed = losses(tmp_path / "whole"), losses(tmp_path / "killed")
    assert set(resumed) >= {3, 4}
    for step in (3, 4):
        assert resumed[step] == pytest.approx(whole[step], rel=1e-5)
    # metrics.json is the whole run's, not the resumed call's (transformers' TrainOutput covers steps 3-4 only)
    whole, resumed = (json.loads((tmp_path / run / "metrics.json").read_text()) for run in ("whole", "killed"))
    assert resumed["train_loss"] == pytest.approx(whole["train_loss"], rel=1e-5)
    assert resumed["train_tokens"] == whole["train_tokens"] and resumed["global_step"] == 4
    # and so is the log's closing row
    closing = json.loads((tmp_path / "killed" / "log_history.json").read_text())[-1]
    assert closing["train_loss"] == resumed["train_loss"] and closing["train_runtime"] == resumed["train_runtime"]
    # config.yaml says what made the run, not how the command was given: rerunning it trains anew elsewhere
    config = yaml.safe_load((tmp_path / "killed" / "config.yaml").read_text())
    assert "resume_from_checkpoint" not in config and "overwrite" not in config
    assert main(["train", "--config", str(tmp_path / "killed" / "config.yaml"), "--output_dir",
                 str(tmp_path / "again")]) == 0
    assert json.loads((tmp_path / "again" / "metrics.json").read_text())["train_loss"] == pytest.approx(
        whole["train_loss"], rel=1e-5)
    # a config.yaml written before bft left them out holds overwrite (and resume): a recipe cannot give them
    old = tmp_path / "old-config.yaml"
    old.write_text(yaml.safe_dump({**config, "overwrite": True, "output_dir": str(tmp_path / "again")}))
    capsys.readouterr()
    assert main(["train", "--config", str(old)]) == 2
    assert "already holds a finished run" in capsys.readouterr().err
    assert "old-config.yaml sets overwrite, which only the command line gives" in caplog.text


def test_a_killed_run_resumes_only_as_it_was_made(tiny_model, small_data, tmp_path, monkeypatch, capsys):
    """Another loss on resume is refused (one line, exit 2, nothing written), and so is a rerun that would start
    over the checkpoints unasked."""
    common = ["--model_name_or_path", tiny_model, "--data", str(small_data), "--bft_group_size", "4",
              "--max_steps", "4", "--per_device_train_batch_size", "2", "--save_strategy", "steps", "--save_steps",
              "2", "--report_to", "none", "--disable_tqdm", "true", "--bf16", "false", "--output_dir",
              str(tmp_path / "killed")]
    train_killed_in_step(3, [*common, "--loss_type", "bft"], monkeypatch)
    made = sorted(path.name for path in (tmp_path / "killed").iterdir())
    capsys.readouterr()
    assert main(["train", *common, "--loss_type", "nll", "--resume_from_checkpoint", "true"]) == 2
    assert "loss_type: 'bft' there, the default given now" in capsys.readouterr().err
    assert main(["train", *common, "--loss_type", "bft"]) == 2
    assert "pass --resume_from_checkpoint true to go on from it" in capsys.readouterr().err
    assert sorted(path.name for path in (tmp_path / "killed").iterdir()) == made


def test_sample_weights_are_tracked_epoch_by_epoch(tiny_model, small_data, tmp_path):
    out = tmp_path / "tracked"
    assert main(["train", "--model_name_or_path", tiny_model, "--data", str(small_data), "--output_dir", str(out),
                 "--loss_type", "bft", "--bft_group_size", "4", "--num_train_epochs", "2",
                 "--per_device_train_batch_size", "4", "--learning_rate", "1e-2", "--track_sample_weights", "true",
                 "--report_to", "none", "--save_strategy", "no", "--disable_tqdm", "true", "--bf16", "false"]) == 0
    tracked = json.loads((out / "sample_weights.json").read_text())
    assert [row["epoch"] for row in tracked["epochs"]] == [0.0, 1.0, 2.0] and tracked["samples"] == 8
    for row in tracked["epochs"]:
        assert len(row["min_group_conf"]) == 8 and all(0 <= p <= 1 for p in row["min_group_conf"])
        assert row["sample_weight"] == pytest.approx([1 - p for p in row["min_group_conf"]])
    assert tracked["epochs"][0]["min_group_conf"] != tracked["epochs"][-1]["min_group_conf"]  # training moved them
    assert (out / "sample_weights.png").stat().st_size > 1000


def test_sample_weights_are_not_tracked_under_packing(tiny_model, small_data, tmp_path, capsys):
    """Packing merges and reorders samples into rows, so a row's P_b is no sample's: refused before anything is
    written."""
    out = tmp_path / "packed"
    assert main(["train", "--model_name_or_path", tiny_model, "--data", str(small_data), "--output_dir", str(out),
                 "--loss_type", "bft", "--packing", "true", "--track_sample_weights", "true",
                 "--report_to", "none"]) == 2
    assert "packing" in capsys.readouterr().err and not out.exists()


def test_sample_weights_survive_a_resumed_run(tiny_model, small_data, tmp_path, monkeypatch):
    """A run killed mid-epoch and resumed keeps the epochs it had recorded, and never records the resumed model as
    epoch 0."""
    common = ["--model_name_or_path", tiny_model, "--data", str(small_data), "--loss_type", "bft",
              "--bft_group_size", "4", "--num_train_epochs", "2", "--per_device_train_batch_size", "4",
              "--track_sample_weights", "true", "--save_strategy", "steps", "--save_steps", "3", "--report_to",
              "none", "--disable_tqdm", "true", "--bf16", "false", "--learning_rate", "1e-2",
              "--activation_checkpointing", "false"]
    assert main(["train", *common, "--output_dir", str(tmp_path / "whole")]) == 0

    train_killed_in_step(4, [*common, "--output_dir", str(tmp_path / "killed")], monkeypatch)
    assert (tmp_path / "killed" / "checkpoint-3").is_dir()  # epoch 1.5
    assert main(["train", *common, "--output_dir", str(tmp_path / "killed"), "--resume_from_checkpoint", "true"]) == 0

    whole, resumed = (json.loads((tmp_path / run / "sample_weights.json").read_text())["epochs"]
                      for run in ("whole", "killed"))
    assert [row["epoch"] for row in resumed] == [0.0, 1.0, 2.0]
    for expected, got in zip(whole, resumed):
        assert got["min_group_conf"] == pytest.approx(expected["min_group_conf"], rel=1e-4, abs=1e-7)


@pytest.mark.slow
def test_train_warns_of_no_deprecated_setting_of_ours(tiny_model, small_data, tmp_path):
    """TRL's default for transformers' deprecated `gradient_checkpointing` warned on every command: the defaults
    and the recipes use the current names, so a run, and a rerun of its config.yaml, warns of nothing deprecated."""
    import warnings

    from bft.compare import reuse
    from bft.grpo import grpo_arguments
    from bft.train import resolved_recipe, train_arguments

    def deprecations(run):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run()
        return [f"{w.category.__name__}: {w.message}" for w in caught
                if issubclass(w.category, (FutureWarning, DeprecationWarning))]

    out = tmp_path / "run"
    argv = ["train", "--model_name_or_path", tiny_model, "--data", str(small_data), "--output_dir", str(out),
            "--max_steps", "1", "--report_to", "none", "--save_strategy", "no", "--bf16", "false"]
    assert deprecations(lambda: main(argv)) == []
    assert deprecations(lambda: main(["train", "--config", str(out / "config.yaml"), "--overwrite", "true"])) == []
    assert deprecations(lambda: grpo_arguments({"output_dir": str(tmp_path / "grpo")})) == []
    for recipe in ("demo.yaml", "grpo-go-naming.yaml", "compare-go-naming.yaml"):
        assert "gradient_checkpointing" not in (Path(__file__).parents[1] / "configs" / recipe).read_text()
    # activation checkpointing stays TRL's default; a recipe's old name is still honoured (and warned about)
    assert train_arguments({})[1].activation_checkpointing is True
    old = train_arguments({"gradient_checkpointing": False, "output_dir": str(out)})
    assert old[1].activation_checkpointing is False
    # a run recorded under the old name is reused under the new one
    recorded = {key: value for key, value in resolved_recipe(*old).items() if key != "activation_checkpointing"}
    (out / "config.yaml").write_text(yaml.safe_dump({**recorded, "gradient_checkpointing": False}))
    reuse.check_run(out, resolved_recipe(*train_arguments({"activation_checkpointing": False, "output_dir": str(out)})))
