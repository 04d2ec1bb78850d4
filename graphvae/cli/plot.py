"""``graphvae plot RUN [-o OUT.png]``: the training curves of a run (torch-free); ``-o``'s folder is
created when missing."""

from __future__ import annotations

from pathlib import Path

from graphvae.cli.outputs import output_file
from graphvae.errors import UserError
from graphvae.train.pictures import plot_curves
from graphvae.train.runfolder import RunFolder


def run(args) -> int:
    folder = RunFolder(args.run).require()
    out = Path(args.out) if args.out else folder.path / "curves.png"
    if out.suffix.lower() != ".png":
        raise UserError(f"{out}: plot writes PNG; name the file with .png")
    if out.is_dir():
        output_file(out)  # refuses a folder
    rows = folder.read_metrics()
    plot_curves(rows, output_file(out) if rows else out, title=str(folder.path))
    print(f"wrote {out}")
    return 0
