"""Summary statistics with 95% bootstrap intervals, deterministic for a given input."""

import numpy as np


def mean_with_interval(values, resamples: int = 2000, seed: int = 0) -> dict:
    """`{"mean", "ci_low", "ci_high"}`: the mean and the 2.5/97.5 percentiles of bootstrap-resampled means."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return {"mean": float("nan"), "ci_low": float("nan"), "ci_high": float("nan")}
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, values.size, size=(resamples, values.size))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return {"mean": float(values.mean()), "ci_low": float(low), "ci_high": float(high)}


def summarise(prefix: str, values) -> dict:
    """`{prefix_mean, prefix_ci_low, prefix_ci_high}` for a results file."""
    return {f"{prefix}_{key}": value for key, value in mean_with_interval(values).items()}


def paired_bootstrap(a: dict, b: dict, resamples: int = 2000, seed: int = 0) -> dict:
    """Difference a - b of two methods scored item by item under several seeds, with a 95% interval that counts
    both sources of variation: each resample draws seeds with replacement, and items with replacement (the same
    items for every seed, and for both methods: the pairing is kept), and takes the mean difference.

    `a`, `b`: {seed: {item id: score}}; only seeds and items both have are used.
    """
    seeds = sorted(set(a) & set(b))
    items = sorted(set.intersection(*(set(a[s]) & set(b[s]) for s in seeds))) if seeds else []
    if not items:
        return {"mean": float("nan"), "ci_low": float("nan"), "ci_high": float("nan"), "seeds": 0, "items": 0}
    difference = np.array([[a[s][i] - b[s][i] for i in items] for s in seeds], dtype=float)  # [seeds, items]
    rng = np.random.default_rng(seed)
    drawn_seeds = rng.integers(0, len(seeds), size=(resamples, len(seeds)))
    drawn_items = rng.integers(0, len(items), size=(resamples, len(items)))
    means = np.array([difference[s][:, i].mean() for s, i in zip(drawn_seeds, drawn_items)])
    low, high = np.percentile(means, [2.5, 97.5])
    return {"mean": float(difference.mean()), "ci_low": float(low), "ci_high": float(high), "seeds": len(seeds),
            "items": len(items)}
