"""``graphvae encode RUN [--data DATA] --out FILE``: q's posterior means (modes) and parameters of the
latent and supervised variables, as ``.npz`` or ``.csv`` (see :mod:`graphvae.cli.predict`)."""

from __future__ import annotations

from graphvae.cli.predict import write_outputs


def run(args) -> int:
    return write_outputs(args, "encode")
