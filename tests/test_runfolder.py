"""The run folder: layout, atomic writes, metrics rows, spec hash."""

from __future__ import annotations

import json
import math
import os

import pytest

from graphvae.errors import UserError
from graphvae.atomic import atomic_write_bytes
from graphvae.train.runfolder import RunFolder, sha256_text


@pytest.mark.parametrize("suffix, name", [(".gvae", "spec.gvae"), (".yaml", "spec.yaml"), (".yml", "spec.yaml")])
def test_create_layout(tmp_path, suffix, name):
    run = RunFolder(tmp_path / "run")
    run.create("model m\n", suffix, {"epochs": 2})
    assert (run.path / name).read_text() == "model m\n"
    assert run.sha_path.read_text().strip() == sha256_text("model m\n")
    assert json.loads(run.config_path.read_text()) == {"epochs": 2}
    assert run.spec_path() == run.path / name
    assert run.exists() and not run.has_checkpoint()


def test_create_replaces_other_language(tmp_path):
    run = RunFolder(tmp_path)
    run.create("a", ".yaml", {})
    run.create("b", ".gvae", {})
    assert not (tmp_path / "spec.yaml").exists()
    assert run.read_spec_text() == "b"


@pytest.mark.parametrize("rows", [
    [{"epoch": 1, "train/loss": 3.5}],
    [{"epoch": 1, "train/loss": 3.5}, {"epoch": 2, "train/loss": 2.5, "val/error/y": 0.25}],
])
def test_metrics_rows(tmp_path, rows):
    run = RunFolder(tmp_path)
    for row in rows:
        run.append_metrics(row)
    assert run.read_metrics() == rows
    assert len(run.metrics_path.read_text().splitlines()) == len(rows)


def test_non_finite_metrics_stay_strict_json(tmp_path):
    run = RunFolder(tmp_path)
    run.append_metrics({"epoch": 1, "val/elbo": math.nan})
    line = run.metrics_path.read_text().strip()
    assert json.loads(line) == {"epoch": 1, "val/elbo": "nan"}
    assert "NaN" not in line


def test_failed_atomic_write_keeps_old_file(tmp_path, monkeypatch):
    target = tmp_path / "f.bin"
    target.write_bytes(b"old")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(UserError, match="disk full; the previous file is kept"):
        atomic_write_bytes(target, b"new contents")
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.bin"]  # no temp file left behind


@pytest.mark.parametrize("setup, message", [
    ("missing", "no such run folder"),
    ("empty", "not a run folder"),
])
def test_require(tmp_path, setup, message):
    path = tmp_path / "run"
    if setup == "empty":
        path.mkdir()
    with pytest.raises(UserError, match=message):
        RunFolder(path).require()


def test_edited_spec_is_refused(tmp_path):
    run = RunFolder(tmp_path)
    run.create("model m\n", ".gvae", {})
    run.check_spec_hash()
    (tmp_path / "spec.gvae").write_text("model other\n")
    with pytest.raises(UserError, match="edited after training"):
        run.check_spec_hash()


@pytest.mark.parametrize("content, message", [("{", "not valid JSON"), (None, "no config.json")])
def test_bad_config(tmp_path, content, message):
    run = RunFolder(tmp_path)
    if content is not None:
        run.config_path.write_text(content)
    with pytest.raises(UserError, match=message):
        run.read_config()
