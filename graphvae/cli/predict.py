"""``graphvae predict RUN [--data DATA] --out FILE``: the supervised variables' predictions from q
(class indices and class probabilities for a categorical one) as ``.npz`` or ``.csv``.

``encode`` and ``reconstruct`` (:mod:`graphvae.cli.encode`, :mod:`graphvae.cli.reconstruct`) run
through :func:`write_outputs` here; what each writes is :mod:`graphvae.train.arrays`'s.  ``--out``'s
folder is created when missing and the file is written atomically (see :mod:`graphvae.cli.outputs`)."""

from __future__ import annotations

from pathlib import Path

from graphvae.cli.outputs import output_file
from graphvae.errors import UserError
from graphvae.spec.settings import SETTINGS, value_problem


def check_out(out: str) -> None:
    """Refuse before any work an ``--out`` with an unknown suffix or that names a folder."""
    from graphvae.train.arrays import output_format

    if Path(out).is_dir():
        output_file(out, "--out")  # refuses a folder
    output_format(out)


def check_seed(seed: int) -> None:
    problem = value_problem(SETTINGS["train"]["seed"], seed)  # the same rule as train's --seed
    if problem:
        raise UserError(f"--seed {problem}, got {seed}")


def summary(path, arrays: dict) -> str:
    n = len(next(iter(arrays.values()))) if arrays else 0
    return f"wrote {path} ({n} example{'s' if n != 1 else ''}: {', '.join(arrays)})"


def write_outputs(args, what: str) -> int:
    """Load ``args.run``, compute ``what`` (predict | encode | reconstruct) on ``args.data``, write ``args.out``."""
    from graphvae.train import arrays as outputs
    from graphvae.train.runs import load_run

    check_out(args.out)
    check_seed(args.seed)
    run = load_run(args.run, args.checkpoint, args.device or "auto")
    result = getattr(outputs, what)(run, args.data, split=args.split, data_dir=args.data_dir, seed=args.seed)
    path = outputs.write_arrays(output_file(args.out, "--out"), result)
    print(summary(path, result))
    return 0


def run(args) -> int:
    return write_outputs(args, "predict")
