"""``graphvae reconstruct RUN [--data DATA] --out FILE``: the means of p(x | the encoded latents) for
every observed variable, as ``.npz`` or ``.csv`` (see :mod:`graphvae.cli.predict`)."""

from __future__ import annotations

from graphvae.cli.predict import write_outputs


def run(args) -> int:
    return write_outputs(args, "reconstruct")
