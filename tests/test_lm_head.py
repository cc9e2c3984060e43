"""The token head against full logits: values and gradients of every figure, both backward paths, and the model
patch against the model's own logits and TRL's fused head."""

import math

import pytest
import torch

from bft.lm_head import install_token_head, token_statistics


def full_logits_reference(hidden, weight, bias, targets, ref_hidden, ref_weight, k):
    """Every figure from the whole `[N, V]` logits, written the obvious way, in float64."""
    logits = hidden @ weight.t() + (bias if bias is not None else 0)
    log_p = torch.log_softmax(logits, dim=-1)
    log_probs = log_p.gather(1, targets[:, None]).squeeze(1)
    entropy = -(log_p.exp() * log_p).sum(-1)
    kk = min(k, logits.shape[1])
    top = torch.log_softmax(logits.topk(kk, dim=-1).values, dim=-1)
    topk_entropy = -(top.exp() * top).sum(-1) / math.log(kk)
    q = torch.softmax(ref_hidden @ ref_weight.t(), dim=-1)
    kl = (q * (q.log() - log_p)).sum(-1)
    top1 = torch.tensor([int(row.argmax()) == int(t) for row, t in zip(logits, targets)])
    return log_probs, entropy, topk_entropy, kl, top1


def random_head(tokens=29, hidden=12, vocab=37, seed=0, bias=True):
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(tokens, hidden, generator=g, dtype=torch.float64, requires_grad=True)
    w = torch.randn(vocab, hidden, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(vocab, generator=g, dtype=torch.float64, requires_grad=True) if bias else None
    ref_h = torch.randn(tokens, hidden, generator=g, dtype=torch.float64)
    ref_w = torch.randn(vocab, hidden, generator=g, dtype=torch.float64)
    targets = torch.randint(0, vocab, (tokens,), generator=g)
    return h, w, b, ref_h, ref_w, targets


@pytest.mark.parametrize("save_limit", [1 << 30, 0], ids=["saved", "recomputed"])
@pytest.mark.parametrize("tile_elements", [1 << 23, 37 * 5], ids=["one-tile", "tiles-of-5"])
@pytest.mark.parametrize("k", [20, 50])  # 50 > vocabulary: k is capped
@pytest.mark.parametrize("bias", [True, False])
def test_every_figure_and_gradient_matches_full_logits(save_limit, tile_elements, k, bias):
    h, w, b, ref_h, ref_w, targets = random_head(bias=bias)
    stats = token_statistics(h, w, b, targets, topk=k, reference=(ref_h, ref_w, None), save_limit=save_limit,
                             tile_elements=tile_elements)
    log_probs, entropy, topk_entropy, kl, top1 = full_logits_reference(h, w, b, targets, ref_h, ref_w, k)
    for fast, slow in [(stats.log_probs, log_probs), (stats.entropy, entropy), (stats.topk_entropy, topk_entropy),
                       (stats.kl, kl)]:
        torch.testing.assert_close(fast, slow, rtol=1e-10, atol=1e-12)
    assert torch.equal(stats.is_top1, top1)
    g = torch.Generator().manual_seed(1)
    a, c = torch.rand(len(targets), generator=g, dtype=torch.float64), torch.rand(len(targets), generator=g,
                                                                               dtype=torch.float64)
    inputs = [x for x in (h, w, b) if x is not None]
    fast_grads = torch.autograd.grad((a * stats.log_probs).sum() + (c * stats.kl).sum(), inputs)
    slow_grads = torch.autograd.grad((a * log_probs).sum() + (c * kl).sum(), inputs)
    for fast, slow in zip(fast_grads, slow_grads):
        torch.testing.assert_close(fast, slow, rtol=1e-10, atol=1e-12)


def test_topk_entropy_with_ties_and_detached_figures():
    h = torch.zeros(3, 4, dtype=torch.float64, requires_grad=True)  # every logit equal: a 20-way tie
    w = torch.randn(30, 4, dtype=torch.float64)
    stats = token_statistics(h, w, None, torch.tensor([0, 1, 2]), topk=20)
    torch.testing.assert_close(stats.topk_entropy, torch.ones(3, dtype=torch.float64))  # uniform: H_k = ln k
    assert not stats.entropy.requires_grad and not stats.topk_entropy.requires_grad and stats.kl is None


def test_no_tokens_gives_empty_figures_and_zero_gradients():
    h, w, b, _, _, _ = random_head(tokens=0)
    stats = token_statistics(h, w, b, torch.zeros(0, dtype=torch.long))
    assert stats.log_probs.shape == (0,)
    stats.log_probs.sum().backward()
    assert w.grad.abs().sum() == 0


def test_patched_model_matches_its_own_logits_and_trls_head(tiny_model):
    from transformers import AutoModelForCausalLM
    from trl.trainer import add_fused_lm_head

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
    input_ids = torch.randint(3, model.config.vocab_size, (3, 17))
    labels = input_ids.clone()
    labels[:, :5] = -100  # a prompt
    labels[1, 12:] = -100  # padding
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, 12:] = 0
    with torch.no_grad():
        full = torch.log_softmax(model(input_ids=input_ids, attention_mask=attention_mask).logits[:, :-1], -1)
        expected = full.gather(2, input_ids[:, 1:, None]).squeeze(2)
        add_fused_lm_head(model, outputs=("log_probs", "entropy", "is_top1"))
        trl = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels, fused_lm_head=True)
        trl_forward = model.forward
        restore = install_token_head(model)
        ours = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels, fused_lm_head=True)
    mask = labels[:, 1:] != -100
    assert torch.equal(ours.label_mask, mask)
    torch.testing.assert_close(ours.log_probs[mask], expected[mask], rtol=1e-5, atol=1e-5)
    assert (ours.log_probs[~mask] == 0).all()
    for name in ("log_probs", "entropy"):
        torch.testing.assert_close(getattr(ours, name), getattr(trl, name), rtol=1e-5, atol=1e-5)
    assert torch.equal(ours.is_top1, trl.is_top1)
    # without fused_lm_head the forward is the model's own
    logits = model(input_ids=input_ids, attention_mask=attention_mask).logits
    torch.testing.assert_close(torch.log_softmax(logits[:, :-1], -1), full)
    restore()  # the forward it replaced, TRL's head
    assert model.forward == trl_forward
    del model.forward
    assert install_token_head(model)() is None and "forward" not in vars(model)  # the class's forward again


def test_bf16_head_is_finite_and_close_to_float32():
    h, w, _, _, _, targets = random_head(tokens=64, hidden=64, vocab=500)
    exact = token_statistics(h.float(), w.float(), None, targets).log_probs
    with torch.autocast("cpu", dtype=torch.bfloat16):
        fast = token_statistics(h.float().requires_grad_(), w.float(), None, targets, topk=20)
    assert torch.isfinite(fast.log_probs).all() and torch.isfinite(fast.topk_entropy).all()
    # bf16 products of 64 terms: about 3 significant digits of each logit (|logit| up to ~30 here)
    assert (fast.log_probs - exact).abs().max() < 0.25
    fast.log_probs.sum().backward()
