"""The paired difference of any two methods of a `bft compare` output, on every evaluation both were scored on item
by item: `bft compare`'s report pairs each BFT method with its baselines only; this pairs any two (EAFT against SFT,
BFT v3 against BFT, ...), the same way (`bft.stats.paired_bootstrap`: 95% interval resampling seeds and items, over
the seeds both methods have).

    python benchmarks/paired_difference.py --output ~/bft-runs/compare-gene-facts eaft:nll bft-v3:bft
"""

import argparse
from pathlib import Path

import yaml

from bft.compare.evaluations import item_scores
from bft.stats import paired_bootstrap


def scores_by_seed(output: Path, method: str) -> dict[str, dict[str, dict[int, dict]]]:
    """{evaluation: {metric: {seed: {item id: score}}}} of every evaluation of `method`'s runs."""
    found: dict = {}
    for folder in sorted((output / "evals").glob(f"{method}-seed*/*/predictions.jsonl")):
        evaluation, seed = folder.parent, folder.parent.parent.name.removeprefix(f"{method}-seed")
        if not seed.isdigit():  # another run whose name begins alike
            continue
        task = yaml.safe_load((evaluation / "evaluation.yaml").read_text())["task"]
        for metric, per_item in item_scores(evaluation, task).items():
            found.setdefault(evaluation.name, {}).setdefault(metric, {})[int(seed)] = per_item
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", type=Path, required=True, help="the bft compare output folder")
    parser.add_argument("pairs", nargs="+", metavar="A:B", help="methods, as the recipe names them: A - B is given")
    args = parser.parse_args()
    if not (args.output / "evals").is_dir():
        parser.error(f"{args.output / 'evals'} is missing: --output takes a bft compare output folder")
    for pair in args.pairs:
        a, sep, b = pair.partition(":")
        if not sep or not a or not b:
            parser.error(f"{pair!r}: a pair is written A:B (two method names)")
        first, second = scores_by_seed(args.output, a), scores_by_seed(args.output, b)
        if not first or not second:
            parser.error(f"{pair}: no evaluation of {a if not first else b} in {args.output / 'evals'}")
        print(f"\n{a} - {b}")
        for evaluation in sorted(set(first) & set(second)):
            for metric in sorted(set(first[evaluation]) & set(second[evaluation])):
                d = paired_bootstrap(first[evaluation][metric], second[evaluation][metric])
                print(f"  {evaluation} {metric}: {d['mean']:+.3f} [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}] "
                      f"({d['seeds']} seeds, {d['items']} items)")


if __name__ == "__main__":
    main()
