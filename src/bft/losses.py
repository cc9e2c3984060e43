"""SFT, DFT, BFT, ASFT and EAFT losses from per-token log-probabilities (the maths is in docs/method.md).

Every function takes `logprobs`, a float tensor `[B, T]` holding the log-probability of each position's target
token (already aligned with its label), and `mask`, a bool tensor `[B, T]` of the trained positions. Masked
positions are ignored whatever they hold. Gradients flow only through the log-probabilities of trained positions,
never through the weights. Nothing here imports the rest of the project.
"""

from typing import NamedTuple

import torch

EPS = 1e-8
TOKEN_WEIGHTINGS = ("prob", "group_norm")
WINDOW_ALIGNMENTS = ("centered", "trailing")


class BFTDetails(NamedTuple):
    """What BFT weighted, for diagnostics. All tensors are detached; samples are numbered as in `bft_loss`."""

    token_weights: torch.Tensor  # [B, T], zero on masked positions
    sample_weights: torch.Tensor  # [S], s_b = 1 - P_b ** gamma
    min_group_confidence: torch.Tensor  # [S], P_b
    num_trained: torch.Tensor  # [S], trained positions per sample


def sft_loss(logprobs: torch.Tensor, mask: torch.Tensor, num_items=None) -> torch.Tensor:
    """Negative log-likelihood summed over trained tokens, divided by `num_items` (default: their count)."""
    logprobs = _trained_only(logprobs, mask)
    return -logprobs.sum() / _denominator(num_items, mask)


def dft_loss(logprobs: torch.Tensor, mask: torch.Tensor, num_items=None, token_weight_floor: float = 0.0
             ) -> torch.Tensor:
    """DFT: each token's NLL scaled by its own detached probability (raised to `token_weight_floor` where below it),
    divided by `num_items`."""
    logprobs = _trained_only(logprobs, mask)
    return -(dft_token_weights(logprobs, token_weight_floor) * logprobs).sum() / _denominator(num_items, mask)


def dft_token_weights(logprobs: torch.Tensor, token_weight_floor: float = 0.0) -> torch.Tensor:
    """DFT's token weights `max(sg(p), floor)`, `p = exp(logprobs)`, same shape. Raises `ValueError` for a floor
    outside [0, 1]. The floor (0: off) keeps tokens the model finds very unlikely, such as new facts, training."""
    _check_floor(token_weight_floor)
    return logprobs.detach().exp().clamp(min=token_weight_floor)


def eaft_loss(logprobs: torch.Tensor, mask: torch.Tensor, topk_entropy: torch.Tensor, alpha: float = 1.0,
              num_items=None) -> torch.Tensor:
    """EAFT: each token's NLL scaled by `(H_k / ln k) ** alpha` (detached), `topk_entropy` already divided by ln k."""
    logprobs = _trained_only(logprobs, mask)
    weights = _trained_only(topk_entropy.detach().to(logprobs.dtype), mask).clamp(min=0).pow(alpha)
    return -(weights * logprobs).sum() / _denominator(num_items, mask)


def asft_loss(logprobs: torch.Tensor, mask: torch.Tensor, kl: torch.Tensor, alpha: float = 0.1,
              num_items=None, token_weight_floor: float = 0.0) -> torch.Tensor:
    """ASFT: DFT's token loss (floored as in `dft_loss`) plus `alpha` times each token's KL divergence from the
    reference model (`kl`, `KL(pi_ref || pi_theta)` with its gradient), summed over trained tokens and divided by
    `num_items`."""
    logprobs = _trained_only(logprobs, mask)
    per_token = (-dft_token_weights(logprobs, token_weight_floor) * logprobs
                 + alpha * _trained_only(kl.to(logprobs.dtype), mask))
    return per_token.sum() / _denominator(num_items, mask)


def min_group_confidence(
    logprobs: torch.Tensor, mask: torch.Tensor, group_size: int = 256, segment_ids: torch.Tensor | None = None
) -> torch.Tensor:
    """`P_b` of every sample: the geometric-mean probability of its weakest window of `group_size` trained tokens.

    A sample with fewer trained tokens than `group_size` is one window; a sample with none gets 0. Samples are the
    rows of the batch, or with `segment_ids` every run of equal ids within a row (packed sequences). Raises
    `ValueError` for a `group_size` under 1.
    """
    if group_size < 1:
        raise ValueError(f"group_size must be at least 1, got {group_size}")
    with torch.no_grad():
        layout = _SampleLayout(mask, segment_ids)
        confidence = layout.to_grid(_trained_only(logprobs, mask).detach().double())
        return _min_group_confidence(confidence, layout.num_trained, group_size).float()


def bft_loss(
    logprobs: torch.Tensor,
    mask: torch.Tensor,
    group_size: int = 256,
    gamma: float = 1.0,
    num_samples=None,
    token_weighting: str = "prob",
    segment_ids: torch.Tensor | None = None,
    window_alignment: str = "centered",
    token_weight_floor: float = 0.0,
    return_details: bool = False,
):
    """BFT: `sum_b s_b L_b / num_samples`, with `s_b = 1 - P_b ** gamma` and `L_b` the sample's mean weighted NLL.

    Token weights are DFT's detached probabilities (`token_weighting="prob"`) or the v3 paper's probabilities
    relative to the mean probability of a window of `group_size` trained tokens around the token
    (`"group_norm"`). That window is `"centered"` on the token (shifted inward at the sample's edges so that it
    always holds `min(group_size, n_b)` tokens) or `"trailing"` (the token and the `group_size - 1` before it, fewer
    at the sample's start). Token weights below `token_weight_floor` are raised to it. `num_samples` is the number
    of samples with a trained token in the whole optimizer step (all micro-batches, all processes); by default
    their number in this batch (a sample without one adds nothing and is not counted: docs/method.md). With
    `return_details=True` the result is `(loss, BFTDetails)`.
    """
    if token_weighting not in TOKEN_WEIGHTINGS:
        raise ValueError(f"token_weighting must be one of {TOKEN_WEIGHTINGS}, got {token_weighting!r}")
    if window_alignment not in WINDOW_ALIGNMENTS:
        raise ValueError(f"window_alignment must be one of {WINDOW_ALIGNMENTS}, got {window_alignment!r}")
    if group_size < 1:
        raise ValueError(f"group_size must be at least 1, got {group_size}")
    if gamma <= 0:
        raise ValueError(f"gamma must be positive (gamma = 0 gives every sample weight 0), got {gamma}")
    _check_floor(token_weight_floor)

    logprobs = _trained_only(logprobs, mask)
    if logprobs.dtype in (torch.float16, torch.bfloat16):
        logprobs = logprobs.float()
    layout = _SampleLayout(mask, segment_ids)
    with torch.no_grad():
        confidence = layout.to_grid(logprobs.detach().double())
        p_min = _min_group_confidence(confidence, layout.num_trained, group_size)
        sample_weights = (1.0 - p_min.pow(gamma)).to(logprobs.dtype)
        if token_weighting == "prob":
            token_weights = logprobs.detach().exp()
        else:
            relative = _group_normalized_weights(confidence.exp(), layout.num_trained, group_size, window_alignment)
            token_weights = layout.from_grid(relative).to(logprobs.dtype)
        token_weights = token_weights.clamp(min=token_weight_floor) * mask

    weighted_nll = -(token_weights * logprobs)[mask]
    per_sample = torch.zeros(layout.num_samples, dtype=weighted_nll.dtype, device=weighted_nll.device)
    per_sample = per_sample.index_add(0, layout.trained_sample, weighted_nll)
    per_sample = per_sample / (layout.num_trained.to(per_sample.dtype) + EPS)
    if num_samples is None:
        num_samples = (layout.num_trained > 0).sum()
    loss = (sample_weights * per_sample).sum() / torch.as_tensor(num_samples, device=per_sample.device).clamp(min=1)
    if not return_details:
        return loss
    return loss, BFTDetails(token_weights, sample_weights, p_min.to(logprobs.dtype), layout.num_trained)


def _check_floor(token_weight_floor: float) -> None:
    if not 0 <= token_weight_floor <= 1:
        raise ValueError(f"token_weight_floor must be in [0, 1], got {token_weight_floor}")


def _trained_only(logprobs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Zero on masked positions, so that whatever they hold (inf, NaN) reaches neither the loss nor the gradient."""
    return torch.where(mask, logprobs, torch.zeros((), dtype=logprobs.dtype, device=logprobs.device))


def _denominator(num_items, mask: torch.Tensor) -> torch.Tensor:
    count = mask.sum() if num_items is None else num_items
    return torch.as_tensor(count, device=mask.device).clamp(min=1)


class _SampleLayout:
    """Where each sample's trained positions are, and a `[S, n_max]` grid that lists them in order, left-aligned."""

    def __init__(self, mask: torch.Tensor, segment_ids: torch.Tensor | None):
        batch, length = mask.shape
        if segment_ids is None:
            sample_of = torch.arange(batch, device=mask.device)[:, None].expand(batch, length)
            self.num_samples = batch
        else:
            # A sample starts at each row's first position and wherever the segment id changes
            starts = torch.ones_like(mask)
            starts[:, 1:] = segment_ids[:, 1:] != segment_ids[:, :-1]
            sample_of = starts.flatten().long().cumsum(0).view(batch, length) - 1
            self.num_samples = int(starts.sum())
        self.mask = mask
        self.trained_sample = sample_of[mask]  # non-decreasing: samples are numbered in reading order
        self.num_trained = torch.bincount(self.trained_sample, minlength=self.num_samples)
        first = self.num_trained.cumsum(0) - self.num_trained
        self.rank = torch.arange(self.trained_sample.numel(), device=mask.device) - first[self.trained_sample]
        self.width = int(self.num_trained.max()) if self.trained_sample.numel() else 0

    def to_grid(self, values: torch.Tensor) -> torch.Tensor:
        """`[B, T]` values -> `[S, n_max]` grid of each sample's trained positions, zero-padded on the right."""
        grid = values.new_zeros(self.num_samples, self.width)
        grid[self.trained_sample, self.rank] = values[self.mask]
        return grid

    def from_grid(self, grid: torch.Tensor) -> torch.Tensor:
        """`[S, n_max]` grid -> `[B, T]`, zero on masked positions."""
        out = grid.new_zeros(self.mask.shape)
        out[self.mask] = grid[self.trained_sample, self.rank]
        return out


def _window_sums(grid: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """Sum of `grid[s, lo:hi]` for every entry of `lo`, `hi` (`[S, K]` index tensors), by prefix sums."""
    prefix = torch.nn.functional.pad(grid.cumsum(1), (1, 0))
    return prefix.gather(1, hi) - prefix.gather(1, lo)


def _min_group_confidence(confidence: torch.Tensor, num_trained: torch.Tensor, group_size: int) -> torch.Tensor:
    """`P_b` from the `[S, n_max]` grid of log-probabilities (float64, for exact prefix sums)."""
    num_samples, width = confidence.shape
    n = num_trained[:, None]
    whole = confidence.sum(1) / num_trained.clamp(min=1)
    if width >= group_size:
        starts = torch.arange(width - group_size + 1, device=confidence.device).expand(num_samples, -1)
        means = _window_sums(confidence, starts, starts + group_size) / group_size
        means = means.masked_fill(starts + group_size > n, float("inf"))
        weakest = torch.where(num_trained >= group_size, means.min(1).values, whole)
    else:
        weakest = whole
    return torch.where(num_trained > 0, weakest.exp().clamp(0, 1), torch.zeros_like(weakest))


def _group_normalized_weights(
    probs: torch.Tensor, num_trained: torch.Tensor, group_size: int, alignment: str
) -> torch.Tensor:
    """v3 token weights on the grid: `clip(p / (mean p over the token's window + eps), 0, 1)`."""
    num_samples, width = probs.shape
    rank = torch.arange(width, device=probs.device).expand(num_samples, -1)
    n = num_trained[:, None]
    if alignment == "centered":
        lo = torch.minimum(rank - (group_size - 1) // 2, (n - group_size).clamp(min=0)).clamp(min=0)
        hi = torch.minimum(lo + group_size, n)
    else:
        lo = (rank - group_size + 1).clamp(min=0)
        hi = rank + 1
    hi = torch.maximum(hi, lo + 1)  # padding cells beyond n_b: any non-empty window, they are discarded
    local_mean = _window_sums(probs, lo, hi) / (hi - lo)
    return (probs / (local_mean + EPS)).clamp(0, 1)
