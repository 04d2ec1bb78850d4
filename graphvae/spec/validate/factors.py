"""Validation rules for factors: families, parameters, supports and shapes (torch-free); the
networks' rules are :mod:`graphvae.spec.validate.networks`'s, run here in their place.

Arguments bind to parameters as :mod:`graphvae.spec.binding` says (the compiler reads the same binding).
"""

from __future__ import annotations

from typing import Iterator

from graphvae.spec import errorcodes as codes
from graphvae.spec.binding import bind_params, lone_argument
from graphvae.spec.diagnostics import Diagnostic, did_you_mean, error, warning
from graphvae.spec.families import FAMILIES, SUPPORT_OF_DOMAIN, Family, literal_ok, support_contains
from graphvae.spec.ir import DOMAINS, Dist, Factor, Net, Param, Uniform, Variable
from graphvae.spec.validate.context import (Context, base_constraint, describe_factor, factor_span, first_span,
                                            head_span, is_number, is_width)
from graphvae.spec.validate.networks import rule_networks

CONSTRAINT_TEXT = {
    "real": "a finite number", "positive": "> 0", "nonnegative": ">= 0", "unit_interval": "in [0, 1]",
    "boolean": "0 or 1", "simplex": "on the simplex (non-negative, summing to 1)",
}


def _constraint_text(constraint: str) -> str:
    return CONSTRAINT_TEXT.get(base_constraint(constraint), constraint)


# -- argument binding ---------------------------------------------------------------------

# -- rules ------------------------------------------------------------------------------

def _stochastic(ctx: Context) -> Iterator[tuple[str, Factor, Family]]:
    for block, f in ctx.all_factors():
        if f.dist is not None and f.dist.family in FAMILIES:
            yield block, f, FAMILIES[f.dist.family]


def rule_families(ctx: Context) -> Iterator[Diagnostic]:
    for block, f in ctx.all_factors():
        if f.dist is not None and f.dist.family not in FAMILIES:
            yield error(codes.UNKNOWN_FAMILY, f"{describe_factor(block, f)} uses unknown family '{f.dist.family}'; "
                        f"known families: {', '.join(sorted(FAMILIES))}",
                        head_span(f.dist.span, f.dist.family) or f.span, did_you_mean(f.dist.family, FAMILIES))


def rule_parameters(ctx: Context) -> Iterator[Diagnostic]:
    for block, f, fam in _stochastic(ctx):
        where = describe_factor(block, f)
        slots, diags = bind_params(f.dist, fam, where, f.span)
        yield from diags
        var = ctx.variables.get(f.name)
        for slot, arg in slots.items():
            yield from _check_literal(where, fam, slot, arg, var, f.dist)
        if f.dist.params and f.parents and not f.dist.nets and lone_argument(f.dist) is None:
            yield warning(codes.IGNORED_PARENTS, f"{where} has parents but no network uses them; its "
                          "arguments are all literals", factor_span(f))


def _check_literal(where: str, fam: Family, slot: str, arg: Param, var: Variable | None,
                   dist: Dist) -> Iterator[Diagnostic]:
    value, span = arg.value, first_span(arg.span, dist.span)
    if isinstance(value, (Net, Uniform)):
        return
    name = arg.name or slot
    if not is_number(value):
        yield error(codes.BAD_PARAMETER, f"{where}: '{name}' of {fam.name} must be a number, a network or "
                    f"uniform, found {value!r}", span)
        return
    constraint = fam.constraints.get(name, "real")
    if constraint == "simplex":
        k = var.shape[-1] if var is not None and var.shape and is_width(var.shape[-1]) else None
        if k is not None and abs(value * k - 1) <= 1e-9:
            return
        yield error(codes.BAD_PARAMETER, f"{where}: '{name}' of {fam.name} must be {_constraint_text(constraint)}; "
                    f"a single number {value!r} is not", span, f"use {fam.name}(uniform) for equal probabilities")
    elif not literal_ok(constraint, value):
        yield error(codes.BAD_PARAMETER, f"{where}: '{name}' of {fam.name} must be {_constraint_text(constraint)} "
                    f"({constraint}), found {value!r}", span)


def _same_support(a: str, b: str) -> bool:
    norm = {"nonnegative": "positive"}
    return norm.get(a, a) == norm.get(b, b)


def support_fits(family: Family, var: Variable, block: str) -> bool:
    """Whether ``family`` may model ``var`` in ``block``.

    Observed variables, and supervised ones in p, need a support that *contains* the domain's
    (Normal on grey levels; Bernoulli only on ``binary``).  Latent variables, and supervised ones
    in q (sampled for unlabelled examples), need the domain's support exactly (nonnegative
    counts as positive)."""
    domain = SUPPORT_OF_DOMAIN[var.domain]
    exact = var.role == "latent" or (var.role == "supervised" and block == "encoder")
    return _same_support(family.support, domain) if exact else support_contains(family.support, domain)


def rule_support(ctx: Context) -> Iterator[Diagnostic]:
    for block, f, fam in _stochastic(ctx):
        var = ctx.variables.get(f.name)
        if var is None or var.domain not in DOMAINS or var.role == "observed" and block == "encoder":
            continue
        if support_fits(fam, var, block):
            continue
        fits = [n for n, x in FAMILIES.items() if support_fits(x, var, block)]
        how = "contain" if var.role == "observed" or block == "decoder" and var.role == "supervised" else "match"
        yield error(codes.SUPPORT_MISMATCH, f"{describe_factor(block, f)}: {fam.name} has support {fam.support}, "
                    f"which does not {how} the domain {var.domain} ({SUPPORT_OF_DOMAIN[var.domain]}) of "
                    f"{var.role} variable '{var.name}'", first_span(f.dist.span, f.span),
                    f"families that fit: {', '.join(fits)}" if fits else None)


def rule_variable_shapes(ctx: Context) -> Iterator[Diagnostic]:
    for v in ctx.spec.variables:
        bad = [d for d in v.shape if not is_width(d)]
        if bad:
            yield error(codes.BAD_SHAPE, f"variable '{v.name}' has dimension {bad[0]!r}; dimensions are positive "
                        "integers", v.span)
        elif v.domain in ("categorical", "simplex"):
            if len(v.shape) != 1:
                yield error(codes.BAD_SHAPE, f"{v.domain} variable '{v.name}' needs exactly one dimension, the number "
                            f"of classes K (e.g. {v.domain}[10]); found {len(v.shape)}", v.span)
            elif v.shape[0] < 2:
                yield error(codes.BAD_SHAPE, f"{v.domain} variable '{v.name}' needs at least 2 classes, found "
                            f"{v.shape[0]}", v.span)


def rule_event_shape(ctx: Context) -> Iterator[Diagnostic]:
    for block, f, fam in _stochastic(ctx):
        var = ctx.variables.get(f.name)
        if var is None or var.domain in ("categorical", "simplex"):
            continue  # their one dimension is checked by rule_variable_shapes
        if fam.event_rank > len(var.shape):
            yield error(codes.SHAPE_MISMATCH, f"{describe_factor(block, f)}: {fam.name} draws values with "
                        f"{fam.event_rank} event dimension(s), but '{var.name}' has shape {list(var.shape)}",
                        first_span(f.dist.span, f.span))


RULES = [rule_families, rule_parameters, rule_networks, rule_support, rule_variable_shapes, rule_event_shape]
