"""BFTTrainer: the update does not depend on how the optimizer step's samples are split or packed."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from bft.trainer import BFTConfig
from tests.one_step import one_step


def relative_difference(a, b):
    return ((a - b).norm() / b.norm()).item()


@pytest.mark.parametrize("loss_type", ["nll", "dft", "bft", "asft", "eaft"])
def test_update_is_the_same_for_every_micro_batch_split(tiny_model, loss_type):
    """One batch of 6, micro-batches of 4 + 2 and 3 + 3 (gradient accumulation): the same SGD update."""
    whole, _ = one_step(tiny_model, loss_type, 6, 1)
    assert whole.norm() > 0
    for batch, accum in [(4, 2), (3, 2)]:
        split, _ = one_step(tiny_model, loss_type, batch, accum)
        assert relative_difference(split, whole) < 1e-5, (batch, accum)


def test_packed_bft_update_equals_the_padded_one(tiny_model):
    """Packed rows (padding-free, every segment its own sample) give the padded batch's update."""
    padded, _ = one_step(tiny_model, "bft", 6, 1)
    packed, trainer = one_step(tiny_model, "bft", 6, 1, packing=True)
    assert trainer.args.padding_free or trainer.args.packing_strategy == "bfd"
    assert relative_difference(packed, padded) < 1e-5


@pytest.mark.parametrize("loss_type", ["asft", "eaft"])
def test_packed_token_losses_equal_the_padded_ones(tiny_model, loss_type):
    padded, _ = one_step(tiny_model, loss_type, 6, 1)
    packed, _ = one_step(tiny_model, loss_type, 6, 1, packing=True)
    assert relative_difference(packed, padded) < 1e-5


def test_loss_types_differ(tiny_model):
    """A guard on the tests above: the loss types really are different updates."""
    updates = {loss_type: one_step(tiny_model, loss_type, 6, 1)[0] for loss_type in ("dft", "bft", "asft", "eaft")}
    assert relative_difference(updates["bft"], updates["dft"]) > 1e-3
    assert relative_difference(updates["eaft"], updates["dft"]) > 1e-3
    # at the first step the model is its own reference: KL 0 with gradient 0, so ASFT's update is DFT's
    assert relative_difference(updates["asft"], updates["dft"]) < 1e-5


@pytest.mark.parametrize("lora", [False, True])
def test_asft_reference_is_the_starting_model(tiny_model, lora):
    """Full fine-tuning: a frozen copy; LoRA: the base with adapters switched off. KL 0 at the start, then > 0."""
    from peft import LoraConfig

    peft = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")
    _, trainer = one_step(tiny_model, "asft", 3, 1, max_steps=3, learning_rate=1e-2, optim="adamw_torch",
                          peft_config=peft if lora else None)
    kl = [row["asft/kl_mean"] for row in trainer.state.log_history if "asft/kl_mean" in row]
    assert (trainer.ref_model is None) == lora
    assert kl[0] == pytest.approx(0, abs=1e-7) and min(kl[1:]) > 1e-6  # adapters on: the model moved away
    assert all(0 <= row["asft/token_weight_mean"] <= 1 for row in trainer.state.log_history if "loss" in row)


def test_bft_diagnostics_are_logged(tiny_model):
    _, trainer = one_step(tiny_model, "bft", 3, 2)
    logged = trainer.state.log_history[0]
    for name in ("sample_weight", "min_group_conf", "token_weight"):
        assert 0 <= logged[f"bft/{name}_mean"] <= 1
        assert logged[f"bft/{name}_std"] >= 0
    # s_b = 1 - P_b with gamma = 1, so the means add up to one
    assert logged["bft/sample_weight_mean"] + logged["bft/min_group_conf_mean"] == pytest.approx(1, abs=1e-6)


def test_config_rejects_unknown_loss_type(tmp_path):
    with pytest.raises(ValueError, match="loss_type"):
        BFTConfig(output_dir=str(tmp_path), loss_type="focal")
    with pytest.raises(ValueError, match="bft_token_weighting"):
        BFTConfig(output_dir=str(tmp_path), loss_type="bft", bft_token_weighting="entropy")


@pytest.mark.slow
@pytest.mark.parametrize("loss_type", ["bft", "nll"])
def test_two_processes_give_the_update_of_one(tiny_model, tmp_path, loss_type):
    """DDP on CPU (gloo) through `accelerate launch`: 2 processes x 3 samples == 1 process x 6 samples.

    On a machine without GPUs, `--multi_gpu` starts the processes and BFTConfig switches them to CPU DDP
    (`accelerate launch --cpu --num_processes 2` would start a single process).
    """
    out = tmp_path / "ddp.pt"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "-m", "tests.one_step", tiny_model, str(out), loss_type, "3", "1"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600,
                            cwd=Path(__file__).resolve().parents[1])
    assert result.returncode == 0, result.stderr[-3000:]
    single, _ = one_step(tiny_model, loss_type, 6, 1)
    assert relative_difference(torch.load(out), single) < 1e-5


@pytest.mark.parametrize("loss_type", ["bft", "nll"])
def test_padding_free_batches_give_the_padded_update(tiny_model, loss_type):
    """`padding_free=True` without packing: the padded batches, concatenated into one row, the same update."""
    padded, _ = one_step(tiny_model, loss_type, 3, 2)
    flat, trainer = one_step(tiny_model, loss_type, 3, 2, padding_free=True)
    assert trainer.data_collator.padding_free and not trainer.args.packing
    assert relative_difference(flat, padded) < 1e-5


def test_lora_bft_packed_step_equals_the_padded_batch(tiny_model):
    from peft import LoraConfig

    lora = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules="all-linear", task_type="CAUSAL_LM")
    padded, _ = one_step(tiny_model, "bft", 6, 1, peft_config=lora)
    packed, trainer = one_step(tiny_model, "bft", 6, 1, packing=True, peft_config=lora)
    assert hasattr(trainer.model, "disable_adapter") and padded.norm() > 0
    assert relative_difference(packed, padded) < 1e-5


@pytest.mark.parametrize("loss_type", ["nll", "dft"])
def test_nll_and_dft_are_trls_own(tiny_model, loss_type):
    """BFTTrainer computes nll/dft itself (one code path for every loss): the update of TRL's SFTTrainer."""
    from trl import SFTTrainer

    ours, _ = one_step(tiny_model, loss_type, 3, 2)
    trls, _ = one_step(tiny_model, loss_type, 3, 2, trainer_class=SFTTrainer)
    assert relative_difference(ours, trls) < 1e-5


def test_bf16_split_invariance_is_bounded(tiny_model):
    """Under bf16 autocast, micro-batches of other shapes round differently: bounded, and finite."""
    whole, _ = one_step(tiny_model, "bft", 6, 1, bf16=True)
    split, _ = one_step(tiny_model, "bft", 3, 2, bf16=True, padding_free=True)
    assert torch.isfinite(whole).all() and torch.isfinite(split).all()
    assert relative_difference(split, whole) < 2e-2


@pytest.mark.parametrize("native", [True, False])
def test_precision_follows_the_hardware(tmp_path, monkeypatch, native):
    import bft.trainer

    monkeypatch.setattr(bft.trainer, "native_bf16", lambda device: (native, "mocked"))
    config = BFTConfig(output_dir=str(tmp_path), loss_type="bft")
    assert config.bf16 is native
    assert BFTConfig(output_dir=str(tmp_path), bf16=False).bf16 is False  # the exact float32 path on request


@pytest.mark.parametrize("settings, message", [
    ({"packing": True, "packing_strategy": "wrapped"}, "packing_strategy='wrapped'"),
    ({"packing": True, "packing_strategy": "bfd_split", "pad_to_multiple_of": 64}, "pad_to_multiple_of"),
    ({"padding_free": True, "pad_to_multiple_of": 64}, "pad_to_multiple_of"),
])
def test_bft_refuses_batches_whose_samples_it_cannot_find(tiny_model, settings, message):
    with pytest.raises(ValueError, match=message):
        one_step(tiny_model, "bft", 3, 1, **settings)


@pytest.mark.parametrize("field, value", [("bft_gamma", 0.0), ("bft_gamma", -1.0), ("asft_alpha", -0.1),
                                          ("eaft_topk", 1), ("bft_token_weight_floor", 1.5)])
def test_config_refuses_meaningless_settings(tmp_path, field, value):
    with pytest.raises(ValueError, match=field):
        BFTConfig(output_dir=str(tmp_path), loss_type="bft", **{field: value})


def test_asft_refuses_a_reference_of_another_vocabulary(tiny_model, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from bft.data.training import load_training_dataset
    from bft.trainer import BFTTrainer

    other = LlamaForCausalLM(LlamaConfig(vocab_size=50, hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                         num_attention_heads=4, num_key_value_heads=2))
    config = BFTConfig(output_dir=str(tmp_path), loss_type="asft", report_to="none", bf16=False)
    with pytest.raises(ValueError, match="another vocabulary"):
        BFTTrainer(model=AutoModelForCausalLM.from_pretrained(tiny_model), args=config, ref_model=other,
                   train_dataset=load_training_dataset("demo").select(range(4)),
                   processing_class=AutoTokenizer.from_pretrained(tiny_model))
