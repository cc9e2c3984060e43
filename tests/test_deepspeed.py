"""DeepSpeed ZeRO-2 and ZeRO-3 (configs/accelerate/deepspeed_zero*.yaml) on 2 CPU processes: DeepSpeed's CPU
accelerator, communicating through gloo. The same update as one process, and a ZeRO-3 run saved whole.

The models have an LM head and embeddings of 400 x 256: above DeepSpeed's default threshold (1e5 elements) under which
ZeRO-3 keeps a parameter whole on every process, so ZeRO-3 shards what the token head reads. The processes run
without a C++ compiler (and with an empty extension cache): DeepSpeed compiles nothing.
"""

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from bft.cli import main
from tests.conftest import build_tiny_model
from tests.one_step import launch, relative_difference, run_launched, stored_step

CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "accelerate"


def without_compiler(tmp_path) -> dict:
    return {"CXX": str(tmp_path / "no-compiler"), "TORCH_EXTENSIONS_DIR": str(tmp_path / "torch_extensions")}


@pytest.fixture(scope="module")
def untied_model(tmp_path_factory) -> str:
    return str(build_tiny_model(tmp_path_factory.mktemp("untied"), hidden_size=256, tie_word_embeddings=False))


@pytest.fixture(scope="module")
def tied_model(tmp_path_factory) -> str:
    return str(build_tiny_model(tmp_path_factory.mktemp("tied"), hidden_size=256))


def asft_kl(log_history) -> list:
    return [row["asft/kl_mean"] for row in log_history if "asft/kl_mean" in row]


@pytest.mark.slow
@pytest.mark.parametrize("stage", [2, 3])
def test_deepspeed_gives_the_update_of_one_process(untied_model, tmp_path, stage):
    """2 processes x 3 samples == 1 process x 6 samples: one SGD step of bft and of nll; under ZeRO-3 also ASFT with
    LoRA over two steps (its KL to the base with adapters off is 0 at the first step; a large learning rate makes it
    well above rounding at the second)."""
    runs = {loss_type: dict(loss_type=loss_type, batch_size=3, grad_accum=1) for loss_type in ("bft", "nll")}
    if stage == 3:
        runs["asft-lora"] = dict(loss_type="asft", batch_size=3, grad_accum=1, lora=True, max_steps=2,
                                 learning_rate=30.0)
    launched = launch(untied_model, tmp_path, runs, "--config_file", str(CONFIGS / f"deepspeed_zero{stage}.yaml"),
                      env=without_compiler(tmp_path))
    for name, arguments in runs.items():
        single, log_history = stored_step(untied_model, **{**arguments, "batch_size": 6})
        assert single.norm() > 0
        assert relative_difference(launched[name]["update"], single) < 1e-5, name
        if name == "asft-lora":
            kl, single_kl = asft_kl(launched[name]["log_history"]), asft_kl(log_history)
            assert kl[0] == pytest.approx(0, abs=1e-7) and kl[1] > 1e-5
            assert kl == pytest.approx(single_kl, rel=1e-3, abs=1e-7)


@pytest.mark.slow
def test_deepspeed_zero3_run_is_saved_whole_and_evaluated(tied_model, tmp_path, demo_records):
    """`bft train` under ZeRO-3 (a tied head, sharded with the embeddings) saves the model that one process trains on
    the whole batch, and `bft eval mcq` loads it. Its sample weights, tracked before and after the step with every
    process scoring its share through the sharded model, are the one process's."""
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(record) + "\n" for record in demo_records[:6]))
    questions = tmp_path / "questions.jsonl"
    questions.write_text("".join(json.dumps({"question": f"Which gene {i}?", "options": {"A": "TP53", "B": "EGFR"},
                                             "answer_idx": "AB"[i]}) + "\n" for i in range(2)))
    train = ["train", "--model_name_or_path", tied_model, "--data", str(data), "--loss_type", "bft",
             "--bft_group_size", "4", "--max_steps", "1", "--learning_rate", "1.0", "--optim", "sgd",
             "--lr_scheduler_type", "constant", "--weight_decay", "0", "--max_grad_norm", "0", "--bf16", "false",
             "--report_to", "none", "--save_strategy", "no", "--disable_tqdm", "true", "--seed", "0",
             "--track_sample_weights", "true"]
    run_launched("--config_file", str(CONFIGS / "deepspeed_zero3.yaml"), "-m", "bft.cli", *train,
                 "--per_device_train_batch_size", "3", "--output_dir", str(tmp_path / "zero3"),
                 env=without_compiler(tmp_path))
    assert main([*train, "--per_device_train_batch_size", "6", "--output_dir", str(tmp_path / "single")]) == 0

    start = load_file(Path(tied_model) / "model.safetensors")
    saved, single = (load_file(tmp_path / run / "model.safetensors") for run in ("zero3", "single"))
    assert saved.keys() == single.keys() == start.keys()
    assert all(saved[name].shape == start[name].shape for name in start)
    update, single_update = (torch.cat([(weights[name] - start[name]).flatten() for name in start])
                             for weights in (saved, single))
    assert single_update.norm() > 0 and relative_difference(update, single_update) < 1e-5
    tracked, single_tracked = (json.loads((tmp_path / run / "sample_weights.json").read_text())["epochs"]
                               for run in ("zero3", "single"))
    assert [record["epoch"] for record in tracked] == [record["epoch"] for record in single_tracked] == [0.0, 1.0]
    for record, single_record in zip(tracked, single_tracked):
        assert len(set(record["min_group_conf"])) == 6
        assert record["min_group_conf"] == pytest.approx(single_record["min_group_conf"], rel=1e-4)

    evaluation = tmp_path / "eval"
    assert main(["eval", "mcq", "--model", str(tmp_path / "zero3"), "--data", str(questions),
                 "--output", str(evaluation)]) == 0
    assert json.loads((evaluation / "results.json").read_text())["n"] == 2
