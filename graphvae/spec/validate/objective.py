"""Validation rules for the objective and train blocks (torch-free).

The estimators a spec may declare, their options and where they apply come from the
registry :mod:`graphvae.spec.estimators`; the settings from :mod:`graphvae.spec.settings`.
Each rule's codes are in :mod:`graphvae.spec.errorcodes`.
"""

from __future__ import annotations

from math import prod
from typing import Iterator

from graphvae.spec import errorcodes as codes
from graphvae.spec.diagnostics import Diagnostic, did_you_mean, error, warning
from graphvae.spec.estimators import (DECLARABLE, ENUMERATE_LIMIT, ESTIMATORS, default_estimator, estimator_method,
                                      size_text, support_log2, support_size)
from graphvae.spec.families import FAMILIES
from graphvae.spec.ir import Setting, Span, Variable
from graphvae.spec.settings import INT_TEXT, SETTINGS, cross_problems, literal_ok, out_of_range, type_text
from graphvae.spec.validate.context import Context, check_options, first_span


def rule_estimators(ctx: Context) -> Iterator[Diagnostic]:
    seen: set[str] = set()
    names = list(ctx.variables) + list(SETTINGS['objective'])  # for "did you mean", built once
    for est in ctx.spec.objective.estimators:
        span = first_span(est.span, est.method.span)
        if est.var in seen:
            yield error(codes.DUPLICATE, f"variable '{est.var}' has two estimators", span)
            continue
        seen.add(est.var)
        var = ctx.variables.get(est.var)
        if var is None:
            yield error(codes.UNDEFINED_NAME, f"estimator for '{est.var}', which is not a declared variable "
                        "(nor an objective setting)", span, did_you_mean(est.var, names))
            continue
        yield from _check_method(ctx, est.var, var, est.method, span)


def _check_method(ctx: Context, name: str, var: Variable, method, span) -> Iterator[Diagnostic]:
    est = ESTIMATORS.get(method.name)
    if est is None or not est.declarable:
        yield error(codes.UNKNOWN_ESTIMATOR, f"unknown estimator '{method.name}' for '{name}'; estimators are "
                    f"{', '.join(DECLARABLE)}", first_span(method.span, span), did_you_mean(method.name, DECLARABLE))
        return
    yield from check_options(method.options, {o.name: o.constraint for o in est.options}, method.name,
                             f"estimator {method.name}", first_span(method.span, span),
                             lambda opt, c: (f"{opt.name} of {method.name} must be a number {c.math}, found "
                                             f"{opt.value!r}", None))
    if var.role == "observed":
        yield error(codes.BAD_ESTIMATOR, f"'{name}' is observed and always given; estimators are for discrete "
                    "latent or supervised variables", span)
    elif not var.discrete:
        yield error(codes.BAD_ESTIMATOR, f"'{name}' is {var.domain}, not discrete; estimators are for binary or "
                    "categorical variables (continuous ones are reparameterized)", span)
    elif est.families is not None:
        q = ctx.stochastic("encoder", name)
        if q is not None and q.dist.family in FAMILIES and q.dist.family not in est.families:
            yield error(codes.BAD_ESTIMATOR, f"{est.name} needs a family with a relaxed form ({', '.join(est.families)}); "
                        f"q({name}) uses {q.dist.family}", span)


def rule_missing_estimators(ctx: Context) -> Iterator[Diagnostic]:
    for v in ctx.spec.variables:
        if (ctx.variables[v.name] is v and v.role in ("latent", "supervised") and v.discrete
                and ctx.stochastic("encoder", v.name) is not None and ctx.spec.objective.estimator(v.name) is None
                and support_log2(v) is not None):
            method = default_estimator(ctx.spec, v)
            yield warning(codes.MISSING_ESTIMATOR, f"discrete {v.role} variable '{v.name}' has no estimator in the "
                          f"objective; it defaults to {method} ({size_text(v)} values)", v.span,
                          f"write '{v.name} = {method}' to make it explicit")


def rule_large_enumeration(ctx: Context) -> Iterator[Diagnostic]:
    enumerated = [v for v in ctx.variables.values()
                  if v.role in ("latent", "supervised") and support_log2(v) is not None
                  and ctx.stochastic("encoder", v.name) is not None
                  and estimator_method(ctx.spec, v.name) == "enumerate"]
    bits = sum(support_log2(v) for v in enumerated)
    if bits <= 64:  # small enough to count exactly
        count = prod(support_size(v) for v in enumerated)
        if count <= ENUMERATE_LIMIT:
            return
        total = str(count)
    else:
        total = f"about 2^{round(bits)}"
    explicit = [e for e in ctx.spec.objective.estimators if e.method.name == "enumerate"]
    span = first_span(*(e.span for e in explicit), ctx.spec.objective.span, *(v.span for v in enumerated))
    listed = ", ".join(f"{v.name} ({size_text(v)})" for v in enumerated)
    yield warning(codes.LARGE_ENUMERATION, f"enumerating {listed} sums over {total} joint values per unlabelled "
                  f"example (limit {ENUMERATE_LIMIT})", span, "consider relax or reinforce")


# -- betas ------------------------------------------------------------------------------

def rule_betas(ctx: Context) -> Iterator[Diagnostic]:
    seen: set[str] = set()
    names = list(ctx.variables)
    for b in ctx.spec.objective.betas:
        if b.var in seen:
            yield error(codes.DUPLICATE, f"variable '{b.var}' has two KL weights (beta)", b.span)
            continue
        seen.add(b.var)
        var = ctx.variables.get(b.var)
        if var is None:
            yield error(codes.UNDEFINED_NAME, f"beta for '{b.var}', which is not a declared variable", b.span,
                        did_you_mean(b.var, names))
        elif var.role != "latent":
            yield error(codes.BAD_BETA, f"beta weights the KL term of a latent variable; '{b.var}' is {var.role}",
                        b.span)
        if not (literal_ok(float, b.value) and b.value >= 0):
            yield error(codes.BAD_BETA, f"beta {b.var} must be a number >= 0, found {b.value!r}", b.span)


# -- settings ---------------------------------------------------------------------------

def _setting_problem(row, value) -> str | None:
    """Why a spec literal is not valid for the setting ``row``, worded for a diagnostic, or None."""
    if out_of_range(row, value):
        return f"must be {INT_TEXT}"
    if not literal_ok(row.type, value):
        return f"must be {type_text(row.type, spec=True)}"
    return None if row.constraint.check(value) else f"must be {row.constraint.math}"


def check_settings(settings: tuple[Setting, ...], block: str, span: Span | None = None,
                   extra_names: tuple[str, ...] = ()) -> Iterator[Diagnostic]:
    """Names, types and constraints of ``settings`` against :data:`graphvae.spec.settings.SETTINGS`,
    then the block's cross rules over the given values (defaults for the others)."""
    rows, seen, valid, spans = SETTINGS[block], set(), {}, {}
    names = list(rows) + list(extra_names)
    for s in settings:
        if s.name in seen:
            yield error(codes.DUPLICATE, f"setting '{s.name}' is given twice in the {block} block", s.span)
            continue
        seen.add(s.name)
        if s.name not in rows:
            yield error(codes.UNKNOWN_SETTING, f"unknown {block} setting '{s.name}'; settings are "
                        f"{', '.join(rows)}", s.span, did_you_mean(s.name, names))
            continue
        problem = _setting_problem(rows[s.name], s.value)
        if problem:
            choices = rows[s.name].constraint.choices
            yield error(codes.BAD_SETTING, f"{block} setting {s.name} {problem}, found {s.value!r}", s.span,
                        did_you_mean(s.value, choices) if isinstance(s.value, str) and choices else None)
        else:
            valid[s.name], spans[s.name] = s.value, s.span
    values = {name: valid.get(name, row.default) for name, row in rows.items() if name in valid or name not in seen}
    for rule, message in cross_problems(block, values):
        at = next((spans[n] for n in rule.names if n in spans), None)
        yield error(codes.BAD_SETTING, f"{block} setting {message}", first_span(at, span))


def rule_objective_settings(ctx: Context) -> Iterator[Diagnostic]:
    yield from check_settings(ctx.spec.objective.settings, "objective", ctx.spec.objective.span,
                              ("beta", "estimators"))


def rule_train_settings(ctx: Context) -> Iterator[Diagnostic]:
    yield from check_settings(ctx.spec.train, "train", ctx.spec.train_span)


RULES = [rule_estimators, rule_missing_estimators, rule_large_enumeration, rule_betas,
         rule_objective_settings, rule_train_settings]
