"""What every validation rule needs: the spec's names, factors and graphs, computed once (torch-free)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterator, Mapping

import networkx as nx

from graphvae.spec import errorcodes as codes
from graphvae.spec import printers
from graphvae.spec.diagnostics import Diagnostic, did_you_mean, error
from graphvae.spec.graph import block_graph
from graphvae.spec.ir import Factor, Option, Span, Spec, Variable
from graphvae.spec.settings import Bool, Constraint, OneOf, literal_ok

BLOCKS = ("encoder", "decoder")
BLOCK_LETTER = {"encoder": "q", "decoder": "p"}


# -- what the rules share about values -----------------------------------------------
def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_width(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def base_constraint(constraint: str) -> str:
    """``real`` of ``independent(real, 1)``: what each number of a parameter must be."""
    return constraint.removeprefix("independent(").split(",")[0].rstrip(")")


def first_span(*spans: Span | None) -> Span | None:
    """The first span that is known."""
    for s in spans:
        if s is not None:
            return s
    return None


def head_span(span: Span | None, name: str) -> Span | None:
    """The part of ``span`` covering the identifier ``name`` it starts with (``Normal`` of ``Normal(0, 1)``)."""
    if span is None:
        return None
    return Span(span.path, span.line, span.col, span.line, span.col + len(name))


def parent_span(f: Factor, i: int) -> Span | None:
    return f.parent_spans[i] if i < len(f.parent_spans) else first_span(f.span, f.name_span)


def factor_span(f: Factor) -> Span | None:
    return first_span(f.name_span, f.span)


MAX_NAMED_PARENTS = 8  # a factor with more is described by its first few and a count


def describe_factor(block: str, f: Factor) -> str:
    """``q(z | x, y)`` or ``p(x)``; deterministic nodes read ``h = mlp(x)``-like: ``node 'h'``.
    Beyond :data:`MAX_NAMED_PARENTS` parents, ``p(x | a, b, c, d, e, ... 5,995 more)``, so that
    the messages about one factor do not each repeat all its parents."""
    if f.deterministic:
        return f"deterministic node '{f.name}' in the {block}"
    parents = f.parents
    if len(parents) > MAX_NAMED_PARENTS:
        parents = (*parents[:5], f"... {len(parents) - 5:,} more")
    return f"{BLOCK_LETTER[block]}({printers.given(f.name, parents)})"


@dataclass
class Context:
    """What every rule needs, computed once.  The first definition of a name wins."""

    spec: Spec
    variables: dict[str, Variable] = field(default_factory=dict)
    factors: dict[str, dict[str, Factor]] = field(default_factory=dict)  # block -> name -> factor
    graphs: dict[str, nx.DiGraph] = field(default_factory=dict)  # block -> graph
    used: set[str] = field(default_factory=set)  # names appearing in any factor
    _deterministic: dict[str, dict[str, Factor]] = field(default_factory=dict)  # block -> name -> node

    @classmethod
    def build(cls, spec: Spec) -> "Context":
        ctx = cls(spec)
        for v in spec.variables:
            ctx.variables.setdefault(v.name, v)
        for block in BLOCKS:
            facs = getattr(spec, block)
            ctx.factors[block] = {}
            for f in facs:
                ctx.factors[block].setdefault(f.name, f)
                ctx.used.add(f.name)
                ctx.used.update(f.parents)
            ctx.graphs[block] = block_graph(spec, facs)
        return ctx

    def block_factors(self, block: str) -> tuple[Factor, ...]:
        return getattr(self.spec, block)

    def all_factors(self) -> Iterator[tuple[str, Factor]]:
        return self.spec.factors()

    def deterministic(self, block: str) -> dict[str, Factor]:
        """The block's deterministic nodes by name (computed once: rules ask per parent)."""
        if block not in self._deterministic:
            self._deterministic[block] = {n: f for n, f in self.factors[block].items() if f.deterministic}
        return self._deterministic[block]

    def stochastic(self, block: str, name: str) -> Factor | None:
        f = self.factors[block].get(name)
        return f if f is not None and not f.deterministic else None

    def is_used(self, var: Variable) -> bool:
        return var.name in self.used


def option_ok(constraint: Constraint, value) -> bool:
    """Whether an option's literal meets its constraint: a word for a choice, else a finite number."""
    if isinstance(constraint, (OneOf, Bool)):
        return isinstance(value, bool if isinstance(constraint, Bool) else str) and constraint.check(value)
    return literal_ok(float, value) and constraint.check(value)


def check_options(options: tuple[Option, ...], allowed: Mapping[str, Constraint], owner: str, unknown: str,
                  span: Span | None, bad: Callable[[Option, Constraint], tuple[str, str | None]]
                  ) -> Iterator[Diagnostic]:
    """The options of a network or an estimator: none twice (``duplicate``), each one ``allowed``
    (``unknown-option``, naming ``unknown``), each value meeting its constraint (``bad-option``,
    worded by ``bad``, which returns the message and a hint)."""
    seen: set[str] = set()
    for opt in options:
        ospan = first_span(opt.span, span)
        if opt.name in seen:
            yield error(codes.DUPLICATE, f"option '{opt.name}' of {owner} is given twice", ospan)
        seen.add(opt.name)
        if opt.name not in allowed:
            yield error(codes.UNKNOWN_OPTION, f"{unknown} has no option '{opt.name}'"
                        + (f"; options are {', '.join(allowed)}" if allowed else ""), ospan,
                        did_you_mean(opt.name, allowed))
        elif not option_ok(allowed[opt.name], opt.value):
            message, hint = bad(opt, allowed[opt.name])
            yield error(codes.BAD_OPTION, message, ospan, hint)
