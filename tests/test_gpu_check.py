"""benchmarks/gpu_check.py --smoke: every part of the GPU check runs on the CPU on tiny shapes, so it cannot rot."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_check_smoke_runs_every_part(tmp_path):
    out = tmp_path / "gpu_check.json"
    result = subprocess.run([sys.executable, "benchmarks/gpu_check.py", "--smoke", "--out", str(out)], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert [row["loss_type"] for row in report["losses"]] == ["nll", "dft", "bft", "asft", "eaft"]
    for row in report["losses"]:  # float32 against float64: rounding only
        assert row["update_relative_difference"] < 1e-5
        assert row["loss"] == pytest.approx(row["loss_float64_cpu"], rel=1e-5)
    for row in report["heads"]:
        assert row["update_relative_difference"] < (1e-5 if row["precision"] == "float32" else 2e-2)
    runs = {row["configuration"]: row for row in report["throughput"]["runs"]}
    assert all(row["tokens_per_second"] > 0 and row["timed_steps"] == 2 for row in runs.values())
    # the authors' full-logits computation and BFTTrainer's give one loss on the same first batch (bf16 autocast)
    ours = runs["BFTTrainer bft, padding-free, lm_head token"]["first_loss"]
    assert runs["full-logits BFT (authors' computation), padded"]["first_loss"] == pytest.approx(ours, rel=1e-2)
    assert "| bft |" in result.stdout and "tokens/s" in result.stdout
