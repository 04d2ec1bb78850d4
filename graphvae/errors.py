"""The one exception for a user's mistake outside a spec (torch-free, imports nothing of graphvae).

Mistakes inside a spec are diagnostics (:mod:`graphvae.spec.diagnostics`), carried out of
the Python API by :class:`~graphvae.spec.diagnostics.SpecError`.
"""

from __future__ import annotations


class UserError(Exception):
    """A user mistake outside a spec (bad data, flags, checkpoint, run folder).

    The CLI prints its message as one line, ``graphvae: error: ...``, and exits 1;
    never a traceback."""
