"""The comparison report: per evaluation, each method's mean over seeds with a 95% t-interval, the paired
difference of every BFT method (any method whose loss_type is bft) against each baseline (by default the methods
named after the other loss types of `bft.loss_types`; a recipe's `baselines` names others), and plots (loss curves,
BFT's weights, scores)."""

import json
import math
from pathlib import Path

import numpy as np

from bft.compare.recipe import BASE, methods, task_key
from bft.files import write_json_atomic, write_text_atomic
from bft.loss_types import LOSS_TYPES
from bft.run_folder import SAMPLE_WEIGHTS, read_log_history
from bft.stats import paired_bootstrap

PEERS = tuple(name for name in LOSS_TYPES if name != "bft")
GRPO_SUFFIX = "+grpo"  # a method's GRPO second stage


def t_interval(values) -> dict:
    """Mean and 95% Student-t interval of the mean (NaN bounds for a single value)."""
    from scipy import stats

    values = np.asarray(values, dtype=float)
    n = len(values)
    mean = float(values.mean()) if n else float("nan")
    if n < 2:
        return {"mean": mean, "ci_low": float("nan"), "ci_high": float("nan"), "n": n}
    half = float(stats.t.ppf(0.975, n - 1) * values.std(ddof=1) / math.sqrt(n))
    return {"mean": mean, "ci_low": mean - half, "ci_high": mean + half, "n": n}


def paired_difference(scores_a: dict, scores_b: dict) -> dict:
    """`t_interval` of a - b over the seeds both have ({seed: value} each)."""
    seeds = sorted(set(scores_a) & set(scores_b))
    return t_interval([scores_a[s] - scores_b[s] for s in seeds])


def tables(runs: dict, baselines=PEERS) -> dict:
    """{task: {metric: {"methods": {method: interval}, "differences": {"bft - nll": interval, ...}}}}.

    Differences are paired by seed (t-interval over seeds); where the evaluation scores items one by one, each also
    gets `bootstrap`: a paired bootstrap over seeds and items (`bft.stats.paired_bootstrap`).

    With a GRPO second stage (methods `M+grpo`, each from method `M`), second-stage methods are paired with
    second-stage peers, and each metric also gets `changes` (stage 2 - stage 1 per method, paired by seed) and
    `change_differences` (a BFT method's change minus each peer's change, paired by seed).
    """
    by_metric, loss_types, items = {}, {}, {}
    for run in runs.values():
        loss_types[run["method"]] = run.get("loss_type", run["method"])
        for task, scores in run["scores"].items():
            for metric, value in scores.items():
                by_metric.setdefault(task, {}).setdefault(metric, {}).setdefault(run["method"], {})[run["seed"]] = value
        for task, metrics in (run.get("item_scores") or {}).items():
            for metric, per_item in metrics.items():
                items.setdefault((task, metric, run["method"]), {})[run["seed"]] = per_item
    result = {}
    for task, metrics in by_metric.items():
        for metric, per_method in metrics.items():
            entry = {"methods": {m: t_interval(list(v.values())) for m, v in per_method.items()}, "differences": {}}
            for method in per_method:
                if loss_types[method] != "bft":
                    continue
                suffix = GRPO_SUFFIX if method.endswith(GRPO_SUFFIX) else ""
                for peer in (baseline + suffix for baseline in baselines):
                    if peer in per_method and peer != method:
                        name = f"{method} - {peer}"
                        entry["differences"][name] = paired_difference(per_method[method], per_method[peer])
                        if (task, metric, method) in items and (task, metric, peer) in items:
                            entry.setdefault("bootstrap", {})[name] = paired_bootstrap(
                                items[task, metric, method], items[task, metric, peer])
            changes = {m: _change(per_method, m) for m in per_method if m + GRPO_SUFFIX in per_method}
            if changes:
                entry["changes"] = {m: t_interval(list(c.values())) for m, c in changes.items()}
                entry["change_differences"] = {
                    f"{m} - {peer}": paired_difference(changes[m], changes[peer])
                    for m in changes if loss_types[m] == "bft" for peer in baselines if peer in changes and peer != m}
            result.setdefault(task, {})[metric] = entry
    return result


def sample_weight_summary(runs: dict) -> dict:
    """Per run trained with `track_sample_weights`: P_b and s_b over the training set, epoch by epoch (10th, 50th
    and 90th percentiles, share of samples with s_b < 0.5); and for each BFT run whose seed has a tracked `nll`
    (SFT) run, the Spearman correlation of its last-epoch s_b with SFT's last-epoch P_b on the same samples: does
    BFT keep its weight on the samples SFT is least sure of (a negative correlation)?"""
    from scipy import stats

    files = {name: Path(run["run_dir"]) / SAMPLE_WEIGHTS for name, run in runs.items() if run["run_dir"]}
    tracked = {name: json.loads(file.read_text()) for name, file in files.items() if file.exists()}
    summary = {}
    for name, weights in tracked.items():
        rows = []
        for epoch in weights["epochs"]:
            # (dtype float: a diverged run's NaN is null in the file)
            p_min, s_b = (np.asarray(epoch[key], dtype=float) for key in ("min_group_conf", "sample_weight"))
            rows.append({"epoch": epoch["epoch"], "p_min": np.percentile(p_min, [10, 50, 90]).tolist(),
                         "sample_weight": np.percentile(s_b, [10, 50, 90]).tolist(),
                         "share_below_half": float((s_b < 0.5).mean())})
        summary[name] = {"epochs": rows}
        sft = f"nll-seed{runs[name]['seed']}"
        if runs[name].get("loss_type") == "bft" and sft in tracked:
            rho = stats.spearmanr(np.asarray(weights["epochs"][-1]["sample_weight"], dtype=float),
                                  np.asarray(tracked[sft]["epochs"][-1]["min_group_conf"], dtype=float)).statistic
            summary[name]["spearman_with_sft_p_min"] = {"sft_run": sft, "rho": float(rho)}
    return summary


def _change(per_method: dict, method: str) -> dict:
    """{seed: stage-2 score - stage-1 score} of a method."""
    first, second = per_method[method], per_method[method + GRPO_SUFFIX]
    return {seed: second[seed] - first[seed] for seed in first if seed in second}


def _cell(interval: dict, signed=False) -> str:
    mean = f"{interval['mean']:+.3f}" if signed else f"{interval['mean']:.3f}"
    if math.isnan(interval["ci_low"]):
        return mean
    return f"{mean} [{interval['ci_low']:.3f}, {interval['ci_high']:.3f}]"


def _setup(report: dict) -> list[str]:
    """What was run, from the recipe: the training every method shares, each method's own settings, each
    evaluation's data and the items it scored (markdown lines; none for a report without its recipe)."""
    recipe = report.get("recipe")
    if recipe is None:
        return []

    def settings(fields: dict) -> str:  # as YAML writes the values: true, [format], not Python's True, ['format']
        return ", ".join(f"{key}: {value if isinstance(value, str) else json.dumps(value)}"
                         for key, value in fields.items())

    items = {}  # evaluation -> items scored, where it scores them one by one
    for run in report["runs"].values():
        for task, metrics in (run.get("item_scores") or {}).items():
            items.setdefault(task, len(next(iter(metrics.values()), {})))
    lines = ["## Setup", "", f"- Training: {settings(recipe['train'])}", "- Methods (their settings replace the "
             "training's):"]
    trained = {run["method"] for run in report["runs"].values()}  # (`--methods` may have run some only)
    lines += [f"  - {name}: {settings(fields)}" for name, fields in methods(recipe).items() if name in trained]
    if recipe.get("evaluate_base"):
        lines.append(f"  - {BASE}: the untrained model")
    if "grpo" in recipe:
        lines.append(f"- GRPO after each method: {settings(recipe['grpo'])}")
    lines.append("- Evaluations:")
    for evaluation in recipe.get("evaluations", []):
        key, options = task_key(evaluation), {k: v for k, v in evaluation.items() if k not in ("task", "name")}
        scored = f" ({items[key]} items)" if key in items else ""
        lines.append(f"  - {key}: {evaluation['task']}" + (f", {settings(options)}" if options else "") + scored)
    return [*lines, ""]


def markdown(report: dict) -> str:
    lines = [f"# Comparison: {report['config']}", "",
             f"Seeds: {', '.join(map(str, report['seeds']))}. Cells: mean over seeds [95% t-interval]; differences are "
             "paired by seed, and where items are scored one by one also given with a 95% paired bootstrap "
             "interval over seeds and items.", "", *_setup(report)]
    for task, metrics in report["tables"].items():
        names = list(metrics)
        methods = list(next(iter(metrics.values()))["methods"])
        lines += [f"## {task}", "", "| method | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
        for method in methods:
            lines.append(f"| {method} | " + " | ".join(_cell(metrics[m]["methods"][method]) for m in names) + " |")
        for reference, scores in report.get("references", {}).get(task, {}).items():
            lines.append(f"| {reference} (reference) | " + " | ".join(
                _cell(scores[m]) if m in scores else "" for m in names) + " |")
        first = next(iter(metrics.values()))
        for difference in first["differences"]:
            lines.append(f"| {difference} | " + " | ".join(_cell(metrics[m]["differences"][difference], signed=True)
                                                         for m in names) + " |")
            if difference in first.get("bootstrap", {}):
                lines.append(f"| {difference} (bootstrap over seeds and items) | " + " | ".join(
                    _cell(metrics[m]["bootstrap"][difference], signed=True) if difference in metrics[m].get(
                        "bootstrap", {}) else "" for m in names) + " |")
        for method in first.get("changes", {}):
            lines.append(f"| change by GRPO: {method} | " + " | ".join(
                _cell(metrics[m]["changes"][method], signed=True) for m in names) + " |")
        for difference in first.get("change_differences", {}):
            lines.append(f"| change by GRPO: {difference} | " + " | ".join(
                _cell(metrics[m]["change_differences"][difference], signed=True) for m in names) + " |")
        lines.append("")
    weights = report.get("sample_weights") or {}
    if weights:
        lines += ["## Sample weights over the training set", "",
                  "Every training sample scored before training and after each epoch (`track_sample_weights`): "
                  "percentiles 10, 50, 90 over the samples.", "",
                  "| run | epoch | P_b (10% / 50% / 90%) | s_b (10% / 50% / 90%) | share with s_b < 0.5 |",
                  "|---|---|---|---|---|"]
        for name, entry in weights.items():
            for row in entry["epochs"]:
                lines.append(f"| {name} | {row['epoch']:g} | " + " / ".join(f"{v:.3f}" for v in row["p_min"]) + " | "
                             + " / ".join(f"{v:.3f}" for v in row["sample_weight"])
                             + f" | {row['share_below_half']:.3f} |")
        lines.append("")
        for name, entry in weights.items():
            if "spearman_with_sft_p_min" in entry:
                rank = entry["spearman_with_sft_p_min"]
                lines.append(f"- {name}: Spearman correlation of its last-epoch s_b with {rank['sft_run']}'s "
                             f"last-epoch P_b: {rank['rho']:+.3f}")
        lines += ["", "Plots: `loss_curves.png`, `bft_weights.png`, `scores.png`, `sample_weights_by_epoch.png`.", ""]
    else:
        lines += ["Plots: `loss_curves.png`, `bft_weights.png`, `scores.png`.", ""]
    return "\n".join(lines)


def write_report(output, recipe, runs, seeds, references=None) -> dict:
    """report.json, report.md and the plots. `references`: {task: {name: {metric: interval}}}, scores of things no
    run trained (NCBI summaries beside gene profiles), shown as extra rows of their task's table."""
    output = Path(output)
    report = {"config": recipe.get("name", "comparison"), "seeds": seeds, "recipe": recipe, "runs": runs,
              "tables": tables(runs, recipe.get("baselines", PEERS)), "sample_weights": sample_weight_summary(runs),
              "references": references or {}}
    _plot(output, runs, report["tables"], report["sample_weights"])
    write_json_atomic(output / "report.json", report)
    write_text_atomic(output / "report.md", markdown(report))
    return report


def _plot(output: Path, runs: dict, result_tables: dict, weights: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    histories = {name: read_log_history(run["run_dir"])
                 for name, run in runs.items() if run["run_dir"]}  # the untrained base model has none
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for name, history in histories.items():
        for axis, key in zip(axes, ("loss", "nll")):  # each method's own objective; the plain NLL, one scale for all
            rows = [r for r in history if r.get(key) is not None and "step" in r]  # (null: a diverged loss)
            if not rows:  # runs logged before `nll` was
                continue
            line = axis.plot([r["step"] for r in rows], [r[key] for r in rows], label=name, alpha=0.8,
                             marker="o" if len(rows) == 1 else None)  # a single logged step is a point
            evaluated = [r for r in history if r.get(f"eval_{key}") is not None and "step" in r]
            if evaluated:
                axis.plot([r["step"] for r in evaluated], [r[f"eval_{key}"] for r in evaluated], "o--",
                          color=line[0].get_color(), alpha=0.8, markersize=3)
    axes[0].set(xlabel="optimizer step", ylabel="loss (each method's own objective)",
                title="loss curves (dashed: evaluation)")
    axes[1].set(xlabel="optimizer step", ylabel="NLL per trained token (nll)",
                title="plain NLL, every method (dashed: evaluation)")
    for axis in axes:
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(output / "loss_curves.png", dpi=100)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for name, history in histories.items():
        rows = [r for r in history if "bft/sample_weight_mean" in r]
        for axis, key in zip(axes, ("bft/sample_weight", "bft/min_group_conf")):
            if rows:
                steps = np.array([r["step"] for r in rows])
                mean, std = (np.array([r[f"{key}_{stat}"] for r in rows], dtype=float) for stat in ("mean", "std"))
                axis.plot(steps, mean, label=name)
                axis.fill_between(steps, mean - std, mean + std, alpha=0.2)
    for axis, title in zip(axes, ("sample weight s_b (mean ± sd)", "P_b (mean ± sd)")):
        axis.set(xlabel="optimizer step", title=title, ylim=(0, 1))
        if axis.get_legend_handles_labels()[0]:
            axis.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(output / "bft_weights.png", dpi=100)
    plt.close(fig)

    if weights:  # runs trained with track_sample_weights: s_b over the whole training set, epoch by epoch
        fig, axis = plt.subplots(figsize=(6, 4))
        for name, entry in weights.items():
            epochs = [row["epoch"] for row in entry["epochs"]]
            low, median, high = np.array([row["sample_weight"] for row in entry["epochs"]]).T
            axis.plot(epochs, median, marker=".", label=name)
            axis.fill_between(epochs, low, high, alpha=0.15)
        axis.set(xlabel="epoch", ylabel="s_b (median, 10-90%)", title="sample weights over the training set",
                 ylim=(0, 1))
        axis.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(output / "sample_weights_by_epoch.png", dpi=100)
        plt.close(fig)

    panels = [(task, metric, entry) for task, metrics in result_tables.items() for metric, entry in metrics.items()]
    fig, axes = plt.subplots(1, max(len(panels), 1), figsize=(3.2 * max(len(panels), 1), 3.6), squeeze=False)
    for axis, (task, metric, entry) in zip(axes[0], panels):
        names = list(entry["methods"])
        means = [entry["methods"][m]["mean"] for m in names]
        errors = [0 if math.isnan(entry["methods"][m]["ci_low"]) else means[i] - entry["methods"][m]["ci_low"]
                  for i, m in enumerate(names)]
        axis.bar(names, means, yerr=errors, capsize=4, color="#7aa6c2")
        axis.set_title(f"{task}\n{metric}", fontsize=9)
        axis.tick_params(axis="x", labelrotation=45, labelsize=8)
    fig.tight_layout()
    fig.savefig(output / "scores.png", dpi=100)
    plt.close(fig)
