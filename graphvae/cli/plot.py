"""``graphvae plot RUN [-o OUT.png]``: the training curves of a run (torch-free)."""

from __future__ import annotations

from pathlib import Path

from graphvae.errors import UserError
from graphvae.train.pictures import plot_curves
from graphvae.train.runfolder import RunFolder


def run(args) -> int:
    folder = RunFolder(args.run).require()
    out = Path(args.out) if args.out else folder.path / "curves.png"
    if out.suffix.lower() != ".png":
        raise UserError(f"{out}: plot writes PNG; name the file with .png")
    if not out.parent.is_dir():
        raise UserError(f"{out.parent}: no such folder")
    plot_curves(folder.read_metrics(), out, title=str(folder.path))
    print(f"wrote {out}")
    return 0
