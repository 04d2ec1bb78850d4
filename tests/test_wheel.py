"""The built wheel carries the grammar: install it into a fresh venv and run `graphvae check` there."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUNTIME = ["lark", "pyyaml", "networkx"]  # what `graphvae check` needs; torch is deliberately absent


def run(cmd, **kw):
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=300, **kw)


@pytest.mark.slow
def test_wheel_installs_and_checks_with_its_own_grammar(tmp_path):
    dist = tmp_path / "dist"
    build = run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", dist, ROOT], cwd=tmp_path)
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-2000:]
    wheels = list(dist.glob("graphvae-*.whl"))
    assert len(wheels) == 1

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, system_site_packages=False, clear=True).create(env_dir)
    bindir = env_dir / ("Scripts" if os.name == "nt" else "bin")
    python = bindir / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PIP_REQUIRE_VIRTUALENV")}

    install = run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *RUNTIME], env=env)
    if install.returncode != 0:
        pytest.skip(f"pip could not install {', '.join(RUNTIME)} from the package index: "
                    f"{install.stderr.strip().splitlines()[-1] if install.stderr.strip() else 'no output'}")
    install = run([python, "-m", "pip", "install", "--quiet", "--no-deps", "--disable-pip-version-check", wheels[0]],
                  env=env)
    assert install.returncode == 0, install.stderr[-2000:]

    # Run outside the repository so that nothing can fall back to the source tree.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    check = run([bindir / "graphvae", "check", ROOT / "specs" / "m2.gvae"], cwd=elsewhere, env=env)
    assert check.returncode == 0, check.stdout + check.stderr
    assert "no issues" in check.stdout

    probe = ("import sys, graphvae.spec.parser as p, graphvae.spec.loader as l; "
             "l.check_file(sys.argv[1]); print(p.grammar_path()); print('torch' in sys.modules)")
    where = run([python, "-c", probe, ROOT / "specs" / "m2.gvae"], cwd=elsewhere, env=env)
    assert where.returncode == 0, where.stderr
    grammar, torch_loaded = where.stdout.split()
    grammar = Path(grammar).resolve()
    assert grammar.is_relative_to(env_dir.resolve()), grammar
    assert grammar.parts[-2:] == ("grammar", "graphvae.lark")
    assert ROOT.resolve() not in grammar.parents
    assert torch_loaded == "False"
