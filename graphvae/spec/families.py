"""The family registry's metadata: names, parameters, constraints and supports, without torch.

``graphvae check`` must not import torch, yet ``torch.distributions`` is the
source of truth for supports and parameter constraints.  So each family here
names its torch class and the constraint of each parameter by the attribute name
in ``torch.distributions.constraints``; ``tests/test_families.py`` imports torch
and checks every entry against the class's ``arg_constraints`` and ``support``.
The torch side (:mod:`graphvae.compile.distributions`) resolves the names lazily.

A user adds a family with :func:`register_family` (or
:func:`graphvae.compile.distributions.register` which also accepts a class object).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

# Support names, as attribute names of torch.distributions.constraints (integer_interval
# stands for Categorical's support, an interval that depends on K).
SUPPORT_OF_DOMAIN = {
    "real": "real",
    "positive": "positive",
    "unit": "unit_interval",
    "binary": "boolean",
    "categorical": "integer_interval",
    "simplex": "simplex",
}

# support name -> the support names it contains (reflexive).  A family whose support
# *contains* the domain's may model an observed variable (e.g. Normal on grey levels);
# a latent's family must have the domain's support exactly.
_CONTAINS = {
    "real": {"real", "positive", "unit_interval", "boolean", "integer_interval", "nonnegative"},
    "positive": {"positive"},
    "nonnegative": {"nonnegative", "positive", "unit_interval", "boolean", "integer_interval"},
    "unit_interval": {"unit_interval", "boolean"},
    "boolean": {"boolean"},
    "integer_interval": {"integer_interval"},
    "simplex": {"simplex"},
}


def support_contains(outer: str, inner: str) -> bool:
    return inner in _CONTAINS.get(outer, {outer})


@dataclass(frozen=True)
class Family:
    name: str
    torch_class: str  # dotted path, e.g. "torch.distributions.Normal"
    params: tuple[str, ...]  # literal parameters in positional order
    head: tuple[str, ...]  # parameters a network head produces (unconstrained blocks)
    constraints: dict[str, str] = field(default_factory=dict)  # param -> constraint name
    support: str = "real"
    event_rank: int = 0  # trailing dims of the variable's shape one draw consumes (Categorical: 1)
    uniform: dict[str, float] | None = None  # params meaning "uniform", broadcast to the shape
    aliases: dict[str, str] = field(default_factory=dict)  # alternative param names, e.g. logits for probs

    def param_names(self) -> tuple[str, ...]:
        return tuple(self.params) + tuple(self.aliases)


FAMILIES: dict[str, Family] = {}


def register_family(family: Family) -> Family:
    """Add (or replace) a family; returns it."""
    FAMILIES[family.name] = family
    return family


for _f in [
    Family("Normal", "torch.distributions.Normal", ("loc", "scale"), ("loc", "scale"),
           {"loc": "real", "scale": "positive"}, "real"),
    Family("Laplace", "torch.distributions.Laplace", ("loc", "scale"), ("loc", "scale"),
           {"loc": "real", "scale": "positive"}, "real"),
    Family("StudentT", "torch.distributions.StudentT", ("df", "loc", "scale"), ("df", "loc", "scale"),
           {"df": "positive", "loc": "real", "scale": "positive"}, "real"),
    Family("LogNormal", "torch.distributions.LogNormal", ("loc", "scale"), ("loc", "scale"),
           {"loc": "real", "scale": "positive"}, "positive"),
    Family("Gamma", "torch.distributions.Gamma", ("concentration", "rate"), ("concentration", "rate"),
           {"concentration": "positive", "rate": "positive"}, "nonnegative"),
    Family("Exponential", "torch.distributions.Exponential", ("rate",), ("rate",),
           {"rate": "positive"}, "nonnegative"),
    Family("Beta", "torch.distributions.Beta", ("concentration1", "concentration0"),
           ("concentration1", "concentration0"),
           {"concentration1": "positive", "concentration0": "positive"}, "unit_interval"),
    Family("ContinuousBernoulli", "torch.distributions.ContinuousBernoulli", ("probs",), ("logits",),
           {"probs": "unit_interval", "logits": "real"}, "unit_interval", aliases={"logits": "probs"}),
    Family("Bernoulli", "torch.distributions.Bernoulli", ("probs",), ("logits",),
           {"probs": "unit_interval", "logits": "real"}, "boolean",
           uniform={"probs": 0.5}, aliases={"logits": "probs"}),
    Family("Categorical", "torch.distributions.Categorical", ("probs",), ("logits",),
           {"probs": "simplex", "logits": "independent(real, 1)"}, "integer_interval", event_rank=1,
           uniform={"logits": 0.0}, aliases={"logits": "probs"}),
    Family("Dirichlet", "torch.distributions.Dirichlet", ("concentration",), ("concentration",),
           {"concentration": "independent(positive, 1)"}, "simplex", event_rank=1,
           uniform={"concentration": 1.0}),
]:
    register_family(_f)


def literal_ok(constraint: str, value: float) -> bool:
    """Whether a scalar literal satisfies a constraint (scalars broadcast over the shape).

    ``simplex`` literals are accepted when they can be broadcast, i.e. never for a scalar
    unless the variable has one class; callers handle that case."""
    try:
        if not math.isfinite(value):
            return False
    except OverflowError:  # an int beyond a float's range (the front ends refuse such literals)
        return False
    base = constraint.removeprefix("independent(").split(",")[0].rstrip(")")
    if base in ("real", "real_vector"):
        return True
    if base == "positive":
        return value > 0
    if base == "nonnegative":
        return value >= 0
    if base == "unit_interval":
        return 0 <= value <= 1
    if base == "boolean":
        return value in (0, 1)
    if base == "simplex":
        return False
    return True
