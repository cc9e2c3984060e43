"""benchmarks/paired_difference.py on a hand-made `bft compare` output whose answers are known."""

import subprocess
import sys
from pathlib import Path

from bft.files import write_json_atomic

ROOT = Path(__file__).resolve().parents[1]


def write_report(output: Path, right_by_run: dict[tuple[str, int], list[int]]) -> None:
    """A report.json whose runs ((method, seed) -> items right) were scored on one mcq evaluation, "probe"."""
    runs = {f"{method}-seed{seed}": {
        "method": method, "seed": seed, "scores": {},
        "item_scores": {"probe": {"accuracy": {str(i): float(r) for i, r in enumerate(right)},
                                  "accuracy_norm": {str(i): float(r) for i, r in enumerate(right)}}}}
        for (method, seed), right in right_by_run.items()}
    write_json_atomic(output / "report.json", {"runs": runs})


def run_script(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "benchmarks/paired_difference.py", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_any_two_methods_are_paired_by_seed_and_item(tmp_path):
    output = tmp_path / "compare"
    # eaft right on 3 of 4 items at both seeds, nll on 1 (seed 0) and 2 (seed 1): +0.375 on average;
    # another method's run of the same seed (GRPO after eaft) is not one of eaft's
    write_report(output, {("eaft", 0): [1, 1, 1, 0], ("eaft", 1): [1, 1, 1, 0], ("nll", 0): [1, 0, 0, 0],
                          ("nll", 1): [1, 1, 0, 0], ("eaft-grpo", 1): [0, 0, 0, 0]})
    result = run_script("--output", output, "eaft:nll")
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "eaft - nll"
    assert lines[1].startswith("  probe accuracy: +0.375 [") and lines[1].endswith("(2 seeds, 4 items)")
    assert lines[2].startswith("  probe accuracy_norm: +0.375 [")


def test_a_method_with_no_evaluation_or_a_malformed_pair_is_refused(tmp_path):
    output = tmp_path / "compare"
    write_report(output, {("nll", 0): [1]})
    missing = run_script("--output", output, "eaft:nll")
    assert missing.returncode == 2 and "no evaluation of eaft" in missing.stderr
    malformed = run_script("--output", output, "eaft-nll")
    assert malformed.returncode == 2 and "a pair is written A:B" in malformed.stderr
    assert run_script("--output", tmp_path / "nowhere", "eaft:nll").returncode == 2
