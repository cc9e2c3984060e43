"""The paired difference of any two methods of a `bft compare` output, on every evaluation both were scored on item
by item: `bft compare`'s report pairs each BFT method with its baselines only; this pairs any two (EAFT against SFT,
BFT v3 against BFT, ...), the same way (`bft.stats.paired_bootstrap`: 95% interval resampling seeds and items, over
the seeds both methods have), from the runs of its `report.json` (the last invocation's; an `--archive` folder
holds it too).

    python benchmarks/paired_difference.py --output ~/bft-runs/compare-gene-facts eaft:nll bft-v3:bft
"""

import argparse
import json
from pathlib import Path

from bft.stats import paired_bootstrap


def scores_by_seed(runs: dict, method: str) -> dict[str, dict[str, dict[int, dict]]]:
    """{evaluation: {metric: {seed: {item id: score}}}} of `method`'s runs (report.json's `runs`)."""
    found: dict = {}
    for run in runs.values():
        if run["method"] != method:
            continue
        for evaluation, metrics in (run.get("item_scores") or {}).items():
            for metric, per_item in metrics.items():
                found.setdefault(evaluation, {}).setdefault(metric, {})[run["seed"]] = per_item
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", type=Path, required=True, help="the bft compare output (or archive) folder")
    parser.add_argument("pairs", nargs="+", metavar="A:B", help="methods, as the recipe names them: A - B is given")
    args = parser.parse_args()
    report = args.output / "report.json"
    if not report.is_file():
        parser.error(f"{report} is missing: --output takes a bft compare output folder")
    runs = json.loads(report.read_text())["runs"]
    for pair in args.pairs:
        a, sep, b = pair.partition(":")
        if not sep or not a or not b:
            parser.error(f"{pair!r}: a pair is written A:B (two method names)")
        first, second = scores_by_seed(runs, a), scores_by_seed(runs, b)
        if not first or not second:
            parser.error(f"{pair}: no evaluation of {a if not first else b} scored item by item in {report}")
        print(f"\n{a} - {b}")
        for evaluation in sorted(set(first) & set(second)):
            for metric in sorted(set(first[evaluation]) & set(second[evaluation])):
                d = paired_bootstrap(first[evaluation][metric], second[evaluation][metric])
                print(f"  {evaluation} {metric}: {d['mean']:+.3f} [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}] "
                      f"({d['seeds']} seeds, {d['items']} items)")


if __name__ == "__main__":
    main()
