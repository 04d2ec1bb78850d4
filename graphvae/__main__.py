import sys

try:
    from graphvae.cli import main
except KeyboardInterrupt:  # Ctrl-C while the package imports
    sys.stderr.write("graphvae: interrupted\n")
    raise SystemExit(130)

raise SystemExit(main())
