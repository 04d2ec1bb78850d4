"""Atomic writes: all or nothing, permissions kept, a missing folder is a user error."""

from __future__ import annotations

import os

import pytest

from graphvae import atomic
from graphvae.errors import UserError


def test_write_replaces_contents_and_keeps_mode(tmp_path):
    target = tmp_path / "spec.gvae"
    target.write_text("old")
    os.chmod(target, 0o640)
    atomic.atomic_write_text(target, "new")
    assert target.read_text() == "new"
    assert target.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["spec.gvae"]


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "last.pt"
    target.write_bytes(b"good checkpoint")

    def fail(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(atomic.os, "replace", fail)
    with pytest.raises(OSError):
        atomic.atomic_write_bytes(target, b"half")
    assert target.read_bytes() == b"good checkpoint"
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_missing_folder_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        atomic.atomic_write_bytes(tmp_path / "nowhere" / "x.png", b"png")


def test_new_file_gets_a_normal_mode(tmp_path):
    target = tmp_path / "fresh.txt"
    atomic.atomic_write_text(target, "hello")
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask
