import os
import sys

try:
    from graphvae.cli import main
except KeyboardInterrupt:  # Ctrl-C while the package imports
    sys.stderr.write("graphvae: interrupted\n")
    raise SystemExit(130)

code = main()
if "RANK" in os.environ:  # perhaps a torchrun worker: its exit skips the interpreter's teardown
    from graphvae.train.distributed import exit_worker, launched

    if launched():
        exit_worker(code)
raise SystemExit(code)
