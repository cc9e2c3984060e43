"""Per-token figures of the LM head at the trained positions only, never as full `(batch, length, vocab)` logits.

Every loss of the project needs, at each trained position, the log-probability of its label (with gradient), and
some need more beside it: the entropy of the renormalised top-k probabilities (EAFT, detached) and the KL
divergence from a reference model's next-token distribution (ASFT, with gradient). The metrics need the entropy
and whether the label is the top-1 token. `token_statistics` computes all of them from hidden states and the head
weight, a tile of tokens at a time:

- only trained positions are projected (TRL's CPU fallback projects every position, prompt and padding included);
- each tile's logits are computed in the autocast dtype (bf16 where the hardware multiplies it) and folded into
  float32 log-sum-exps, probabilities and gradients;
- the backward reuses the forward's probabilities while they fit in `save_limit` elements, and recomputes each
  tile's logits from the hidden states otherwise (memory then stays one tile, whatever the batch).

`install_token_head` routes a model's `fused_lm_head=True` calls (the contract TRL's `SFTTrainer` uses) through it.
Of the rest of the project, only `bft.upstream` is imported.
"""

import functools
import math
import types
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import torch
from transformers.utils import ModelOutput

from bft.upstream import gather_lm_head, is_triton_available

# Elements of one logits tile ([tokens, vocab]): 8 M floats = 32 MB; at least one token a tile
TILE_ELEMENTS = 1 << 23
# Up to this many [tokens x vocab] probabilities are kept from the forward for the backward (256 MB in float32)
SAVE_LIMIT = 1 << 26
# Config fields that change how hidden states become logits; a model that sets one keeps TRL's own head
_LOGIT_TRANSFORMS = ("final_logit_softcapping", "logit_scale", "output_multiplier", "lm_head_multiplier",
                     "logits_scaling")


class TokenStatistics(NamedTuple):
    """Per trained token (`[N]` each). `log_probs` and `kl` carry gradients; the rest are detached."""

    log_probs: torch.Tensor
    entropy: torch.Tensor
    is_top1: torch.Tensor
    topk_entropy: torch.Tensor | None  # entropy of the renormalised top-k probabilities, divided by ln k
    kl: torch.Tensor | None  # KL(reference || model) over the vocabulary


def token_statistics(hidden, weight, bias, targets, *, topk=None, reference=None, save_limit=SAVE_LIMIT,
                     tile_elements=TILE_ELEMENTS) -> TokenStatistics:
    """The figures of `TokenStatistics` for `hidden` `[N, H]` and labels `targets` `[N]` under the head `weight`
    `[V, H]` (and `bias` `[V]` or None).

    `topk` asks for EAFT's normalised top-k entropy (`k` capped at the vocabulary). `reference` is a
    `(hidden, weight, bias)` triple of a frozen reference model at the same positions; it asks for the per-token
    `KL(pi_ref || pi_theta) = sum_v q_v (log q_v - log p_v)`, whose gradient reaches the model only.
    """
    ref_hidden, ref_weight, ref_bias = reference if reference is not None else (None, None, None)
    log_probs, kl, entropy, is_top1, topk_entropy = _TokenHead.apply(
        hidden, weight, bias, targets, ref_hidden, ref_weight, ref_bias, topk or 0, save_limit, tile_elements)
    return TokenStatistics(log_probs, entropy, is_top1, topk_entropy if topk else None,
                           kl if reference is not None else None)


class _TokenHead(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, bias, targets, ref_hidden, ref_weight, ref_bias, topk, save_limit,
                tile_elements):
        ctx.set_materialize_grads(False)
        num_tokens, vocab = hidden.shape[0], weight.shape[0]
        compute_dtype = _compute_dtype(hidden)
        with_reference = ref_hidden is not None
        tile = max(1, tile_elements // vocab)
        save = any(ctx.needs_input_grad[:3]) and num_tokens * vocab <= save_limit
        sum_dtype = torch.promote_types(hidden.dtype, torch.float32)
        outputs = {name: hidden.new_zeros(num_tokens, dtype=sum_dtype)
                   for name in ("log_probs", "kl", "entropy", "topk_entropy")}
        is_top1 = torch.zeros(num_tokens, dtype=torch.bool, device=hidden.device)
        probs = hidden.new_empty((num_tokens, vocab), dtype=sum_dtype) if save else None
        ref_probs = hidden.new_empty((num_tokens, vocab), dtype=sum_dtype) if save and with_reference else None
        log_z = hidden.new_zeros(num_tokens, dtype=sum_dtype)
        ref_log_z = hidden.new_zeros(num_tokens, dtype=sum_dtype) if with_reference else None
        with torch.no_grad(), _autocast_off(hidden), _gathered(weight, bias):
            for start in range(0, num_tokens, tile):
                rows = slice(start, min(start + tile, num_tokens))
                logits = _logits(hidden[rows], weight, bias, compute_dtype)
                lse = torch.logsumexp(logits, dim=-1)
                tile_probs = torch.exp(logits - lse[:, None])
                log_z[rows] = lse
                target_logits = logits.gather(1, targets[rows, None]).squeeze(1)
                outputs["log_probs"][rows] = target_logits - lse
                outputs["entropy"][rows] = lse - (tile_probs * logits).sum(-1)
                is_top1[rows] = logits.argmax(-1) == targets[rows]
                if topk:
                    outputs["topk_entropy"][rows] = _normalised_topk_entropy(logits, topk)
                if with_reference:
                    ref_logits = _logits(ref_hidden[rows], ref_weight, ref_bias, compute_dtype)
                    ref_lse = torch.logsumexp(ref_logits, dim=-1)
                    tile_ref_probs = torch.exp(ref_logits - ref_lse[:, None])
                    ref_log_z[rows] = ref_lse
                    # sum_v q (log q - log p) = sum_v q (z_ref - z) - lse_ref + lse
                    outputs["kl"][rows] = (tile_ref_probs * (ref_logits - logits)).sum(-1) - ref_lse + lse
                    if save:
                        ref_probs[rows] = tile_ref_probs
                if save:
                    probs[rows] = tile_probs
        ctx.save_for_backward(hidden, weight, bias, targets, log_z, probs, ref_hidden, ref_weight, ref_bias,
                              ref_log_z, ref_probs)
        ctx.compute_dtype, ctx.tile = compute_dtype, tile
        ctx.mark_non_differentiable(outputs["entropy"], is_top1, outputs["topk_entropy"])
        return outputs["log_probs"], outputs["kl"], outputs["entropy"], is_top1, outputs["topk_entropy"]

    @staticmethod
    def backward(ctx, grad_log_probs, grad_kl, *_):
        hidden, weight, bias, targets, log_z, probs, ref_hidden, ref_weight, ref_bias, ref_log_z, ref_probs = (
            ctx.saved_tensors)
        compute_dtype, tile = ctx.compute_dtype, ctx.tile
        needs_hidden, needs_weight, needs_bias = ctx.needs_input_grad[:3]
        sum_dtype = log_z.dtype
        grad_hidden = torch.zeros_like(hidden, dtype=sum_dtype) if needs_hidden else None
        grad_weight = None  # summed tile by tile: the first tile's product starts it (no [V, H] zeros to fill)
        grad_bias = torch.zeros_like(bias, dtype=sum_dtype) if needs_bias else None
        if grad_kl is not None and ref_hidden is None:
            grad_kl = None
        with torch.no_grad(), _autocast_off(hidden), _gathered(weight, bias):
            weight_c = weight.to(compute_dtype)
            for start in range(0, hidden.shape[0], tile):
                rows = slice(start, min(start + tile, hidden.shape[0]))
                if probs is not None:
                    tile_probs = probs[rows]
                else:
                    tile_probs = torch.exp(_logits(hidden[rows], weight, bias, compute_dtype) - log_z[rows, None])
                # d(log p_y)/dz = onehot(y) - p;  d KL(q || p)/dz = p - q
                grad_logits = torch.zeros_like(tile_probs)
                if grad_log_probs is not None:
                    g = grad_log_probs[rows].to(sum_dtype)
                    grad_logits -= g[:, None] * tile_probs
                    grad_logits.scatter_add_(1, targets[rows, None], g[:, None])
                if grad_kl is not None:
                    if ref_probs is not None:
                        tile_ref_probs = ref_probs[rows]
                    else:
                        ref_logits = _logits(ref_hidden[rows], ref_weight, ref_bias, compute_dtype)
                        tile_ref_probs = torch.exp(ref_logits - ref_log_z[rows, None])
                    grad_logits += grad_kl[rows].to(sum_dtype)[:, None] * (tile_probs - tile_ref_probs)
                grad_logits_c = grad_logits.to(compute_dtype)
                if grad_hidden is not None:
                    grad_hidden[rows] = grad_logits_c @ weight_c
                if needs_weight:
                    product = (grad_logits_c.t() @ hidden[rows].to(compute_dtype)).to(sum_dtype)
                    grad_weight = product if grad_weight is None else grad_weight.add_(product)
                if grad_bias is not None:
                    grad_bias += grad_logits.sum(0)
        return (
            None if grad_hidden is None else grad_hidden.to(hidden.dtype),
            _or_zeros(grad_weight, weight) if needs_weight else None,
            None if grad_bias is None else grad_bias.to(bias.dtype),
            None, None, None, None, None, None, None,
        )


def _or_zeros(gradient, parameter):
    """The gradient in the parameter's dtype; zeros where no token contributed."""
    return torch.zeros_like(parameter) if gradient is None else gradient.to(parameter.dtype)


def _compute_dtype(hidden: torch.Tensor) -> torch.dtype:
    device = hidden.device.type
    return torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else hidden.dtype


def _autocast_off(hidden: torch.Tensor):
    """The tiles choose their dtypes themselves: bf16 products, float32 sums."""
    return torch.autocast(hidden.device.type, enabled=False)


def _logits(hidden, weight, bias, dtype) -> torch.Tensor:
    logits = hidden.to(dtype) @ weight.to(dtype).t()
    if bias is not None:
        logits = logits + bias.to(dtype)
    return logits.to(torch.promote_types(dtype, torch.float32))  # float32 sums (float64 stays float64)


def _normalised_topk_entropy(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Entropy of the top-k probabilities renormalised to sum to one, divided by its maximum ln k (k <= vocab)."""
    k = min(k, logits.shape[-1])
    if k < 2:
        return torch.zeros(logits.shape[0], dtype=logits.dtype, device=logits.device)
    top = torch.log_softmax(logits.topk(k, dim=-1).values, dim=-1)
    return -(top.exp() * top).sum(-1) / math.log(k)


def _gathered(weight, bias):
    """Under DeepSpeed ZeRO-3 the head's parameters are shards outside its own forward: gather them meanwhile."""
    return gather_lm_head(*(p for p in (weight, bias) if isinstance(p, torch.nn.Parameter)))


@dataclass
class TokenHeadOutput(ModelOutput):
    """What a model patched by `install_token_head` returns for `fused_lm_head=True`: TRL's fields, plus ours.

    Per-token fields are `[batch, length - 1]`, aligned with the shifted labels, zero where the label is -100.
    """

    loss: torch.Tensor | None = None
    log_probs: torch.Tensor | None = None
    entropy: torch.Tensor | None = None
    is_top1: torch.Tensor | None = None
    label_mask: torch.Tensor | None = None
    topk_entropy: torch.Tensor | None = None
    kl: torch.Tensor | None = None
    aux_loss: torch.Tensor | None = None


def has_triton_head(device) -> bool:
    """TRL's Triton kernel serves CUDA/XPU devices; elsewhere its torch fallback is slower than our token head."""
    return device.type in ("cuda", "xpu") and is_triton_available()


def supports_token_head(model) -> bool:
    """Whether `install_token_head` can score this model: a plain `hidden @ W.T (+ b)` head, no logit transforms."""
    config = model.config.get_text_config()
    return all(getattr(config, name, None) in (None, 1, 1.0) for name in _LOGIT_TRANSFORMS)


def install_token_head(model) -> Callable[[], None]:
    """Make `model(..., labels=..., fused_lm_head=True)` return a `TokenHeadOutput` computed by `token_statistics`;
    returns a function that puts back the forward it replaced.

    Extra keyword arguments of such a call: `head_topk=K` (EAFT's top-k entropy) and `reference_hidden=H` (the
    reference model's last hidden states for the same inputs, `[batch, length, hidden]`) with
    `reference_head=(weight, bias)`, for ASFT's KL. Calls without `fused_lm_head=True` (generation, evaluation)
    run the model's forward as before. Apply it to the unwrapped model (under PEFT: the base model), before
    DDP/FSDP wrapping. Batches with pre-shifted `shift_labels` (context or sequence parallelism) or router logits
    (MoE) are left to the forward it replaces.
    """
    if not supports_token_head(model):
        raise ValueError(f"{type(model).__name__} transforms its logits (softcapping or scaling); the token head "
                         "supports plain linear heads only")
    previous_forward = model.forward

    @functools.wraps(type(model).forward)
    def forward(self, *args, fused_lm_head=False, labels=None, head_topk=None, reference_hidden=None,
                reference_head=None, **kwargs):
        if not fused_lm_head or "shift_labels" in kwargs or kwargs.get("output_router_logits"):
            if head_topk or reference_hidden is not None:
                raise ValueError("top-k entropy and reference KL need the token head: a plain causal LM batch")
            if fused_lm_head:
                kwargs["fused_lm_head"] = True
            return previous_forward(*args, labels=labels, **kwargs)
        kwargs["use_cache"] = False
        hidden = self.base_model(*args, **kwargs).last_hidden_state[:, :-1]
        labels = labels[:, 1:].to(hidden.device)
        mask = labels != -100
        head = self.get_output_embeddings()
        weight, bias = _full(head.weight), _full(head.bias)
        reference = None
        if reference_hidden is not None:
            ref_weight, ref_bias = reference_head
            reference = (reference_hidden[:, :-1][mask], _full(ref_weight), _full(ref_bias))
        stats = token_statistics(hidden[mask], weight, bias, labels[mask], topk=head_topk, reference=reference)
        per_token = {name: None if value is None else value.new_zeros(mask.shape).masked_scatter(mask, value)
                     for name, value in stats._asdict().items()}
        loss = -per_token["log_probs"].sum() / mask.sum().clamp(min=1)
        return TokenHeadOutput(loss=loss, label_mask=mask, **per_token)

    replaced = vars(model).get("forward")  # None: the class's forward
    model.forward = types.MethodType(forward, model)

    def restore():
        if replaced is None:
            del model.forward
        else:
            model.forward = replaced

    return restore


def _full(parameter):
    """FSDP2 holds parameters as DTensor shards; the head needs the whole matrix (differentiably)."""
    if parameter is None or not hasattr(parameter, "full_tensor"):
        return parameter
    return parameter.full_tensor()
