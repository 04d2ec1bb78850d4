"""The benchmark scripts still run: a one-epoch compiled-vs-hand-written comparison on digits."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import compare_m2  # noqa: E402


@pytest.mark.parametrize("text, seeds", [("0-3", [0, 1, 2, 3]), ("0,2,5", [0, 2, 5]), ("1-2,7", [1, 2, 7]), ("4", [4])])
def test_parse_seeds(text, seeds):
    assert compare_m2.parse_seeds(text) == seeds


def test_interval_of_paired_differences():
    mean, lo, hi = compare_m2.interval([1.0, 3.0])
    # mean 2, sd sqrt(2), se 1, t(0.975, 1) = 12.706
    assert mean == 2.0
    assert (lo, hi) == pytest.approx((2 - 12.7062, 2 + 12.7062), abs=1e-3)
    assert compare_m2.interval([5.0])[1:] == (-math.inf, math.inf)


def test_compare_runs_both_models_and_prints_the_table(tmp_path):
    cmd = [sys.executable, str(ROOT / "benchmarks" / "compare_m2.py"), "--spec", str(ROOT / "specs" / "digits_m2.gvae"),
           "--data", "digits", "--seeds", "0", "--epochs", "1", "--batch-size", "64", "--labelled-per-batch", "16",
           "--out", str(tmp_path)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    hand = json.loads((tmp_path / "h0.json").read_text())
    assert hand["epochs"] == 1 and len(hand["val_error"]) == 1 and 0 <= hand["test_error_final"] <= 1
    assert (tmp_path / "c0" / "last.pt").exists()
    row = next(line for line in done.stdout.splitlines() if line.startswith("| 0 |"))
    assert row.count("%") == 4
    assert "compiled worse in" in done.stdout
    again = subprocess.run(cmd + ["--summary"], capture_output=True, text=True, timeout=300)  # reuses the runs
    assert again.returncode == 0 and row in again.stdout
