"""Validation rules for the objective and train blocks, and the default estimator (torch-free).

Codes:

``unknown-setting``     a name that is not a field of :class:`~graphvae.config.ObjectiveConfig`
                        (objective) or :class:`~graphvae.config.TrainConfig` (train).
``bad-setting``         a value of the wrong type, out of range, or not one of the choices
                        (:data:`CHOICES`, :data:`RANGES`); ``labelled_per_batch`` above ``batch_size``.
``duplicate``           a setting, estimator, beta or estimator option given twice.
``undefined-name``      an estimator or beta for an undeclared variable.
``unknown-estimator``   a method other than those in :data:`ESTIMATORS`.
``unknown-option``, ``bad-option``   estimator options (``relax(temperature = t)``, t > 0).
``bad-estimator``       an estimator for an observed or continuous variable; ``relax`` for a
                        family without a relaxed form (:data:`RELAXABLE`).
``missing-estimator``   (warning) a discrete latent or supervised variable without an estimator;
                        it gets :func:`default_estimator`.
``large-enumeration``   (warning) the enumerated variables have more than :data:`ENUMERATE_LIMIT`
                        joint values.
``bad-beta``            a KL weight for a variable that is not latent, or a weight < 0.
"""

from __future__ import annotations

from math import isfinite, log2, prod
from typing import Iterator

from graphvae.spec.diagnostics import Diagnostic, did_you_mean, error, warning
from graphvae.spec.families import FAMILIES
from graphvae.spec.ir import Setting, Span, Spec, Variable
from graphvae.spec.settings import SETTINGS, cross_problems, literal_ok, type_text
from graphvae.spec.validate.context import Context, first_span

ENUMERATE_LIMIT = 1024  # joint values summed over per example before enumeration is "large"
MAX_COUNTED_BITS = 4096  # enumeration_size counts exactly up to 2**this many values
ESTIMATORS: dict[str, dict[str, str]] = {  # method -> option -> constraint
    "enumerate": {},
    "relax": {"temperature": "positive"},
    "reinforce": {},
}
RELAXABLE = ("Categorical", "Bernoulli")  # families with a relaxed (Concrete) form

# -- estimators -------------------------------------------------------------------------

def _entries(var: Variable) -> int | None:
    """Number of binary entries, or None when the shape is not a tuple of positive integers."""
    if not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in var.shape):
        return None
    return prod(var.shape)


def enumeration_log2(var: Variable) -> float | None:
    """log2 of the number of values of a discrete variable (cheap for any shape), else None."""
    if var.domain == "categorical":
        k = var.shape[-1] if len(var.shape) == 1 else None
        return log2(k) if isinstance(k, int) and not isinstance(k, bool) and k > 0 else None
    if var.domain == "binary":
        return _entries(var)
    return None


def enumeration_size(var: Variable) -> int | None:
    """Number of values of a discrete variable: K for categorical[K], 2**n for binary with n entries;
    None for other domains, malformed shapes, or more than 2**MAX_COUNTED_BITS values."""
    bits = enumeration_log2(var)
    if bits is None or bits > MAX_COUNTED_BITS:
        return None
    return var.shape[-1] if var.domain == "categorical" else 2 ** _entries(var)


def _size_text(var: Variable) -> str:
    bits = enumeration_log2(var)
    if var.domain == "binary" and bits is not None and bits > 10:
        return f"2^{int(bits)}"
    return str(enumeration_size(var))


def default_estimator(spec: Spec, var: str | Variable) -> str:
    """The estimator of a discrete latent or supervised variable the objective names none for:
    ``"enumerate"`` when it has at most :data:`ENUMERATE_LIMIT` values, else ``"reinforce"``.
    Raises ValueError for an undeclared, observed or continuous variable."""
    v = spec.variable(var) if isinstance(var, str) else var
    if v is None or v.role == "observed" or not v.discrete:
        raise ValueError(f"no estimator applies to {var if isinstance(var, str) else var.name!r}")
    bits = enumeration_log2(v)
    return "enumerate" if bits is not None and bits <= log2(ENUMERATE_LIMIT) else "reinforce"


def estimator_method(spec: Spec, name: str) -> str | None:
    """The method the objective uses for variable ``name``: the spec's estimator, else the
    default for a discrete latent or supervised variable, else None."""
    est = spec.objective.estimator(name)
    if est is not None:
        return est.method.name
    v = spec.variable(name)
    if v is None or v.role == "observed" or not v.discrete:
        return None
    return default_estimator(spec, v)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def rule_estimators(ctx: Context) -> Iterator[Diagnostic]:
    seen: set[str] = set()
    for est in ctx.spec.objective.estimators:
        span = first_span(est.span, est.method.span)
        if est.var in seen:
            yield error("duplicate", f"variable '{est.var}' has two estimators", span)
            continue
        seen.add(est.var)
        var = ctx.variables.get(est.var)
        if var is None:
            names = list(ctx.variables) + list(SETTINGS['objective'])
            yield error("undefined-name", f"estimator for '{est.var}', which is not a declared variable "
                        "(nor an objective setting)", span, did_you_mean(est.var, names))
            continue
        yield from _check_method(ctx, est.var, var, est.method, span)


def _check_method(ctx: Context, name: str, var: Variable, method, span) -> Iterator[Diagnostic]:
    if method.name not in ESTIMATORS:
        yield error("unknown-estimator", f"unknown estimator '{method.name}' for '{name}'; estimators are "
                    f"{', '.join(ESTIMATORS)}", first_span(method.span, span), did_you_mean(method.name, ESTIMATORS))
        return
    allowed, seen = ESTIMATORS[method.name], set()
    for opt in method.options:
        ospan = first_span(opt.span, method.span, span)
        if opt.name in seen:
            yield error("duplicate", f"option '{opt.name}' of {method.name} is given twice", ospan)
        seen.add(opt.name)
        if opt.name not in allowed:
            yield error("unknown-option", f"estimator {method.name} has no option '{opt.name}'"
                        + (f"; options are {', '.join(allowed)}" if allowed else ""), ospan,
                        did_you_mean(opt.name, allowed))
        elif not (_is_number(opt.value) and isfinite(opt.value) and opt.value > 0):
            yield error("bad-option", f"{opt.name} of {method.name} must be a number > 0, found {opt.value!r}",
                        ospan)
    if var.role == "observed":
        yield error("bad-estimator", f"'{name}' is observed and always given; estimators are for discrete "
                    "latent or supervised variables", span)
    elif not var.discrete:
        yield error("bad-estimator", f"'{name}' is {var.domain}, not discrete; estimators are for binary or "
                    "categorical variables (continuous ones are reparameterized)", span)
    elif method.name == "relax":
        q = ctx.stochastic("encoder", name)
        if q is not None and q.dist.family in FAMILIES and q.dist.family not in RELAXABLE:
            yield error("bad-estimator", f"relax needs a family with a relaxed form ({', '.join(RELAXABLE)}); "
                        f"q({name}) uses {q.dist.family}", span)


def rule_missing_estimators(ctx: Context) -> Iterator[Diagnostic]:
    for v in ctx.spec.variables:
        if (ctx.variables[v.name] is v and v.role in ("latent", "supervised") and v.discrete
                and ctx.stochastic("encoder", v.name) is not None and ctx.spec.objective.estimator(v.name) is None
                and enumeration_log2(v) is not None):
            method = default_estimator(ctx.spec, v)
            yield warning("missing-estimator", f"discrete {v.role} variable '{v.name}' has no estimator in the "
                          f"objective; it defaults to {method} ({_size_text(v)} values)", v.span,
                          f"write '{v.name} = {method}' to make it explicit")


def rule_large_enumeration(ctx: Context) -> Iterator[Diagnostic]:
    enumerated = [v for v in ctx.variables.values()
                  if v.role in ("latent", "supervised") and enumeration_log2(v) is not None
                  and ctx.stochastic("encoder", v.name) is not None
                  and estimator_method(ctx.spec, v.name) == "enumerate"]
    bits = sum(enumeration_log2(v) for v in enumerated)
    if bits <= 64:  # small enough to count exactly
        count = prod(enumeration_size(v) for v in enumerated)
        if count <= ENUMERATE_LIMIT:
            return
        total = str(count)
    else:
        total = f"about 2^{round(bits)}"
    explicit = [e for e in ctx.spec.objective.estimators if e.method.name == "enumerate"]
    span = first_span(*(e.span for e in explicit), ctx.spec.objective.span, *(v.span for v in enumerated))
    listed = ", ".join(f"{v.name} ({_size_text(v)})" for v in enumerated)
    yield warning("large-enumeration", f"enumerating {listed} sums over {total} joint values per unlabelled "
                  f"example (limit {ENUMERATE_LIMIT})", span, "consider relax or reinforce")


# -- betas ------------------------------------------------------------------------------

def rule_betas(ctx: Context) -> Iterator[Diagnostic]:
    seen: set[str] = set()
    for b in ctx.spec.objective.betas:
        if b.var in seen:
            yield error("duplicate", f"variable '{b.var}' has two KL weights (beta)", b.span)
            continue
        seen.add(b.var)
        var = ctx.variables.get(b.var)
        if var is None:
            yield error("undefined-name", f"beta for '{b.var}', which is not a declared variable", b.span,
                        did_you_mean(b.var, list(ctx.variables)))
        elif var.role != "latent":
            yield error("bad-beta", f"beta weights the KL term of a latent variable; '{b.var}' is {var.role}",
                        b.span)
        if not (_is_number(b.value) and isfinite(b.value) and b.value >= 0):
            yield error("bad-beta", f"beta {b.var} must be a number >= 0, found {b.value!r}", b.span)


# -- settings ---------------------------------------------------------------------------

def _setting_problem(row, value) -> str | None:
    """Why a spec literal is not valid for the setting ``row``, worded for a diagnostic, or None."""
    if not literal_ok(row.type, value):
        return f"must be {type_text(row.type, spec=True)}"
    return None if row.constraint.check(value) else f"must be {row.constraint.math}"


def check_settings(settings: tuple[Setting, ...], block: str, span: Span | None = None,
                   extra_names: tuple[str, ...] = ()) -> Iterator[Diagnostic]:
    """Names, types and constraints of ``settings`` against :data:`graphvae.spec.settings.SETTINGS`,
    then the block's cross rules over the given values (defaults for the others)."""
    rows, seen, valid, spans = SETTINGS[block], set(), {}, {}
    for s in settings:
        if s.name in seen:
            yield error("duplicate", f"setting '{s.name}' is given twice in the {block} block", s.span)
            continue
        seen.add(s.name)
        if s.name not in rows:
            yield error("unknown-setting", f"unknown {block} setting '{s.name}'; settings are "
                        f"{', '.join(rows)}", s.span, did_you_mean(s.name, list(rows) + list(extra_names)))
            continue
        problem = _setting_problem(rows[s.name], s.value)
        if problem:
            choices = rows[s.name].constraint.choices
            yield error("bad-setting", f"{block} setting {s.name} {problem}, found {s.value!r}", s.span,
                        did_you_mean(s.value, choices) if isinstance(s.value, str) and choices else None)
        else:
            valid[s.name], spans[s.name] = s.value, s.span
    values = {name: valid.get(name, row.default) for name, row in rows.items() if name in valid or name not in seen}
    for rule, message in cross_problems(block, values):
        at = next((spans[n] for n in rule.names if n in spans), None)
        yield error("bad-setting", f"{block} setting {message}", first_span(at, span))


def rule_objective_settings(ctx: Context) -> Iterator[Diagnostic]:
    yield from check_settings(ctx.spec.objective.settings, "objective", ctx.spec.objective.span,
                              ("beta", "estimators"))


def rule_train_settings(ctx: Context) -> Iterator[Diagnostic]:
    yield from check_settings(ctx.spec.train, "train", ctx.spec.train_span)


RULES = [rule_estimators, rule_missing_estimators, rule_large_enumeration, rule_betas,
         rule_objective_settings, rule_train_settings]
