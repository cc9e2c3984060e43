"""The branch `BFTTrainer` and GRPO take on a CUDA GPU, run on this CPU.

There, nll, dft and bft get their per-token log-probs from TRL's fused head and its Triton kernel, and padding-free
rows attend through transformers' own attention (not `bft.attention`). Triton's interpreter (`TRITON_INTERPRET=1`,
set in conftest.py before TRL is imported) runs that kernel on CPU tensors; `take_cuda_branch` makes the trainer and
TRL choose it as they would for a CUDA device. Each test compares with the CPU path's update, the project's token
head, which tests/test_lm_head.py checks against full logits.
"""

import pytest
import torch

from tests.one_step import one_step, stored_step
from tests.test_trainer import relative_difference


def take_cuda_branch(monkeypatch) -> list:
    """Make TRL's head use its Triton kernel for CPU tensors and the trainer choose TRL's head and transformers'
    attention, as on CUDA. Returns a list that grows by one at each Triton launch decision (the test's proof that
    the kernel ran)."""
    import trl.kernels.chunked_logprob as kernel
    import trl.trainer.utils as trl_utils

    import bft.grpo
    import bft.trainer

    assert kernel._TRITON_AVAILABLE, "triton is a test dependency (requirements.txt)"
    assert type(kernel._forward_kernel).__name__ == "InterpretedFunction", "TRL was imported before TRITON_INTERPRET"
    launches = []

    def use_triton(device):
        launches.append(device.type)
        return True

    monkeypatch.setattr(kernel, "_use_triton", use_triton)
    monkeypatch.setattr(trl_utils, "_use_triton", use_triton)
    monkeypatch.setattr(bft.trainer, "has_triton_head", lambda device: True)
    monkeypatch.setattr(bft.grpo, "has_triton_head", lambda device: True)
    monkeypatch.setattr(bft.trainer, "use_segment_attention", lambda model: lambda: None)  # transformers' attention
    return launches


def head_of(trainer) -> str:
    """Which patch serves the model's `fused_lm_head=True` calls in training: TRL's `add_fused_lm_head` or our token
    head. (train() restores the model's own forward when it ends.)"""
    with trainer.patched():
        return trainer.model.forward.__func__.__code__.co_qualname.split(".")[0]


@pytest.mark.slow
@pytest.mark.parametrize("loss_type", ["nll", "dft", "bft"])
def test_triton_head_gives_the_token_heads_update(tiny_model, monkeypatch, loss_type):
    """One batch of 6 on the CUDA branch, whole, split 4 + 2, and as padding-free rows: the CPU path's update."""
    expected, _ = stored_step(tiny_model, loss_type, 6, 1)
    launches = take_cuda_branch(monkeypatch)
    whole, trainer = one_step(tiny_model, loss_type, 6, 1)
    assert launches, "TRL's Triton kernel did not run"
    assert head_of(trainer) == "add_fused_lm_head"
    assert relative_difference(whole, expected) < 1e-5
    split, _ = one_step(tiny_model, loss_type, 4, 2)
    assert relative_difference(split, expected) < 1e-5
    if loss_type == "bft":  # each padding-free sequence is a sample of its own, attending to itself only
        flat, trainer = one_step(tiny_model, loss_type, 3, 2, padding_free=True)
        assert trainer.data_collator.padding_free
        assert relative_difference(flat, expected) < 1e-5


@pytest.mark.slow
def test_bf16_on_the_cuda_branch_is_bounded(tiny_model, monkeypatch):
    """bf16 autocast through TRL's Triton head: finite, and within the bound the CPU path keeps."""
    exact, _ = stored_step(tiny_model, "bft", 6, 1)
    take_cuda_branch(monkeypatch)
    fast, _ = one_step(tiny_model, "bft", 3, 2, bf16=True, padding_free=True)
    assert torch.isfinite(fast).all()
    assert relative_difference(fast, exact) < 2e-2


def test_asft_and_eaft_keep_the_token_head_on_the_cuda_branch(tiny_model, monkeypatch):
    """TRL's head computes log-probs only: the losses that need the top-k entropy or the KL use the project's."""
    take_cuda_branch(monkeypatch)
    _, trainer = one_step(tiny_model, "eaft", 6, 1)
    assert head_of(trainer) == "install_token_head"
    with pytest.raises(ValueError, match="lm_head='trl'"):
        one_step(tiny_model, "eaft", 6, 1, lm_head="trl")


def test_grpo_scoring_on_the_cuda_branch_equals_the_token_head(tiny_model, tmp_path, monkeypatch, demo_records):
    """GRPO's completion log-probs through TRL's Triton head (what a GPU runs) equal the token head's."""
    from datasets import Dataset

    from bft import rewards
    from bft.grpo import BFTGRPOConfig, BFTGRPOTrainer
    from bft.models import load_model
    from bft.upstream import grpo_token_logps

    torch.manual_seed(0)
    input_ids = torch.randint(3, 300, (3, 12))
    attention_mask = torch.ones_like(input_ids)
    attention_mask[0, :4] = 0  # a left-padded prompt
    weights = torch.linspace(0.5, 1.5, 5)

    def scored(cuda_branch):
        model, tokenizer = load_model(tiny_model)
        config = BFTGRPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=4, num_generations=2,
                               bf16=False, report_to="none", max_completion_length=4)
        trainer = BFTGRPOTrainer(model, [rewards.go_naming_format], args=config,
                                 train_dataset=Dataset.from_list([{"prompt": r["messages"][:1], "answer": "x"}
                                                                  for r in demo_records[:4]]),
                                 processing_class=tokenizer)  # as `bft grpo` builds it
        assert trainer.token_head is not cuda_branch
        logps, entropies = grpo_token_logps(trainer, trainer.model, input_ids, attention_mask, 5, compute_entropy=True)
        (logps * weights).sum().backward()
        return logps.detach(), entropies.detach(), trainer.model.lm_head.weight.grad

    ours = scored(cuda_branch=False)
    launches = take_cuda_branch(monkeypatch)
    theirs = scored(cuda_branch=True)
    assert launches
    for mine, triton in zip(ours, theirs):
        torch.testing.assert_close(triton, mine, rtol=1e-5, atol=1e-5)
    assert ours[2].abs().sum() > 0


def test_head_choices_refuse_what_they_cannot_compute(tmp_path):
    """`lm_head='token'` needs a plain linear head; TRL's head cannot serve asft or eaft; unknown names fail."""
    from types import SimpleNamespace

    from transformers import Gemma2Config, Gemma2ForCausalLM

    from bft.errors import InputError
    from bft.trainer import BFTConfig, _uses_token_head

    softcapped = Gemma2ForCausalLM(Gemma2Config(vocab_size=64, hidden_size=16, intermediate_size=32,
                                                num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                                                head_dim=8))
    cpu = torch.device("cpu")
    with pytest.raises(InputError, match="softcaps"):
        _uses_token_head(SimpleNamespace(lm_head="token", loss_type="bft", device=cpu), softcapped)
    assert not _uses_token_head(SimpleNamespace(lm_head="auto", loss_type="bft", device=cpu), softcapped)
    for loss_type in ("asft", "eaft"):
        with pytest.raises(InputError, match="lm_head='trl'"):
            BFTConfig(output_dir=str(tmp_path), loss_type=loss_type, lm_head="trl")
    with pytest.raises(InputError, match="lm_head must be one of"):
        BFTConfig(output_dir=str(tmp_path), lm_head="liger")
