"""The `bft inspect` report: one self-contained HTML page (inline CSS and PNG plots, no network, no script)."""

import base64
import html
import io

import numpy as np

SUMMARY_ROWS = [
    ("n_samples", "samples"), ("n_tokens", "trained tokens"), ("low_token_fraction", "low-confidence tokens"),
    ("clustering_ratio", "clustering of low tokens (1 = scattered)"),
    ("window_low_fraction_mean", "mean low fraction per window"),
    ("window_longest_run_mean", "mean longest low run per window"),
    ("min_group_confidence_mean", "mean P_b"), ("sample_weight_mean", "mean sample weight s_b"),
    ("weight_share_of_hardest_10pct", "share of total s_b on the 10% lowest-P_b samples"),
    ("dft_token_weight_mean", "mean DFT token weight"), ("v3_token_weight_mean", "mean v3 token weight"),
]
STYLE = """
body { font-family: sans-serif; margin: 2em; max-width: 1100px; }
table { border-collapse: collapse; } td, th { border: 1px solid #ccc; padding: 4px 8px; text-align: right; }
td:first-child { text-align: left; }
.sample { border: 1px solid #ddd; margin: 1em 0; padding: 0.5em; }
.figures { color: #555; font-size: 0.9em; margin-bottom: 0.4em; }
.tokens { font-family: monospace; line-height: 1.9; white-space: pre-wrap; }
.tok { padding: 1px 0; }
.weakest { outline: 2px solid #0044cc; }
"""


def render_report(summary: dict, results: dict, top_k: int) -> str:
    labels = list(results)
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>bft inspect: {html.escape(summary['model'])}"
             f"</title><style>{STYLE}</style></head><body>",
             f"<h1>Knowledge gaps of <code>{html.escape(summary['model'])}</code></h1>",
             f"<p>Windows of g = {summary['group_size']} trained tokens; a token is low when p &lt; "
             f"{summary['low_threshold']}; sample weight s_b = 1 - P_b^{summary['gamma']}. "
             "Token colour: red (p near 0) "
             "to green (p near 1); the weakest window is outlined in blue.</p>",
             _summary_table(summary, labels), _plots(results)]
    for label in labels:
        samples = sorted(results[label]["samples"], key=lambda s: -s["sample_weight"])
        shown = samples[:top_k] + samples[max(top_k, len(samples) - top_k):]
        parts.append(f"<h2>{html.escape(label)}: {html.escape(results[label]['path'])}</h2>"
                     f"<p>The {min(top_k, len(samples))} samples with the highest BFT weight, then the lowest.</p>")
        parts.extend(_sample(label, sample) for sample in shown)
    parts.append("</body></html>")
    return "\n".join(parts)


def _summary_table(summary, labels) -> str:
    head = "".join(f"<th>{html.escape(label)}</th>" for label in labels)
    rows = []
    for key, text in SUMMARY_ROWS:
        cells = "".join(f"<td>{_format(summary['sets'][label][key])}</td>" for label in labels)
        rows.append(f"<tr><td>{text}</td>{cells}</tr>")
    return f"<table><tr><th></th>{head}</tr>{''.join(rows)}</table>"


def _format(value) -> str:
    return f"{value:,}" if isinstance(value, int) else f"{value:.3f}"


def _sample(label, sample) -> str:
    figures = (f"#{sample['index']} &middot; s_b = {sample['sample_weight']:.3f} &middot; P_b = "
               f"{sample['min_group_confidence']:.3f} &middot; {sample['n_tokens']} tokens &middot; low fraction "
               f"{sample['low_fraction']:.2f} &middot; longest low run {sample['longest_low_run']}")
    pieces = []
    for i, (token, logprob) in enumerate(zip(sample["tokens"], sample["logprobs"])):
        if i == sample["weakest_start"]:
            pieces.append("<span class='weakest'>")
        p = float(np.exp(logprob))
        text = html.escape(token).replace("\n", "&#8629;\n")
        style = f"background:hsl({120 * p:.0f},75%,80%)"
        pieces.append(f"<span class='tok' style='{style}' title='p={p:.3f}'>{text}</span>")
        if i + 1 == sample["weakest_end"]:
            pieces.append("</span>")
    return (f"<div class='sample' data-set='{html.escape(label)}'><div class='figures'>{figures}</div>"
            f"<div class='tokens'>{''.join(pieces)}</div></div>")


def _plots(results) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.4))
    panels = [("fraction of low tokens per window", lambda s: s["windows"]["low_fraction"], np.linspace(0, 1, 21)),
              ("longest low run per window", lambda s: s["windows"]["longest_low_run"], None),
              ("P_b per sample", lambda s: [s["min_group_confidence"]], np.linspace(0, 1, 21))]
    for axis, (title, values, bins) in zip(axes, panels):
        for label, result in results.items():
            data = [x for sample in result["samples"] for x in values(sample)]
            if data:
                axis.hist(data, bins=bins if bins is not None else min(30, max(int(max(data)) + 1, 1)), alpha=0.5,
                          density=True, label=label)
        axis.set_title(title)
        axis.legend()
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    encoded = base64.b64encode(buffer.getvalue()).decode()
    return f"<img alt='distributions' src='data:image/png;base64,{encoded}'>"
