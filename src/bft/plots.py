"""Training plots, written as PNG without a display."""

from pathlib import Path


def plot_training(log_history: list[dict], path) -> None:
    """Loss and the plain NLL per logged step, and BFT's mean sample weight and P_b where they were logged."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [row for row in log_history if "loss" in row and "step" in row]
    bft_rows = [row for row in rows if "bft/sample_weight_mean" in row]
    fig, axes = plt.subplots(1, 2 if bft_rows else 1, figsize=(10 if bft_rows else 5, 3.5), squeeze=False)
    axes = axes[0]
    axes[0].plot([r["step"] for r in rows], [r["loss"] for r in rows], marker=".", label="loss")
    nll_rows = [row for row in rows if "nll" in row]
    if nll_rows:  # the plain NLL beside the loss (the same curve for loss_type nll)
        axes[0].plot([r["step"] for r in nll_rows], [r["nll"] for r in nll_rows], marker=".", label="nll")
        axes[0].legend()
    axes[0].set(xlabel="optimizer step", ylabel="training loss", title="loss")
    if bft_rows:
        steps = [r["step"] for r in bft_rows]
        for key, label in [("bft/sample_weight_mean", "sample weight s_b"), ("bft/min_group_conf_mean", "P_b"),
                           ("bft/token_weight_mean", "token weight")]:
            axes[1].plot(steps, [r[key] for r in bft_rows], marker=".", label=label)
        axes[1].set(xlabel="optimizer step", ylabel="mean", title="BFT weights", ylim=(0, 1))
        axes[1].legend()
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_rewards(log_history: list[dict], path) -> None:
    """GRPO: mean reward (with its spread across completions) and KL to the starting model per logged step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [row for row in log_history if "reward" in row and "step" in row]
    steps = [row["step"] for row in rows]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    mean = [row["reward"] for row in rows]
    spread = [row.get("reward_std", 0.0) for row in rows]
    axes[0].plot(steps, mean, marker=".")
    axes[0].fill_between(steps, [m - s for m, s in zip(mean, spread)], [m + s for m, s in zip(mean, spread)],
                         alpha=0.2)
    axes[0].set(xlabel="optimizer step", ylabel="reward", title="reward (mean ± sd over completions)")
    axes[1].plot(steps, [row.get("kl", 0.0) for row in rows], marker=".")
    axes[1].set(xlabel="optimizer step", ylabel="KL", title="KL to the starting model")
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_sample_weights(tracked: dict, path) -> None:
    """BFT's P_b and s_b over the training set, per epoch: median and 10-90% band (`sample_weights.json`)."""
    import matplotlib
    import numpy as np

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [row["epoch"] for row in tracked["epochs"]]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    for axis, key, title in ((axes[0], "min_group_conf", "P_b"), (axes[1], "sample_weight", "sample weight s_b")):
        values = np.asarray([row[key] for row in tracked["epochs"]], dtype=float)  # null (a diverged run's NaN): NaN
        low, median, high = np.percentile(values, [10, 50, 90], axis=1)
        axis.plot(epochs, median, marker=".", label="median")
        axis.fill_between(epochs, low, high, alpha=0.25, label="10-90%")
        axis.set(xlabel="epoch", title=f"{title} over the training set", ylim=(0, 1))
        axis.legend()
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
