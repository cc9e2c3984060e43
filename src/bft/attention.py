"""Attention for training on CPUs: each packed sequence attends on its own.

transformers' `sdpa` attends over a whole padding-free row (every packed sequence of the batch, concatenated)
with a block-diagonal mask, so its cost grows with the square of the row's length instead of the sum of squares
of the sequences' lengths: eight packed sequences of 95 tokens cost eight times the attention of the same batch
padded. `segment_sdpa` finds the sequences of a packed row from its position ids (each starts where the
positions stop counting up by one, as transformers' own masks do), lays them out as a batch of sequences (padded
to the longest) and attends with plain matrix products, softmax in float32. Batches that are not packed go to
transformers' SDPA, in float32 on CPUs, whose bf16 kernels are slower than float32 ones (docs/benchmarks.md).

`use_segment_attention(model)` switches a model to it under the name `bft_sdpa` and returns a function that switches
it back (before the model is saved or generates). Batches that are not packed go to transformers' SDPA as before.
"""

from collections.abc import Callable

import torch
from transformers import AttentionInterface, AttentionMaskInterface

from bft.upstream import attention_implementation, sdpa_attention_forward, sdpa_mask

NAME = "bft_sdpa"


def segment_sdpa(module, query, key, value, attention_mask, position_ids=None, **kwargs):
    """An `AttentionInterface` function: per packed sequence for padding-free rows, transformers' SDPA otherwise."""
    bounds = _packed_bounds(position_ids, query)
    if bounds is not None:
        return _attend_per_sequence(module, query, key, value, bounds, **kwargs), None
    dtype = query.dtype
    if query.device.type == "cpu" and dtype in (torch.bfloat16, torch.float16):
        query, key, value = query.float(), key.float(), value.float()
        if attention_mask is not None and attention_mask.dtype != torch.bool:
            attention_mask = attention_mask.float()
    output, _ = sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    return output.to(dtype), None


def _attend_per_sequence(module, query, key, value, bounds, scaling=None, dropout=0.0, sliding_window=None,
                         softcap=None, **_):
    """Causal attention within each `(start, end)` span of a single row: `[1, heads, T, d]` -> `[1, T, heads, d]`.
    With `sliding_window` (Mistral, Gemma, Phi-3 layers), a query sees the last `sliding_window` keys, itself
    included, as transformers' masks do. Raises `ValueError` for a `softcap` of the attention scores (Gemma 2), which
    transformers' SDPA refuses too: such models attend with `eager`."""
    if softcap is not None:
        raise ValueError("bft_sdpa, like transformers' sdpa, does not support softcap: load the model with "
                         "attn_implementation='eager'")
    groups = query.shape[1] // key.shape[1]
    if groups > 1:  # grouped-query attention: every query head sees its key/value head
        key, value = key.repeat_interleave(groups, dim=1), value.repeat_interleave(groups, dim=1)
    lengths = [end - start for start, end in bounds]
    longest = max(lengths)

    def as_batch(x):  # [1, heads, T, d] -> [sequences, heads, longest, d], zero-padded
        return torch.stack([torch.nn.functional.pad(piece[0], (0, 0, 0, longest - piece.shape[2]))
                            for piece in x.split(lengths, dim=2)])

    query, key, value = as_batch(query), as_batch(key), as_batch(value)
    scores = torch.matmul(query, key.transpose(-1, -2))
    scores = scores.to(torch.promote_types(scores.dtype, torch.float32)) * (scaling or query.shape[-1] ** -0.5)
    # causal, within the window, and no padded key; every query sees itself, so no row is empty (padding's included)
    positions = torch.arange(longest, device=query.device)
    behind = positions[:, None] - positions[None, :]  # query position - key position
    hidden = (behind < 0) | (positions >= torch.tensor(lengths)[:, None, None, None])
    if sliding_window is not None:
        hidden = hidden | (behind >= sliding_window)
    hidden = hidden & (behind != 0)
    weights = torch.softmax(scores.masked_fill(hidden, float("-inf")), dim=-1).to(value.dtype)
    if dropout > 0:
        weights = torch.nn.functional.dropout(weights, p=dropout, training=module.training)
    output = torch.matmul(weights, value).transpose(1, 2)  # [sequences, longest, heads, d]
    return torch.cat([output[row, :length] for row, length in enumerate(lengths)])[None]


def _packed_bounds(position_ids, query):
    """`[(start, end), ...]` of the sequences of a single packed row, or None when the batch is not one."""
    if position_ids is None or query.shape[0] != 1 or position_ids.shape[-1] != query.shape[2]:
        return None
    positions = position_ids.reshape(-1)
    starts = torch.nonzero(positions[1:] != positions[:-1] + 1).flatten() + 1
    if starts.numel() == 0:
        return None
    cuts = [0, *starts.tolist(), positions.numel()]
    return list(zip(cuts[:-1], cuts[1:]))


AttentionInterface.register(NAME, segment_sdpa)
AttentionMaskInterface.register(NAME, sdpa_mask)


def use_segment_attention(model) -> Callable[[], None]:
    """Switch `model` (and its sub-models) to `bft_sdpa`; returns a function that switches it back to the
    implementation it had."""
    previous = attention_implementation(model)
    model.set_attn_implementation(NAME)
    return lambda: model.set_attn_implementation(previous)
