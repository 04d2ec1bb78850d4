"""The ``graphvae`` command line: argument parsing (:mod:`.parser`), dispatch (:mod:`.main`) and one
module per command.  Nothing in the library imports this package."""

from graphvae.cli.main import main

__all__ = ["main"]
