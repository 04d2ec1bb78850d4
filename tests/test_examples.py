"""The scripts in examples/ run as a user would run them (few steps) and print their results, using
only graphvae's public API; the README's Python snippets run as written."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("script, args, expected", [
    ("custom_family.py", ["--steps", "20"], "IWAE-20 log p(x)"),
    ("own_training_loop.py", ["--steps", "30"], "test error after 30 steps"),
    ("trained_run.py", ["--epochs", "1"], "test error of q(y|x)"),
])
def test_example_runs(script, args, expected):
    result = subprocess.run([sys.executable, str(ROOT / "examples" / script), *args], capture_output=True,
                            text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout
    assert "nan" not in result.stdout.lower()


def test_examples_use_only_the_public_api():
    """An example imports ``graphvae`` itself, never its modules, and uses names it exports."""
    import graphvae

    for script in sorted((ROOT / "examples").glob("*.py")):
        tree = ast.parse(script.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert not node.module.startswith("graphvae"), f"{script.name} imports from {node.module}"
            if isinstance(node, ast.Import):
                assert all(a.name == "graphvae" or not a.name.startswith("graphvae") for a in node.names), script.name
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "graphvae":
                assert node.attr in graphvae.__all__, f"{script.name} uses graphvae.{node.attr}, not exported"


def readme_python_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## Python"):]
    section = section[:section.index("\n## ", 1)]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_readme_python_snippets_run_as_written(tmp_path):
    """The first snippet from the repository's root; then, beside a one-epoch run at the path the
    second names, both in one script (the second uses the first's ``x``)."""
    blocks = readme_python_blocks()
    assert len(blocks) == 2 and "import torch" in blocks[0] and "load_run" in blocks[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    (tmp_path / "specs").symlink_to(ROOT / "specs")
    train = subprocess.run([sys.executable, "-m", "graphvae", "train", "specs/digits_m2.gvae", "--epochs", "1",
                            "--out", "runs/digits_m2", "--no-progress"], cwd=tmp_path, capture_output=True,
                           text=True, timeout=300, env=env)
    assert train.returncode == 0, train.stderr
    script = tmp_path / "readme.py"
    script.write_text(blocks[0] + "\nassert not model.log_marginal({'x': x}, samples=2).requires_grad\n" + blocks[1])
    result = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True,
                            timeout=300, env=env)
    assert result.returncode == 0, result.stderr
    header = (tmp_path / "preds.csv").read_text().splitlines()[0]
    assert header == "y," + ",".join(f"y_prob_{k}" for k in range(10))
