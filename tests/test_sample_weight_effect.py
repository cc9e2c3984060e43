"""benchmarks/sample_weight_effect.py on a hand-made `bft compare` output whose answers are known: four genes, two
training samples each, BFT and DFT at one floor under two seeds."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bft.files import write_json_atomic, write_jsonl_atomic

ROOT = Path(__file__).resolve().parents[1]
GENES = ["GENEA", "GENEB", "GENEC", "GENED"]
PROCESS = {"GENEA": "a long process name", "GENEB": "another process name", "GENEC": "short name",
           "GENED": "brief"}  # 4, 3, 2 and 1 words, in the order of their weights
WEIGHT = {"GENEA": 0.9, "GENEB": 0.8, "GENEC": 0.3, "GENED": 0.2}  # BFT weighs A and B most


def make_comparison(tmp_path: Path, correct: dict[str, list[bool]]) -> tuple[Path, Path]:
    data, output = tmp_path / "data", tmp_path / "compare"
    write_jsonl_atomic(data / "train.jsonl", [{"id": f"{gene}:{k}", "messages": []} for gene in GENES for k in (0, 1)])
    for form in ("question", "cloze"):
        write_jsonl_atomic(data / f"{form}_trained.jsonl",
                    [{"id": gene, "gene": gene, "answer": PROCESS[gene]} for gene in GENES])
    for run, answers in correct.items():
        for probe in ("facts-question-trained", "facts-cloze-trained"):
            write_jsonl_atomic(output / "evals" / run / probe / "predictions.jsonl",
                        [{"id": str(i), "correct": right} for i, right in enumerate(answers)])
        if run == "base":
            continue
        write_json_atomic(output / "runs" / run / "metrics.json", {})
        if run.startswith("bft"):  # the record after the last epoch is not a weight used while training
            during = [WEIGHT[gene] for gene in GENES for _ in (0, 1)]
            records = [{"epoch": 0.0, "sample_weight": during}, {"epoch": 1.0, "sample_weight": [0.0] * 8}]
            write_json_atomic(output / "runs" / run / "sample_weights.json", {"samples": 8, "epochs": records})
    return data, output


def run_script(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "benchmarks/sample_weight_effect.py", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


def test_paired_difference_its_split_by_weight_and_what_the_weight_favours(tmp_path):
    # BFT right on the heavy genes A and B, DFT on A and C: equal overall, BFT ahead where it weighted most
    correct = {"base": [False, False, True, True],
               "bft-floor0.1-seed0": [True, True, False, False], "bft-floor0.1-seed1": [True, True, False, False],
               "dft-floor0.1-seed0": [True, False, True, False], "dft-floor0.1-seed1": [True, False, True, False]}
    data, output = make_comparison(tmp_path, correct)
    result = run_script("--output", output, "--data", data, "--out", tmp_path / "effect.json")
    assert result.returncode == 0, result.stderr[-3000:]
    (row,) = json.loads((tmp_path / "effect.json").read_text())
    assert (row["weighted"], row["control"], row["seeds"]) == ("bft-floor0.1", "dft-floor0.1", [0, 1])
    assert row["median_gene_weight"] == pytest.approx(0.55)
    assert row["per_epoch"][0][0] == {"epoch": 0.0, "median_s_b": pytest.approx(0.55), "share_above_0.5": 0.5}
    assert row["spearman_weight_vs_process_words"] == pytest.approx(1.0)  # the heavier, the longer
    for probe in ("facts-question-trained", "facts-cloze-trained"):
        figures = row[probe]
        assert (figures["weighted_accuracy"], figures["control_accuracy"]) == (0.5, 0.5)
        assert figures["difference"]["mean"] == 0.0
        assert figures["difference"]["items"] == 4 and figures["difference"]["seeds"] == 2
        assert figures["difference_by_weight"]["upper"]["mean"] == 0.5
        assert figures["difference_by_weight"]["lower"]["mean"] == -0.5
        # the base model knew the light genes C and D: ranks 4 3 2 1 against 1.5 1.5 3.5 3.5
        assert figures["spearman_weight_vs_base_correct"] == pytest.approx(-2 / 5 ** 0.5)
    assert "bft-floor0.1 vs dft-floor0.1, seeds [0, 1]" in result.stdout


def test_the_unweighted_control_is_paired_at_its_own_seeds(tmp_path):
    # BFT without its weight (bft_gamma 1000) is the control that isolates the weight; only seed 1 has both
    correct = {"bft-floor0.1-seed0": [True] * 4, "bft-floor0.1-seed1": [True, True, True, False],
               "bft-floor0.1-unweighted-seed1": [True, False, False, False],
               "dft-floor0.1-seed0": [False] * 4}
    data, output = make_comparison(tmp_path, correct)
    result = run_script("--output", output, "--data", data, "--out", tmp_path / "effect.json")
    assert result.returncode == 0, result.stderr[-3000:]
    by_dft, by_unweighted = json.loads((tmp_path / "effect.json").read_text())
    assert (by_dft["control"], by_dft["seeds"]) == ("dft-floor0.1", [0])
    assert by_dft["facts-question-trained"]["difference"]["mean"] == 1.0
    assert (by_unweighted["control"], by_unweighted["seeds"]) == ("bft-floor0.1-unweighted", [1])
    assert by_unweighted["facts-question-trained"]["difference"]["mean"] == 0.5
    assert by_unweighted["facts-question-trained"]["difference_by_weight"]["upper"]["mean"] == 0.5  # B: 1 - 0


def test_a_pair_without_common_seeds_is_left_out(tmp_path):
    correct = {"bft-floor0.1-seed0": [True] * 4, "dft-floor0.1-seed1": [False] * 4}
    data, output = make_comparison(tmp_path, correct)
    result = run_script("--output", output, "--data", data, "--out", tmp_path / "effect.json")
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((tmp_path / "effect.json").read_text()) == []


@pytest.mark.parametrize("missing", ["data", "output"])
def test_a_wrong_folder_is_a_usage_error(tmp_path, missing):
    data, output = make_comparison(tmp_path, {"base": [True] * 4})
    result = run_script("--output", tmp_path / "nowhere" if missing == "output" else output,
                        "--data", tmp_path / "nowhere" if missing == "data" else data)
    assert result.returncode == 2
    assert "nowhere" in result.stderr and "Traceback" not in result.stderr
