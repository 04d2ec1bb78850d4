"""``graphvae compile SPEC``: compile a spec and print its nodes, networks, factorisation and objective."""

from __future__ import annotations

import sys
import time

from graphvae.compile.compiler import compile_spec
from graphvae.compile.report import report


def run(args) -> int:
    t0 = time.perf_counter()
    model = compile_spec(args.spec)
    elapsed = time.perf_counter() - t0
    sys.stdout.write(report(model, elapsed))
    return 0
