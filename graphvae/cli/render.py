"""``graphvae render SPEC [-o OUT] [--only encoder|decoder] [--latex]`` (torch-free).

SPEC is a spec file or a run folder (its stored spec).  Without ``-o`` the DOT source (or the
LaTeX) goes to stdout; with it, the file is written and its path printed.  ``-o``'s folder is
created when missing (as every command's output, see :mod:`graphvae.cli.outputs`)."""

from __future__ import annotations

import sys
from pathlib import Path

from graphvae.atomic import atomic_write_bytes
from graphvae.cli.outputs import output_file
from graphvae.errors import UserError
from graphvae.render.diagram import describe, image_bytes, output_format, to_graphviz
from graphvae.spec.loader import load_spec
from graphvae.train.runfolder import spec_path


def run(args) -> int:
    out, only = args.out, args.only
    if args.latex:
        if out is not None and Path(out).suffix.lower() != ".tex":
            raise UserError(f"cannot write '{out}' with --latex: the output must end in .tex")
        from graphvae.render.latex import to_latex

        text = to_latex(load_spec(str(spec_path(args.spec))), only)
        if out is None:
            sys.stdout.write(text)
        else:
            atomic_write_bytes(output_file(out), text.encode("utf-8"))
            print(f"wrote {out}")
        return 0
    fmt = output_format(out) if out is not None else "dot"
    if out is not None and Path(out).is_dir():
        output_file(out)  # refuses a folder before any drawing
    digraph = to_graphviz(describe(load_spec(str(spec_path(args.spec))), only))
    if out is None:
        sys.stdout.write(digraph.source)
    else:
        data = image_bytes(digraph, fmt)
        atomic_write_bytes(output_file(out), data)
        print(f"wrote {out}")
    return 0
