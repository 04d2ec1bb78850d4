"""graphvae.spec.families against torch.distributions, the source of truth for constraints and supports."""

from __future__ import annotations

import importlib
import re

import pytest
import torch
from torch.distributions import constraints as C

from graphvae.spec.families import FAMILIES, SUPPORT_OF_DOMAIN, Family, literal_ok, register_family, support_contains

torch.set_num_threads(1)

# The names families.py uses -> torch constraint objects.
NAMED = {
    "real": C.real,
    "positive": C.positive,
    "nonnegative": C.nonnegative,
    "unit_interval": C.unit_interval,
    "boolean": C.boolean,
    "simplex": C.simplex,
    "integer_interval": C.integer_interval(0, 2),
}


def resolve(name: str):
    m = re.fullmatch(r"independent\((\w+), (\d+)\)", name)
    if m:
        return C.independent(NAMED[m.group(1)], int(m.group(2)))
    return NAMED[name]


def describe(c) -> tuple:
    """A comparable description of a torch constraint: its type and defining attributes."""
    if isinstance(c, C.independent):
        return ("independent", describe(c.base_constraint), c.reinterpreted_batch_ndims)
    if isinstance(c, C.integer_interval):  # Categorical's bounds depend on K
        return ("integer_interval",)
    return (type(c).__name__, getattr(c, "lower_bound", None), getattr(c, "upper_bound", None))


def torch_class(family: Family):
    module, _, name = family.torch_class.rpartition(".")
    return getattr(importlib.import_module(module), name)


def sample_params(family: Family) -> dict:
    """Valid values for every literal parameter (vectors for event_rank 1)."""
    shape = (3,) if family.event_rank else ()
    values = {"real": 0.3, "positive": 1.5, "unit_interval": 0.4}
    out = {}
    for p in family.params:
        constraint = family.constraints[p]
        if constraint == "simplex":
            out[p] = torch.full((3,), 1 / 3)
        else:
            base = constraint.removeprefix("independent(").split(",")[0]
            out[p] = torch.full(shape, values[base])
    return out


FAMILY_NAMES = sorted(FAMILIES)


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_torch_class_exists(name):
    cls = torch_class(FAMILIES[name])
    assert issubclass(cls, torch.distributions.Distribution)
    assert cls.__name__ == name


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_parameter_constraints_match_arg_constraints(name):
    family = FAMILIES[name]
    arg_constraints = torch_class(family).arg_constraints
    names = set(family.params) | set(family.head) | set(family.aliases)
    assert names <= set(arg_constraints), f"{name}: {names - set(arg_constraints)} not in torch"
    assert set(family.constraints) == names
    for param, constraint in family.constraints.items():
        assert describe(resolve(constraint)) == describe(arg_constraints[param]), (name, param)


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_support_matches_torch(name):
    family = FAMILIES[name]
    dist = torch_class(family)(**sample_params(family), validate_args=True)
    assert describe(resolve(family.support)) == describe(dist.support)


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_aliases_and_uniform_name_real_parameters(name):
    family = FAMILIES[name]
    assert set(family.aliases.values()) <= set(family.params)
    for param, value in (family.uniform or {}).items():
        assert param in family.param_names()
        # uniform values satisfy their constraint (logits 0 is real; probs 0.5 in [0, 1])
        assert literal_ok(family.constraints[param], value)


@pytest.mark.parametrize("name", FAMILY_NAMES)
def test_head_parameters_build_the_distribution(name):
    """A network head's unconstrained outputs, mapped by transform_to, give a valid distribution."""
    family = FAMILIES[name]
    cls = torch_class(family)
    shape = (3,)
    kwargs = {}
    for p in family.head:
        kwargs[p] = torch.distributions.transform_to(cls.arg_constraints[p])(torch.zeros(shape))
    dist = cls(**kwargs, validate_args=True)
    value = dist.sample()
    assert torch.isfinite(dist.log_prob(value)).all()


@pytest.mark.parametrize("domain, support", sorted(SUPPORT_OF_DOMAIN.items()))
def test_domain_supports_are_torch_constraints(domain, support):
    assert isinstance(resolve(support), C.Constraint)


POINTS = {  # representative values of each scalar support, including its edges
    "real": [-2.0, 0.0, 0.5, 1.0, 3.0],
    "positive": [1e-3, 0.5, 3.0],
    "nonnegative": [0.0, 0.5, 2.0],
    "unit_interval": [0.0, 0.3, 1.0],
    "boolean": [0.0, 1.0],
    "integer_interval": [0.0, 1.0, 2.0],
}
OUTER = ["real", "positive", "nonnegative", "unit_interval", "boolean"]


@pytest.mark.parametrize("outer", OUTER)
@pytest.mark.parametrize("inner", sorted(POINTS))
def test_support_contains_agrees_with_torch(outer, inner):
    torch_says = bool(NAMED[outer].check(torch.tensor(POINTS[inner])).all())
    assert support_contains(outer, inner) == torch_says


@pytest.mark.parametrize("constraint", ["real", "positive", "nonnegative", "unit_interval", "boolean"])
@pytest.mark.parametrize("value", [-1.0, 0.0, 0.25, 1.0, 2.0])
def test_literal_ok_agrees_with_torch(constraint, value):
    assert literal_ok(constraint, value) == bool(NAMED[constraint].check(torch.tensor(value)))


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_literal_ok_rejects_non_finite(value):
    assert not literal_ok("real", value)


def test_register_family_adds_and_replaces():
    fam = Family("Test", "torch.distributions.Normal", ("loc", "scale"), ("loc", "scale"),
                 {"loc": "real", "scale": "positive"}, "real")
    try:
        assert register_family(fam) is fam and FAMILIES["Test"] is fam
    finally:
        FAMILIES.pop("Test", None)
    assert "Test" not in FAMILIES
