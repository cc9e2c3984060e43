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
