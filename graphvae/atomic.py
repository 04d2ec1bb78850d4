"""Atomic file writes: a temp file in the target's folder, fsync, then ``os.replace``.

Readers see the old file or the new one, never half of one; a failed write leaves
the old file as it was and no temp file behind, and is a one-line :class:`UserError`
(``cannot write 'last.pt': No space left on device; the previous file is kept``).  Every
module that writes user files (run folders, checkpoints, pictures, formatted specs, IDX
files) goes through here.

- A symlink is written through: its target gets the new contents and the link stays.
- A target that exists but is not a regular file (``/dev/null``, ``/dev/full``, a FIFO) is
  written straight into, never replaced; a folder is refused.
- A process killed mid-write leaves ``.NAME.XXXX.tmp`` beside the target;
  :func:`remove_stale_temps` clears them (a run folder does it when a run starts).
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from graphvae.errors import UserError


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc) or type(exc).__name__


def _write_into(path: Path, data: bytes) -> None:
    """Write into an existing special file (a device or FIFO) without replacing it; a FIFO
    nobody reads is an error at once, not a hang."""
    try:
        fd = os.open(path, os.O_WRONLY | getattr(os, "O_NONBLOCK", 0))
        os.set_blocking(fd, True)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
    except OSError as exc:
        raise UserError(f"cannot write '{path}': {_reason(exc)}") from None


def make_folders(path: str | os.PathLike) -> Path:
    """``path`` as an existing folder, created with its parents when missing (``mkdir -p``); a file
    standing where a folder must be, or a folder that cannot be made, is a one-line UserError."""
    path = Path(path)
    for parent in (path, *path.parents):  # name the file that stands where a folder must be
        if parent.exists() and not parent.is_dir():
            raise UserError(f"cannot create '{path}': '{parent}' is a file, not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the folder '{path}': {_reason(exc)}") from None
    return path


def _temp_beside(path: Path, data: bytes) -> Path:
    """``data`` written and fsynced into a new temp file beside ``path`` (named ``.NAME.*.tmp``, which
    :func:`remove_stale_temps`-style cleanups recognise), with the mode ``path`` has or a new file
    would get; an OSError leaves no temp behind and says that the previous file is kept."""
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent if str(path.parent) else Path("."), prefix=f".{path.name}.",
                                   suffix=".tmp")
    except OSError as exc:
        raise UserError(f"cannot write '{path}': {_reason(exc)}") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if path.exists():
            os.chmod(tmp, stat.S_IMODE(path.stat().st_mode))
        else:  # mkstemp creates 0600; give new files the usual umask-based mode
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError):
            kept = "; the previous file is kept" if path.exists() else ""
            raise UserError(f"cannot write '{path}': {_reason(exc)}{kept}") from None
        raise
    return Path(tmp)


def _target(path: str | os.PathLike) -> Path:
    """Where a write to ``path`` lands (through a link), refusing a folder or a missing parent folder."""
    path = Path(path)
    if path.is_symlink():  # write through the link to its target
        path = Path(os.path.realpath(path))
    if path.is_dir():
        raise UserError(f"cannot write '{path}': it is a folder; name a file")
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise UserError(f"cannot write '{path}': folder '{folder}' does not exist")
    return path


def _replace(tmp: Path, path: Path) -> None:
    try:
        os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise UserError(f"cannot write '{path}': {_reason(exc)}; the previous file is kept") from None
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Replace ``path`` by ``data`` atomically, keeping an existing file's permission bits."""
    path = _target(path)
    if path.exists() and not path.is_file():
        return _write_into(path, data)
    _replace(_temp_beside(path, data), path)


class Staged:
    """A write in two phases: :meth:`stage` puts the bytes of each file, fsynced, into temps beside
    them (the slow part, which may fail and then changes nothing); :meth:`commit` renames them into
    place (each one atomic); leaving the ``with`` block removes what was not committed.  A target that
    is a special file (a device, a FIFO) is written at commit instead."""

    def __init__(self):
        self._pending: list[tuple[Path, Path | None, bytes]] = []

    def stage(self, path: str | os.PathLike, data: bytes) -> None:
        target = _target(path)
        special = target.exists() and not target.is_file()
        self._pending.append((target, None if special else _temp_beside(target, data), data))

    def commit(self) -> None:
        while self._pending:
            target, tmp, data = self._pending.pop(0)
            if tmp is None:
                _write_into(target, data)
            else:
                _replace(tmp, target)

    def __enter__(self) -> "Staged":
        return self

    def __exit__(self, *exc) -> None:
        for _, tmp, _ in self._pending:
            if tmp is not None:
                tmp.unlink(missing_ok=True)
        self._pending = []
def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def remove_stale_temps(folder: str | os.PathLike, names) -> list[Path]:
    """Delete the temp files (``.NAME.*.tmp``) that a killed :func:`atomic_write_bytes` left in
    ``folder`` for each of ``names``; returns those removed."""
    folder = Path(folder)
    removed = []
    for name in names:
        for tmp in folder.glob(f".{name}.*.tmp"):
            try:
                tmp.unlink()
                removed.append(tmp)
            except OSError:
                pass
    return removed
