"""Per-sequence attention of packed rows: the same as attending to each sequence alone, values and gradients."""

from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

from bft.attention import segment_sdpa, use_segment_attention


def per_sequence_reference(query, key, value, lengths, window=None):
    """Each sequence alone through torch's SDPA, causal, each query seeing the last `window` keys (itself included)."""
    groups = query.shape[1] // key.shape[1]
    pieces, start = [], 0
    for length in lengths:
        span = slice(start, start + length)
        k = key[:, :, span].repeat_interleave(groups, 1)
        v = value[:, :, span].repeat_interleave(groups, 1)
        q_pos, k_pos = torch.arange(length)[:, None], torch.arange(length)[None, :]
        visible = (k_pos <= q_pos) & (k_pos > q_pos - (window or length))
        pieces.append(F.scaled_dot_product_attention(query[:, :, span], k, v, attn_mask=visible).transpose(1, 2))
        start += length
    return torch.cat(pieces, dim=1)


@pytest.mark.parametrize("lengths, window", [([5, 1, 9, 3], None), ([12], None), ([5, 1, 9, 3], 4)])
def test_packed_row_attends_per_sequence(lengths, window):
    g = torch.Generator().manual_seed(0)
    total = sum(lengths)
    tensors = [torch.randn(1, heads, total, 8, generator=g, dtype=torch.float64, requires_grad=True)
               for heads in (4, 2, 2)]  # grouped-query attention: 4 query heads, 2 key/value heads
    positions = torch.cat([torch.arange(n) for n in lengths])[None]
    module = SimpleNamespace(training=False, num_key_value_groups=2, is_causal=True)
    fast, _ = segment_sdpa(module, *tensors, None, position_ids=positions, scaling=8**-0.5, sliding_window=window)
    slow = per_sequence_reference(*tensors, lengths, window)
    torch.testing.assert_close(fast, slow)
    weights = torch.randn(slow.shape, generator=g, dtype=torch.float64)
    fast_grads = torch.autograd.grad((fast * weights).sum(), tensors)
    slow_grads = torch.autograd.grad((slow * weights).sum(), tensors)
    for a, b in zip(fast_grads, slow_grads):
        torch.testing.assert_close(a, b)


def test_softcapped_scores_are_refused():
    """Gemma 2 caps its attention scores; per-sequence SDPA cannot, so it says so instead of attending uncapped."""
    tensors = [torch.randn(1, 2, 6, 8) for _ in range(3)]
    module = SimpleNamespace(training=False, num_key_value_groups=1, is_causal=True)
    with pytest.raises(ValueError, match="softcap"):
        segment_sdpa(module, *tensors, None, position_ids=torch.tensor([[0, 1, 2, 0, 1, 2]]), softcap=50.0)


def test_packed_batch_through_the_model_equals_the_padded_batch(tiny_model):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
    restore = use_segment_attention(model)
    assert model.config._attn_implementation == "bft_sdpa"
    g = torch.Generator().manual_seed(0)
    lengths = [7, 11, 4]
    sequences = [torch.randint(3, model.config.vocab_size, (n,), generator=g) for n in lengths]
    padded = torch.stack([F.pad(s, (0, max(lengths) - len(s))) for s in sequences])
    mask = torch.stack([F.pad(torch.ones(len(s), dtype=torch.long), (0, max(lengths) - len(s))) for s in sequences])
    with torch.no_grad():
        padded_logits = model(input_ids=padded, attention_mask=mask).logits
        packed_logits = model(input_ids=torch.cat(sequences)[None],
                              position_ids=torch.cat([torch.arange(n) for n in lengths])[None]).logits[0]
    expected = torch.cat([padded_logits[i, :n] for i, n in enumerate(lengths)])
    torch.testing.assert_close(packed_logits, expected, rtol=1e-5, atol=1e-5)
    restore()
    assert model.config._attn_implementation == "sdpa"
