"""``graphvae sample RUN --out DIR``: PNG grids of generation, style transfer, reconstructions, traversals.

DIR is created when missing (as every command's output, see :mod:`graphvae.cli.outputs`)."""

from __future__ import annotations

from pathlib import Path

from graphvae.cli.outputs import make_folder
from graphvae.errors import UserError
from graphvae.spec.settings import SETTINGS, value_problem
from graphvae.train.pictures import sample_pictures

MAX_COLUMNS = 500  # a wider grid is past matplotlib's 2^16-pixel picture limit for 28x28 images


def run(args) -> int:
    seed_problem = value_problem(SETTINGS["train"]["seed"], args.seed)  # the same rule as train's --seed
    if seed_problem:
        raise UserError(f"--seed {seed_problem}, got {args.seed}")
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
