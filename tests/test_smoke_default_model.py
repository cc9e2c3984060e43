"""Smoke test of the real embedded default model: it loads, answers sensibly, and trains with BFT."""

import json
from pathlib import Path

import pytest
import torch

from bft.cli import main
from bft.models import load_for_eval

pytestmark = pytest.mark.slow


def test_default_model_knows_some_biology():
    model, tokenizer = load_for_eval("smollm2-135m-instruct")
    messages = [{"role": "user", "content": "Which organelle produces most of a cell's ATP?"}]
    inputs = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                           return_dict=True)
    with torch.no_grad():
        output = model.generate(**inputs, max_new_tokens=24, do_sample=False)
    answer = tokenizer.decode(output[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    assert "mitochondri" in answer.lower()


def test_two_bft_steps_on_the_default_model(tmp_path, demo_records):
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(record) + "\n" for record in demo_records[:4]))
    out = tmp_path / "run"
    recipe = Path(__file__).resolve().parents[1] / "configs" / "demo.yaml"
    assert main(["train", "--config", str(recipe), "--data", str(data), "--output_dir", str(out),
                 "--max_steps", "2", "--per_device_train_batch_size", "2", "--logging_steps", "1",
                 "--disable_tqdm", "true"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["loss_type"] == "bft" and metrics["global_step"] == 2
    assert 0 < metrics["bft/min_group_conf_mean"] < 1 and metrics["train_loss"] > 0
