"""Knowledge-gap statistics: where a model's low-confidence tokens are, and what BFT's weights make of them.

Pure functions over one sample's trained-token log-probabilities (numpy arrays, in order). A token is *low* when
its probability is below `threshold`. Windows are those of BFT: `group_size` consecutive trained tokens, stride 1
(one window of all tokens when the sample is shorter). Dense runs of low tokens (rare entities, causal chains)
show as windows with a high low-token fraction and long runs; scattered stylistic noise shows as a low fraction
and runs of one.
"""

import numpy as np


def longest_run(flags: np.ndarray) -> int:
    """Length of the longest run of consecutive True values."""
    best = current = 0
    for flag in flags:
        current = current + 1 if flag else 0
        best = max(best, current)
    return best


def window_starts(n: int, group_size: int) -> range:
    return range(max(n - group_size, 0) + 1) if n else range(0)


def window_statistics(logprobs: np.ndarray, group_size: int, threshold: float) -> dict:
    """Per window: group confidence (mean log-prob), fraction of low tokens, longest low run; and the weakest."""
    low = np.exp(logprobs) < threshold
    size = min(group_size, len(logprobs))
    starts = list(window_starts(len(logprobs), group_size))
    confidence = [float(logprobs[s : s + size].mean()) for s in starts]
    low_fraction = [float(low[s : s + size].mean()) for s in starts]
    runs = [longest_run(low[s : s + size]) for s in starts]
    weakest = int(np.argmin(confidence)) if starts else 0
    return {"group_confidence": confidence, "low_fraction": low_fraction, "longest_low_run": runs,
            "weakest_start": starts[weakest] if starts else 0, "weakest_end": (starts[weakest] + size) if starts else 0}


def clustering_ratio(low_flags: list[np.ndarray]) -> float:
    """P(next token low | token low) / P(token low), over all samples: 1 for scattered lows, above 1 for dense runs."""
    pairs = both = lows = total = 0
    for flags in low_flags:
        lows += int(flags.sum())
        total += len(flags)
        pairs += int(flags[:-1].sum())
        both += int((flags[:-1] & flags[1:]).sum())
    if not pairs or not lows:
        return float("nan")
    return (both / pairs) / (lows / total)


def weight_share_of_hardest(sample_weights: np.ndarray, min_group_confidence: np.ndarray,
                            fraction: float = 0.1) -> float:
    """Share of the total sample weight carried by the `fraction` of samples with the lowest `P_b`."""
    if not len(sample_weights) or sample_weights.sum() == 0:
        return float("nan")
    count = max(int(round(fraction * len(sample_weights))), 1)
    hardest = np.argsort(min_group_confidence, kind="stable")[:count]
    return float(sample_weights[hardest].sum() / sample_weights.sum())
