"""``graphvae COMMAND ...``: parse the arguments, run the command, map failures to exit codes.

Each command is a module of this package with a ``run(args) -> int``, imported only when
it runs, so that ``check``, ``fmt`` and ``render`` never import torch.  Exit codes: 0
success (warnings allowed), 1 errors in the input, 2 usage errors, 130 interrupted.  A
user mistake is one line ``graphvae: error: ...`` and never a traceback.
"""

from __future__ import annotations

import importlib
import os
import sys

from graphvae.cli.parser import build_parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "train" and not args.spec and not args.resume:
        parser.error("train needs a SPEC file (or --resume RUN)")  # a usage error: exit 2, like argparse's own
    command = importlib.import_module(f"graphvae.cli.{args.command}")  # graphvae/cli/<command>.py
    from graphvae.errors import UserError
    from graphvae.spec.diagnostics import SpecError, render, summary

    try:
        return int(command.run(args) or 0)
    except SpecError as exc:
        print(render(exc.diagnostics, exc.sources), file=sys.stderr)
        print(f"graphvae: {summary(exc.diagnostics)}", file=sys.stderr)
        return 1
    except UserError as exc:
        print(f"graphvae: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("graphvae: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # output piped into e.g. `head`, which closed early: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
