"""The scripts in examples/ run as a user would run them (few steps) and print their results."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("script, args, expected", [
    ("custom_family.py", ["--steps", "20"], "IWAE-20 log p(x)"),
    ("own_training_loop.py", ["--steps", "30"], "test error after 30 steps"),
])
def test_example_runs(script, args, expected):
    result = subprocess.run([sys.executable, str(ROOT / "examples" / script), *args], capture_output=True,
                            text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout
    assert "nan" not in result.stdout.lower()
