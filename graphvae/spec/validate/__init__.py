"""Semantic validation of a spec: every rule, every mistake, collected at once (torch-free).

:func:`validate` runs each rule in :data:`RULES` over a :class:`~.context.Context` (the spec's
names, factors and graphs, computed once) and returns all diagnostics, sorted by position.
Each rule is a small generator of diagnostics whose codes are registered in
:mod:`graphvae.spec.errorcodes`:

* :mod:`.structure`: names and structure, the graphs q and p;
* :mod:`.factors`: families, parameters, networks, supports and shapes;
* :mod:`.objective`: estimators, KL weights, and the objective and train settings;
* :mod:`.memory`: the memory the networks and a training step need, estimated.
"""

from __future__ import annotations

from typing import Callable, Iterable

from graphvae.spec.diagnostics import Diagnostic, sort_key
from graphvae.spec.ir import Spec
from graphvae.spec.validate import factors, memory, objective, structure
from graphvae.spec.validate.context import Context

Rule = Callable[[Context], Iterable[Diagnostic]]

RULES: list[Rule] = [*structure.RULES, *factors.RULES, *objective.RULES, *memory.RULES]


def validate(spec: Spec) -> list[Diagnostic]:
    """Every semantic error and warning of ``spec``, sorted by position (stable within a position).
    A spec with plates as written is validated written out (:func:`graphvae.spec.plates.expand`)."""
    from graphvae.spec.plates import expand, fold_repeats, needs_expansion

    if needs_expansion(spec):
        expanded, diags = expand(spec)
        return sorted(diags + (fold_repeats(validate(expanded)) if expanded is not None else []), key=sort_key)
    ctx = Context.build(spec)
    diags: list[Diagnostic] = []
    for rule in RULES:
        diags.extend(rule(ctx))
    return sorted(diags, key=sort_key)


def has_errors(diags: Iterable[Diagnostic]) -> bool:
    return any(d.is_error for d in diags)
