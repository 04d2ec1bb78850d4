"""Atomic writes: all or nothing, permissions kept, a missing folder or a failed write is a user error,
symlinks written through, special files written into, stale temp files removed."""

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
    with pytest.raises(UserError, match=r"last\.pt': No space left on device; the previous file is kept$"):
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


def test_a_symlink_is_written_through(tmp_path):
    target = tmp_path / "real.gvae"
    target.write_text("old")
    link = tmp_path / "link.gvae"
    link.symlink_to(target.name)
    atomic.atomic_write_text(link, "new")
    assert link.is_symlink() and target.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.gvae", "real.gvae"]


@pytest.mark.parametrize("target, message", [
    ("folder", "it is a folder; name a file"),
    ("/dev/full", "cannot write '/dev/full': No space left on device"),
])
def test_unwritable_targets_are_one_line(tmp_path, target, message):
    if target == "folder":
        target = tmp_path / "folder"
        target.mkdir()
    with pytest.raises(UserError) as exc:
        atomic.atomic_write_bytes(target, b"data")
    assert message in str(exc.value) and "\n" not in str(exc.value)
    assert os.path.exists("/dev/full") and not os.path.isfile("/dev/full")  # a device, never replaced


def test_a_special_file_is_written_into(tmp_path):
    atomic.atomic_write_bytes(os.devnull, b"ignored")
    assert not os.path.isfile(os.devnull)


def test_remove_stale_temps(tmp_path):
    for name in (".last.pt.abc123.tmp", ".best.pt.x.tmp", "last.pt", ".other.x.tmp", "notes.tmp"):
        (tmp_path / name).write_text("x")
    removed = atomic.remove_stale_temps(tmp_path, ["last.pt", "best.pt"])
    assert sorted(p.name for p in removed) == [".best.pt.x.tmp", ".last.pt.abc123.tmp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.x.tmp", "last.pt", "notes.tmp"]


def test_a_fifo_nobody_reads_is_an_error_not_a_hang(tmp_path):
    fifo = tmp_path / "out.dot"
    os.mkfifo(fifo)
    with pytest.raises(UserError, match="cannot write .*out.dot'"):
        atomic.atomic_write_bytes(fifo, b"digraph {}")


def test_staged_writes_land_only_at_commit(tmp_path):
    from graphvae.atomic import Staged

    a, b = tmp_path / "last.pt", tmp_path / "best.pt"
    a.write_bytes(b"old")
    with Staged() as files:
        files.stage(a, b"new")
        files.stage(b, b"new")
        assert a.read_bytes() == b"old" and not b.exists()  # staged: nothing in place yet
        assert len(list(tmp_path.glob(".*.tmp"))) == 2
        files.commit()
    assert a.read_bytes() == b.read_bytes() == b"new" and not list(tmp_path.glob(".*.tmp"))


def test_staged_writes_left_uncommitted_leave_no_trace(tmp_path):
    from graphvae.atomic import Staged

    a = tmp_path / "last.pt"
    a.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with Staged() as files:
            files.stage(a, b"new")
            raise RuntimeError("killed between staging and commit")
    assert a.read_bytes() == b"old" and not list(tmp_path.glob(".*.tmp"))
