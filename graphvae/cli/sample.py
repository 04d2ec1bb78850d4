"""``graphvae sample RUN --out DIR``: PNG grids of generation, style transfer, reconstructions, traversals.

``--format npz|csv --out FILE`` writes ``--n`` draws of p as arrays named after the spec's variables
instead (any data, images or not; ``--given y=3`` clamps a latent or supervised variable; see
:mod:`graphvae.train.arrays`).  DIR (or FILE's folder) is created when missing (as every
command's output, see :mod:`graphvae.cli.outputs`)."""

from __future__ import annotations

from pathlib import Path

from graphvae.cli.outputs import make_folder
from graphvae.errors import UserError
from graphvae.spec.settings import SETTINGS, value_problem
from graphvae.train.pictures import sample_pictures

MAX_COLUMNS = 500  # a wider grid is past matplotlib's 2^16-pixel picture limit for 28x28 images
MAX_DRAWS = 1_000_000  # --n with --format npz|csv: draws made at once


def run(args) -> int:
    seed_problem = value_problem(SETTINGS["train"]["seed"], args.seed)  # the same rule as train's --seed
    if seed_problem:
        raise UserError(f"--seed {seed_problem}, got {args.seed}")
    fmt = getattr(args, "format", "png") or "png"
    if fmt != "png":
        return _arrays(args, fmt)
    if getattr(args, "given", None):
        raise UserError("--given clamps the draws of --format npz or csv; the PNG grids choose their own")
    if args.n < 1:
        raise UserError(f"--n must be at least 1 (columns per grid), got {args.n}")
    if args.n > MAX_COLUMNS:
        raise UserError(f"--n {args.n} is too large: a grid has at most {MAX_COLUMNS} columns "
                        f"({args.n} would be a picture {args.n * 100:,} pixels wide)")
    out = Path(args.out)
    created = not out.exists()
    make_folder(out, "--out")
    try:
        sample_pictures(args.run, out, n=args.n, seed=args.seed, which=args.checkpoint, data=args.data,
                        data_dir=args.data_dir, device=args.device, log=print)
    except BaseException:
        if created and out.is_dir() and not any(out.iterdir()):
            out.rmdir()  # leave no empty folder behind a failure
        raise
    return 0


def _arrays(args, fmt: str) -> int:
    """``--format npz|csv``: ``--n`` draws of p written to the file ``--out``."""
    from graphvae.cli.outputs import output_file
    from graphvae.cli.predict import check_out, summary
    from graphvae.train.arrays import parse_given, sample, write_arrays
    from graphvae.train.runs import load_run

    if args.n < 1:
        raise UserError(f"--n must be at least 1 (draws), got {args.n}")
    if args.n > MAX_DRAWS:
        raise UserError(f"--n {args.n} is too large: at most {MAX_DRAWS:,} draws at once")
    if Path(args.out).suffix.lower() != f".{fmt}":
        raise UserError(f"--format {fmt} writes a .{fmt} file; --out names '{args.out}'")
    check_out(args.out)
    run_ = load_run(args.run, args.checkpoint, args.device or "auto")
    arrays = sample(run_, args.n, given=parse_given(run_.spec, args.given), seed=args.seed)
    path = write_arrays(output_file(args.out, "--out"), arrays)
    print(summary(path, arrays))
    return 0
