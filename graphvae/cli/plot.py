"""``graphvae plot RUN [-o OUT.png]``: the training curves of a run (torch-free), one panel per
scale (graphvae.train.pictures.curve_panels); ``-o``'s folder is created when missing."""

from __future__ import annotations

from pathlib import Path

from graphvae.cli.outputs import output_file
from graphvae.errors import UserError
from graphvae.spec.diagnostics import SpecError
from graphvae.spec.loader import load_spec
from graphvae.train.pictures import plot_curves
from graphvae.train.runfolder import RunFolder, spec_path


def run(args) -> int:
    folder = RunFolder(args.run).require()
    out = Path(args.out) if args.out else folder.path / "curves.png"
    if out.suffix.lower() != ".png":
        raise UserError(f"{out}: plot writes PNG; name the file with .png")
    if out.is_dir():
        output_file(out)  # refuses a folder
    rows = folder.read_metrics()
    plot_curves(rows, output_file(out) if rows else out, title=str(folder.path), domains=_domains(folder))
    print(f"wrote {out}")
    return 0


def _domains(folder: RunFolder) -> dict:
    """The domain of each supervised variable of the run's stored spec (a percentage or an RMSE to
    draw), or nothing when the spec cannot be read: the curves are drawn without units then."""
    try:
        spec = load_spec(str(spec_path(folder.path)))
    except (UserError, SpecError, OSError, ValueError):
        return {}
    return {v.name: v.domain for v in spec.supervised}
