"""`bft inspect`: window statistics on planted patterns, agreement with the loss, and the HTML report."""

import json
import shutil
import subprocess

import numpy as np
import pytest
import torch

from bft import gaps
from bft.cli import main
from bft.inspection import analyse
from bft.losses import min_group_confidence

HIGH, LOW = np.log(0.9), np.log(0.01)


def test_dense_run_versus_scattered_lows():
    dense = np.array([HIGH] * 6 + [LOW] * 4 + [HIGH] * 6)
    scattered = np.array([HIGH, HIGH, HIGH, LOW] * 4)
    d, s = gaps.window_statistics(dense, 4, 0.1), gaps.window_statistics(scattered, 4, 0.1)
    # 13 windows of 4 over 16 tokens; the dense run fills window 6..9 completely
    assert len(d["low_fraction"]) == len(s["low_fraction"]) == 13
    assert max(d["low_fraction"]) == 1.0 and max(d["longest_low_run"]) == 4
    assert (d["weakest_start"], d["weakest_end"]) == (6, 10)
    assert set(s["low_fraction"]) == {0.25} and max(s["longest_low_run"]) == 1
    assert np.mean(d["low_fraction"]) == pytest.approx(sum(min(i + 4, 10) - max(i, 6) for i in range(13)
                                                           if min(i + 4, 10) > max(i, 6)) / 4 / 13)
    # clustering: P(low | previous low) / P(low); dense: (3/4) / (4/16) = 3; scattered: 0 / (4/16) = 0
    assert gaps.clustering_ratio([np.exp(dense) < 0.1]) == pytest.approx(3.0)
    assert gaps.clustering_ratio([np.exp(scattered) < 0.1]) == 0.0
    # a sample shorter than the window: one window of everything
    short = gaps.window_statistics(np.array([HIGH, LOW]), 8, 0.1)
    assert short["low_fraction"] == [0.5] and (short["weakest_start"], short["weakest_end"]) == (0, 2)


def test_weight_share_of_hardest():
    weights = np.array([0.9, 0.1, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5])
    p_min = 1 - weights
    assert gaps.weight_share_of_hardest(weights, p_min, 0.1) == pytest.approx(0.9 / weights.sum())


def test_analyse_agrees_with_the_loss():
    rng = np.random.default_rng(0)
    samples = [{"index": i, "logprobs": np.log(rng.uniform(0.001, 1, size=n)), "tokens": ["x"] * n}
               for i, n in enumerate([3, 10, 40])]
    summary = analyse(samples, group_size=8, gamma=2.0, threshold=0.1)
    for sample in samples:
        lp = torch.tensor(sample["logprobs"])[None]
        expected = float(min_group_confidence(lp, torch.ones_like(lp, dtype=torch.bool), 8)[0])
        assert sample["min_group_confidence"] == pytest.approx(expected, rel=1e-6)
        assert sample["sample_weight"] == pytest.approx(1 - expected**2, rel=1e-6)
        weakest = sample["logprobs"][sample["weakest_start"] : sample["weakest_end"]]
        assert np.exp(weakest.mean()) == pytest.approx(expected, rel=1e-6)
    assert summary["n_samples"] == 3 and summary["n_tokens"] == 53


def test_inspect_end_to_end_and_report_renders(tiny_model, tmp_path, demo_records):
    data = tmp_path / "bio.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in demo_records[:7]))
    general = tmp_path / "general.jsonl"
    general.write_text("".join(json.dumps({"prompt": f"Say something {i}.", "completion": "The weather is fine today."})
                               + "\n" for i in range(5)))
    out = tmp_path / "report"
    assert main(["inspect", "--model", tiny_model, "--data", str(data), "--compare", str(general), "--output", str(out),
                 "--group-size", "4", "--top-k", "2", "--batch-size", "3"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["sets"]["data"]["n_samples"] == 7 and summary["sets"]["compare"]["n_samples"] == 5
    rows = [json.loads(line) for line in (out / "samples.jsonl").read_text().split("\n") if line]
    assert len(rows) == 12 and {r["set"] for r in rows} == {"data", "compare"}
    page = (out / "report.html").read_text()
    assert page.count("class='sample'") == 8  # top 2 and bottom 2 of each set
    assert "http" not in page.replace("http-equiv", "")  # self-contained: nothing fetched

    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("chromium is not installed (`make browser` installs Debian's, as CI does): the report was "
                    "checked without a browser")
    result = subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                             "--disable-component-update", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
                             "--dump-dom", f"file://{out / 'report.html'}"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count('class="sample"') == 8 and "Knowledge gaps of" in result.stdout
    assert "Uncaught" not in result.stderr
