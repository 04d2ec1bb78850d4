"""``graphvae COMMAND ...``: parse the arguments, run the command, map failures to exit codes.

Each command is a module of this package with a ``run(args) -> int``, imported only when
it runs, so that ``check``, ``fmt`` and ``render`` never import torch.  Exit codes: 0
success (warnings allowed), 1 errors in the input, 2 usage errors, 130 interrupted.  A
user mistake is one line ``graphvae: error: ...`` and never a traceback; so is running
out of memory (``graphvae: error: out of memory: ...``), and Ctrl-C at any moment, even
while the command's modules import, is ``graphvae: interrupted`` and exit 130.
"""

from __future__ import annotations

import importlib
import os
import re
import sys


def _size(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:,} bytes" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return ""


def allocation_failure(exc: BaseException) -> str | None:
    """The one line for an allocation that failed (MemoryError, torch's out-of-memory errors,
    an allocator's RuntimeError), or None when ``exc`` is something else."""
    text = str(exc)
    oom = type(exc).__name__ == "OutOfMemoryError" or isinstance(exc, MemoryError)
    if not oom and isinstance(exc, RuntimeError):
        oom = bool(re.search(r"can't allocate memory|not enough memory|out of memory|Cannot allocate memory"
                             r"|failed to allocate|bad_alloc", text, re.IGNORECASE))
    if not oom:
        return None
    asked = re.search(r"(?:allocate|allocating)\s+(\d+)\s*bytes", text)
    gib = re.search(r"allocate\s+([\d.]+)\s*([KMGT]i?B)", text)
    what = (f"an allocation of {_size(int(asked.group(1)))} failed" if asked
            else f"an allocation of {gib.group(1)} {gib.group(2)} failed" if gib
            else f"{type(exc).__name__}{': ' + text.splitlines()[0][:120] if text.strip() else ''}")
    return (f"out of memory: {what}; the model, batch size or a sample count (-k, --n, samples) is too large "
            "for this machine (graphvae check SPEC estimates a spec's memory)")


def _run(argv: list[str] | None) -> int:
    from graphvae.cli.parser import build_parser

    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # as given (graphvae train --nproc passes them on)
    if args.command == "train" and not args.spec and not args.resume:
        parser.error("train needs a SPEC file (or --resume RUN)")  # a usage error: exit 2, like argparse's own
    from graphvae.errors import UserError
    from graphvae.spec.diagnostics import SpecError, render, summary

    try:
        command = importlib.import_module(f"graphvae.cli.{args.command}")  # graphvae/cli/<command>.py
        return int(command.run(args) or 0)
    except SpecError as exc:
        print(render(exc.diagnostics, exc.sources), file=sys.stderr)
        print(f"graphvae: {summary(exc.diagnostics)}", file=sys.stderr)
        return 1
    except UserError as exc:
        if not getattr(exc, "silent", False):  # under torchrun, rank 0 alone says what all processes raise
            print(f"graphvae: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # output piped into e.g. `head`, which closed early: not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (MemoryError, RuntimeError) as exc:
        line = allocation_failure(exc)
        if line is None:
            raise
        print(f"graphvae: error: {line}", file=sys.stderr)
        return 1


def main(argv: list[str] | None = None) -> int:
    try:
        return _run(argv)
    except KeyboardInterrupt:  # at any moment, the imports included
        print("graphvae: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
