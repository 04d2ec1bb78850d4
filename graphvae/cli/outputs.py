"""Output paths of the commands (``render -o``, ``plot -o``, ``sample --out``, ``train --out``).

One rule for all: the folders an output path names are created when missing (``mkdir -p``);
a path that names a folder where a file is wanted, or a file where a folder is wanted, is a
one-line UserError and nothing is written.  Files are written atomically
(:mod:`graphvae.atomic`), so a failed write (disk full, no permission) keeps the old file.
Torch-free.
"""

from __future__ import annotations

import os
from pathlib import Path

from graphvae.atomic import make_folders
from graphvae.errors import UserError


def make_folder(path: str | os.PathLike, what: str = "folder") -> Path:
    """``path`` as an existing folder, created with its parents when missing."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise UserError(f"'{path}' is a file, not a folder; {what} names a folder")
    return make_folders(path)


def output_file(path: str | os.PathLike, flag: str = "-o") -> Path:
    """``path`` checked as an output file (not a folder), its folder created when missing."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"'{path}' is a folder; {flag} names the file to write")
    if str(path).endswith(("/", os.sep)):
        raise UserError(f"'{path}' names a folder; {flag} names the file to write")
    make_folder(path.parent if str(path.parent) else Path("."), f"the folder of {flag}")
    return path
