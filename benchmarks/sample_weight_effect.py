"""What does BFT's sample weight add over DFT at the same token-weight floor, and which samples does it favour?

Reads a finished (or partly finished) `bft compare` output of configs/compare-gene-facts.yaml: for each pair of
methods at the same floor that differ in the sample weight (`bft` / `dft`, `bft-floor0.1` / `dft-floor0.1`, ...:
the weight and BFT's mean over each sample's tokens; `bft-floor0.1` / `bft-floor0.1-unweighted`: the weight alone)
and each trained-fact probe, the accuracy of both and their paired difference over the seeds both have (95% interval,
resampling seeds and items as `bft compare` does). Then, from the BFT run's `sample_weights.json` (`P_b` and
`s_b = 1 - P_b` of every training sample before training and after each epoch):

- the weight a gene's facts got while training: the mean `s_b` of its samples over the records that precede an
  epoch (before training, after epoch 1, after epoch 2, for 3 epochs), averaged over the seeds;
- the paired difference (BFT run - its control) on the genes BFT weighted most (upper half) and least (lower
  half): if the sample weight helps where it acts, the upper half gains more;
- what the favoured samples are: the Spearman correlation of a gene's weight with the length of its process name
  (words) and with whether the base model already answered its probe, and the median and share of `s_b` above 0.5
  per epoch record.

    python benchmarks/sample_weight_effect.py --output ~/bft-runs/compare-gene-facts [--data data/gene-facts-600]
"""

import argparse
import json
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from bft.files import write_json_atomic
from bft.stats import paired_bootstrap

PROBES = {"facts-question-trained": "question_trained.jsonl", "facts-cloze-trained": "cloze_trained.jsonl"}
PAIRS = (("bft", "dft"), ("bft-floor0.05", "dft-floor0.05"), ("bft-floor0.1", "dft-floor0.1"),
         ("bft-floor0.2", "dft-floor0.2"), ("bft-floor0.1", "bft-floor0.1-unweighted"))  # (weighted, control)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def seeds_of(output: Path, method: str) -> list[int]:
    return sorted(int(run.name.rsplit("-seed", 1)[1]) for run in (output / "runs").glob(f"{method}-seed*")
                  if (run / "metrics.json").exists())


def probe_scores(output: Path, run: str, probe: str, genes: list[str]) -> dict[str, float] | None:
    """{gene: 1.0 if the probe was answered right else 0.0}; None if not evaluated. Predictions follow the probe
    file's order, so the probes must be evaluated whole (no `limit`: the recipe sets none); else ValueError."""
    predictions = output / "evals" / run / probe / "predictions.jsonl"
    if not predictions.exists():
        return None
    return {gene: float(row["correct"]) for gene, row in zip(genes, read_jsonl(predictions), strict=True)}


def gene_weights(run_dir: Path, sample_genes: list[str]) -> tuple[dict[str, float], list[dict]]:
    """The mean s_b of each gene's samples over the records that precede an epoch, and per-record summaries."""
    tracked = json.loads((run_dir / "sample_weights.json").read_text())
    records = tracked["epochs"]
    if tracked["samples"] != len(sample_genes):
        raise SystemExit(f"{run_dir}: {tracked['samples']} tracked samples, the training file has {len(sample_genes)}")
    during = np.array([record["sample_weight"] for record in records[:-1]]).mean(axis=0)
    weights: dict[str, list[float]] = {}
    for gene, weight in zip(sample_genes, during):
        weights.setdefault(gene, []).append(float(weight))
    summary = [{"epoch": record["epoch"], "median_s_b": float(np.median(record["sample_weight"])),
                "share_above_0.5": float(np.mean(np.array(record["sample_weight"]) > 0.5))} for record in records]
    return {gene: float(np.mean(values)) for gene, values in weights.items()}, summary


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", type=Path, required=True, help="the bft compare output folder")
    parser.add_argument("--data", type=Path, default=Path("data/gene-facts-600"), help="bft data gene-facts output")
    parser.add_argument("--out", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args()
    for needed in ("train.jsonl", *PROBES.values()):
        if not (args.data / needed).exists():
            parser.error(f"{args.data / needed} is missing: --data takes the recipe's bft data gene-facts output")
    if not (args.output / "runs").is_dir():
        parser.error(f"{args.output / 'runs'} is missing: --output takes a bft compare output folder")
    sample_genes = [row["id"].rsplit(":", 1)[0] for row in read_jsonl(args.data / "train.jsonl")]
    probes = {probe: read_jsonl(args.data / file) for probe, file in PROBES.items()}
    genes = {probe: [row["gene"] for row in rows] for probe, rows in probes.items()}
    base = {probe: probe_scores(args.output, "base", probe, genes[probe]) for probe in PROBES}
    process_words = {row["gene"]: len(row["answer"].split()) for row in probes["facts-question-trained"]}
    results = []
    for weighted, control in PAIRS:
        seeds = sorted(set(seeds_of(args.output, weighted)) & set(seeds_of(args.output, control)))
        if not seeds:
            continue
        tracked = [gene_weights(args.output / "runs" / f"{weighted}-seed{seed}", sample_genes) for seed in seeds]
        weight = {gene: float(np.mean([w[gene] for w, _ in tracked])) for gene in tracked[0][0]}
        ranked = sorted(weight, key=weight.get)  # the upper half by rank: halves of equal size whatever the ties
        upper = set(ranked[len(ranked) // 2 :])
        row = {"weighted": weighted, "control": control, "seeds": seeds, "per_epoch": [s for _, s in tracked],
               "median_gene_weight": float(np.median(list(weight.values())))}
        for probe in PROBES:
            a = {seed: probe_scores(args.output, f"{weighted}-seed{seed}", probe, genes[probe]) for seed in seeds}
            b = {seed: probe_scores(args.output, f"{control}-seed{seed}", probe, genes[probe]) for seed in seeds}
            if any(scores is None for scores in [*a.values(), *b.values()]):
                continue
            halves = {}
            for name, keep in (("upper", upper), ("lower", set(weight) - upper)):
                halves[name] = paired_bootstrap({s: {g: v for g, v in a[s].items() if g in keep} for s in seeds},
                                                {s: {g: v for g, v in b[s].items() if g in keep} for s in seeds})
            in_order = [g for g in sorted(weight) if base[probe] is not None and g in base[probe]]
            row[probe] = {
                "weighted_accuracy": float(np.mean([np.mean(list(a[s].values())) for s in seeds])),
                "control_accuracy": float(np.mean([np.mean(list(b[s].values())) for s in seeds])),
                "difference": paired_bootstrap(a, b),
                "difference_by_weight": halves,
                "spearman_weight_vs_base_correct": None if base[probe] is None else float(
                    spearmanr([weight[g] for g in in_order], [base[probe][g] for g in in_order]).statistic),
            }
        row["spearman_weight_vs_process_words"] = float(
            spearmanr([weight[g] for g in sorted(weight) if g in process_words],
                      [process_words[g] for g in sorted(weight) if g in process_words]).statistic)
        results.append(row)
        print_row(row)
    if args.out:
        write_json_atomic(args.out, results)


def print_row(row: dict) -> None:
    print(f"\n{row['weighted']} vs {row['control']}, seeds {row['seeds']}; median weight of a gene's samples while "
          f"training {row['median_gene_weight']:.3f}; Spearman(weight, process name words) "
          f"{row['spearman_weight_vs_process_words']:+.2f}")
    for seed, records in zip(row["seeds"], row["per_epoch"]):
        print(f"  seed {seed} s_b by record: " + ", ".join(
            f"epoch {r['epoch']:g}: median {r['median_s_b']:.3f}, {100 * r['share_above_0.5']:.0f}% > 0.5"
            for r in records))
    for probe in PROBES:
        if probe not in row:
            continue
        p = row[probe]

        def interval(d):
            return f"{d['mean']:+.3f} [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}]"

        base, halves = p["spearman_weight_vs_base_correct"], p["difference_by_weight"]
        print(f"  {probe}: {row['weighted']} {p['weighted_accuracy']:.3f}, {row['control']} "
              f"{p['control_accuracy']:.3f}, difference {interval(p['difference'])}; on the genes BFT weighted most "
              f"{interval(halves['upper'])}, least {interval(halves['lower'])}"
              + ("" if base is None else f"; Spearman(weight, base answered right) {base:+.2f}"))


if __name__ == "__main__":
    main()
