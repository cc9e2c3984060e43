"""Plain reference implementations of docs/method.md, written with Python loops over samples, tokens and windows.

Slow and obviously correct: the vectorised losses in `bft.losses` are tested against these.
"""

import math

import torch

EPS = 1e-8


def split_samples(mask, segment_ids=None):
    """List of samples, each a list of (row, position) of its trained positions, in order (empty samples kept)."""
    samples = []
    for b in range(mask.shape[0]):
        current_segment = None
        for t in range(mask.shape[1]):
            segment = None if segment_ids is None else int(segment_ids[b, t])
            if t == 0 or segment != current_segment:
                samples.append([])
                current_segment = segment
            if mask[b, t]:
                samples[-1].append((b, t))
    return samples


def min_group_confidence(logprobs, mask, group_size, segment_ids=None):
    values = []
    for positions in split_samples(mask, segment_ids):
        confidences = [float(logprobs[b, t]) for b, t in positions]
        if not confidences:
            values.append(0.0)
            continue
        if len(confidences) < group_size:
            weakest = sum(confidences) / len(confidences)
        else:
            weakest = min(
                sum(confidences[i : i + group_size]) / group_size for i in range(len(confidences) - group_size + 1)
            )
        values.append(min(max(math.exp(weakest), 0.0), 1.0))
    return values


def group_norm_weight(probs, index, group_size, alignment):
    n = len(probs)
    if alignment == "centered":
        lo = index - (group_size - 1) // 2
        lo = max(0, min(lo, n - group_size))
        hi = min(lo + group_size, n)
    else:
        lo, hi = max(0, index - group_size + 1), index + 1
    window = probs[lo:hi]
    return min(max(probs[index] / (sum(window) / len(window) + EPS), 0.0), 1.0)


def bft_loss(logprobs, mask, group_size=256, gamma=1.0, num_samples=None, token_weighting="prob",
             segment_ids=None, window_alignment="centered", token_weight_floor=0.0):
    """Loop reference of the BFT loss; `logprobs` may require grad."""
    samples = split_samples(mask, segment_ids)
    p_min = min_group_confidence(logprobs.detach(), mask, group_size, segment_ids)
    total = logprobs.new_zeros((), dtype=torch.float64)
    for positions, p in zip(samples, p_min):
        sample_weight = 1.0 - p**gamma
        probs = [math.exp(float(logprobs[b, t].detach())) for b, t in positions]
        sample_loss = logprobs.new_zeros((), dtype=torch.float64)
        for i, (b, t) in enumerate(positions):
            if token_weighting == "prob":
                weight = probs[i]
            else:
                weight = group_norm_weight(probs, i, group_size, window_alignment)
            weight = max(weight, token_weight_floor)
            sample_loss = sample_loss - weight * logprobs[b, t].double()
        total = total + sample_weight * sample_loss / (len(positions) + EPS)
    count = sum(1 for positions in samples if positions) if num_samples is None else num_samples
    return total / max(count, 1)


def token_mean(logprobs, mask, token_loss, num_items=None):
    """Sum of `token_loss(b, t)` over the trained positions, divided by their count (or by `num_items`)."""
    total = logprobs.new_zeros((), dtype=torch.float64)
    count = 0
    for b in range(mask.shape[0]):
        for t in range(mask.shape[1]):
            if mask[b, t]:
                total = total + token_loss(b, t)
                count += 1
    return total / max(count if num_items is None else num_items, 1)


def sft_loss(logprobs, mask, num_items=None):
    return token_mean(logprobs, mask, lambda b, t: -logprobs[b, t].double(), num_items)


def dft_loss(logprobs, mask, num_items=None, token_weight_floor=0.0):
    def token_loss(b, t):
        return -max(math.exp(float(logprobs[b, t].detach())), token_weight_floor) * logprobs[b, t].double()

    return token_mean(logprobs, mask, token_loss, num_items)


def eaft_loss(logprobs, mask, topk_entropy, alpha=1.0, num_items=None):
    """Loop reference of EAFT, given each token's normalised top-k entropy."""
    def token_loss(b, t):
        return -max(float(topk_entropy[b, t]), 0.0) ** alpha * logprobs[b, t].double()

    return token_mean(logprobs, mask, token_loss, num_items)


def asft_loss(logprobs, mask, kl, alpha=0.1, num_items=None, token_weight_floor=0.0):
    """Loop reference of ASFT, given each token's KL divergence from the reference (which carries a gradient)."""
    def token_loss(b, t):
        weight = max(math.exp(float(logprobs[b, t].detach())), token_weight_floor)
        return -weight * logprobs[b, t].double() + alpha * kl[b, t].double()

    return token_mean(logprobs, mask, token_loss, num_items)
