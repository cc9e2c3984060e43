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


@pytest.mark.parametrize("loss_type", ["nll", "dft", "bft"])
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


def test_bft_differs_from_dft(tiny_model):
    """A guard on the tests above: the loss types really are different updates."""
    bft, _ = one_step(tiny_model, "bft", 6, 1)
    dft, _ = one_step(tiny_model, "dft", 6, 1)
    assert relative_difference(bft, dft) > 1e-3


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
