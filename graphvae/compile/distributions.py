"""The torch side of the family registry: classes, parameter constraints, relaxations, supports.

:mod:`graphvae.spec.families` holds torch-free metadata (so ``graphvae check`` never
imports torch); this module resolves each family's ``torch_class`` lazily and
builds distributions from parameter tensors.

* Network heads output unconstrained blocks; :func:`constrain` maps a block onto
  the parameter's constraint with ``torch.distributions.transform_to`` applied to
  the class's own ``arg_constraints`` -- no activation is picked by hand.
* :func:`build` sums log-probs over a variable's event dims with ``Independent``
  (event dims = ``len(shape) - family.event_rank``).
* :data:`RELAXATIONS` pairs a discrete family with its continuous relaxation for
  the ``relax`` estimator (Concrete / Gumbel-softmax, Maddison et al. 2017; Jang et
  al. 2017).  A relaxed variable is sampled and scored in log space
  (``ExpRelaxedCategorical`` / ``LogitRelaxedBernoulli``); the value fed to
  networks is ``exp`` / ``sigmoid`` of it, i.e. a ``RelaxedOneHotCategorical`` /
  ``RelaxedBernoulli`` sample.  The change of variables has the same Jacobian under
  q and p, so log q - log p equals the ratio of the relaxed densities while staying
  finite where the simplex-space density underflows.
* :func:`register` adds a family in one call (also to the torch-free metadata, so
  validation sees it).
* Non-finite parameters never raise: distributions are built without torch's argument
  checks (also the ones torch builds inside, e.g. StudentT's ``Chi2``), and :func:`drawable`
  gives a copy to draw from where torch would refuse them (``torch.bernoulli``,
  ``torch.multinomial``, ``torch.normal``).  A NaN parameter so gives a NaN log-density, which
  the trainer's non-finite check names.
"""

from __future__ import annotations

import copy
import importlib
import itertools
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable

import torch
from torch.distributions import Distribution, Independent, constraints, transform_to

from graphvae.spec import families
from graphvae.spec.families import Family

_CLASSES: dict[str, type] = {}  # family name -> resolved torch class (cache; classes registered as objects)


def family(name: str) -> Family:
    try:
        return families.FAMILIES[name]
    except KeyError:
        raise KeyError(f"unknown family {name!r}; known: {', '.join(sorted(families.FAMILIES))}") from None


def torch_class(name: str) -> type:
    """The ``torch.distributions.Distribution`` subclass of a family, imported on first use."""
    cls = _CLASSES.get(name)
    fam = family(name)
    if cls is None or f"{cls.__module__}.{cls.__qualname__}" != fam.torch_class:
        module, _, attr = fam.torch_class.rpartition(".")
        cls = getattr(importlib.import_module(module), attr)
        _CLASSES[name] = cls
    return cls


def constraint_name(c: constraints.Constraint) -> str:
    """The name of a constraint as :mod:`graphvae.spec.families` writes it (``positive``,
    ``independent(real, 1)``), found by identity among ``torch.distributions.constraints``."""
    if isinstance(c, constraints.independent):
        return f"independent({constraint_name(c.base_constraint)}, {c.reinterpreted_batch_ndims})"
    for attr in dir(constraints):
        if not attr.startswith("_") and getattr(constraints, attr) is c:
            return attr
    if isinstance(c, constraints.integer_interval):
        return "integer_interval"
    return type(c).__name__.lstrip("_").lower()


def param_constraint(family_name: str, param: str) -> constraints.Constraint:
    return torch_class(family_name).arg_constraints[param]


def constrain(family_name: str, param: str, block: torch.Tensor) -> torch.Tensor:
    """Map an unconstrained block onto ``param``'s constraint (``transform_to``)."""
    return transform_to(param_constraint(family_name, param))(block)


def constraint_map(family_name: str, param: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """:func:`constrain` for one family parameter, resolved once (a network head calls it every step):
    the ``transform_to`` transform itself, nothing at all for an unconstrained parameter, and
    ``torch.exp`` alone for a positive one (``transform_to(positive)`` is exp followed by an affine
    map with scale 1 and shift 0: the same values, two more operations a step)."""
    c = param_constraint(family_name, param)
    while isinstance(c, constraints.independent):
        c = c.base_constraint
    if c is constraints.real:
        return _identity
    if isinstance(c, constraints.greater_than) and c.lower_bound == 0:  # transform_to: exp, then x * 1 + 0
        return torch.exp
    return transform_to(param_constraint(family_name, param))


def _identity(block: torch.Tensor) -> torch.Tensor:
    return block


def event_dims(family_name: str, shape: tuple[int, ...]) -> int:
    """Trailing batch dims of the torch distribution that belong to one value of the variable."""
    return len(shape) - family(family_name).event_rank


@contextmanager
def _unchecked():
    """Build distributions without argument checks, also the ones a distribution builds inside
    itself with torch's default (StudentT's ``Chi2``, ExpRelaxedCategorical's ``Categorical``).
    Under ``torch.compile`` the default is left alone: torch switches it off for the process when
    a compiled function is made, and setting a class attribute would break the graph."""
    if torch.compiler.is_compiling():
        yield
        return
    saved = Distribution._validate_args
    Distribution.set_default_validate_args(False)
    try:
        yield
    finally:
        Distribution.set_default_validate_args(saved)


def build(family_name: str, params: dict[str, torch.Tensor], n_event: int) -> Distribution:
    """The family's distribution over one value of a variable: ``Independent`` over ``n_event`` dims."""
    return builder(family_name, n_event)(params)


def builder(family_name: str, n_event: int) -> Callable[[dict[str, torch.Tensor]], Distribution]:
    """:func:`build` for one family and event rank, resolved once: the class, and whether its
    constructor builds inner distributions with torch's default checks (then they are switched
    off around it, see :func:`_unchecked`)."""
    cls = torch_class(family_name)
    inner = cls not in _NO_INNER

    def make(params: dict[str, torch.Tensor]) -> Distribution:
        if inner:
            with _unchecked():
                d = cls(**params, validate_args=False)
        else:
            d = cls(**params, validate_args=False)
        return Independent(d, n_event, validate_args=False) if n_event > 0 else d
    return make


# classes whose constructors build no other distribution (so need no default-checks switch)
_NO_INNER = {torch.distributions.Normal, torch.distributions.Bernoulli, torch.distributions.Categorical,
             torch.distributions.ContinuousBernoulli, torch.distributions.Laplace, torch.distributions.Cauchy,
             torch.distributions.Gamma, torch.distributions.Poisson, torch.distributions.Dirichlet,
             torch.distributions.Exponential}


def _valid(c: constraints.Constraint, value: torch.Tensor) -> torch.Tensor:
    """Per entry of ``value``: finite and (where the constraint is checked entrywise) within ``c``."""
    if isinstance(c, constraints.independent):
        c = c.base_constraint
    ok = torch.isfinite(value)
    if c is constraints.simplex:  # unnormalised rows are fine to draw from
        return ok & (value >= 0)
    try:
        inside = c.check(value)
    except (NotImplementedError, RuntimeError, TypeError):
        return ok
    return ok & inside if inside.shape == value.shape else ok


def drawable(d: Distribution) -> Distribution:
    """``d`` to draw from: a shallow copy whose non-finite or invalid parameter entries are 1
    (valid for every family here), the other entries untouched, so that a draw never raises and
    draws the same values as ``d`` wherever ``d`` is valid.  Take log-densities from ``d``."""
    new = copy.copy(d)
    if isinstance(getattr(d, "base_dist", None), Distribution):  # Independent, LogNormal: the base draws
        new.base_dist = drawable(d.base_dist)
        return new
    names = ("probs",) if "probs" in d.arg_constraints else tuple(d.arg_constraints)
    for name in names:
        value = getattr(d, name) if name == "probs" else d.__dict__.get(name)  # probs: materialised from logits
        if torch.is_tensor(value) and value.is_floating_point():
            safe = torch.where(_valid(d.arg_constraints[name], value), value, torch.ones((), dtype=value.dtype,
                                                                                       device=value.device))
            setattr(new, name, safe)
    return new


def mean(d: Distribution) -> torch.Tensor:
    """``d.mean``, and for a StudentT with df <= 1, which has none (torch gives NaN), its mode ``loc``."""
    m = d.mean
    base = base_of(d)
    if isinstance(base, torch.distributions.StudentT):
        return torch.where(base.df <= 1, base.loc, m)
    return m


def base_of(d: Distribution) -> Distribution:
    return d.base_dist if isinstance(d, Independent) else d


# -- relaxations for the `relax` estimator ------------------------------------------------
@dataclass(frozen=True)
class Relaxation:
    """A discrete family's continuous relaxation, in the space where it is sampled and scored."""

    log_space_class: type  # constructed as cls(temperature, logits=...)
    to_value: Callable[[torch.Tensor], torch.Tensor]  # log-space sample -> value fed to networks
    density: str  # the relaxed density in value space, for documentation and `graphvae compile`


class _ExpRelaxedCategorical(torch.distributions.relaxed_categorical.ExpRelaxedCategorical):
    """torch's ExpRelaxedCategorical, with its inner Categorical built unchecked too.  torch builds
    that one with the process's default checks, which no context can switch off inside a
    ``torch.compile`` graph (and which would break it)."""

    def __init__(self, temperature, probs=None, logits=None, validate_args=None):
        self._categorical = torch.distributions.Categorical(probs, logits, validate_args=False)
        self.temperature = temperature
        Distribution.__init__(self, self._categorical.batch_shape, self._categorical.param_shape[-1:],
                              validate_args=validate_args)

    def expand(self, batch_shape, _instance=None):
        return super().expand(batch_shape, _instance=self._get_checked_instance(_ExpRelaxedCategorical, _instance))


RELAXATIONS: dict[str, Relaxation] = {
    "Categorical": Relaxation(_ExpRelaxedCategorical, torch.exp,
                              "RelaxedOneHotCategorical"),
    "Bernoulli": Relaxation(torch.distributions.relaxed_bernoulli.LogitRelaxedBernoulli, torch.sigmoid,
                            "RelaxedBernoulli"),
}


def relaxation(family_name: str) -> Relaxation | None:
    return RELAXATIONS.get(family_name)


def build_relaxed(family_name: str, d: Distribution, temperature: float) -> Distribution:
    """The relaxed (log-space) counterpart of the discrete distribution ``d`` at ``temperature``."""
    cls = RELAXATIONS[family_name].log_space_class
    base = base_of(d)
    logits = base.logits
    temp = torch.as_tensor(temperature, dtype=logits.dtype, device=logits.device)
    with _unchecked():
        r = cls(temp, logits=logits, validate_args=False)
    n = d.reinterpreted_batch_ndims if isinstance(d, Independent) else 0
    return Independent(r, n, validate_args=False) if n > 0 else r


# -- enumeration --------------------------------------------------------------------------
_SUPPORTS: dict[tuple, torch.Tensor] = {}  # (domain, shape, dtype, device) -> the support, made once


def support_values(domain: str, shape: tuple[int, ...], dtype=torch.float32, device=None) -> torch.Tensor:
    """Every joint value of a finite discrete variable, shape ``(N, *value_shape)``.

    Categorical values are class indices (long) of shape ``shape[:-1]``; binary values
    are 0/1 floats of shape ``shape``.  Made once per variable shape, dtype and device (an
    enumerated variable asks for it every step); callers must not write into it.  Under
    torch.compile it is made afresh, a constant of the graph."""
    if torch.compiler.is_compiling():
        return _support_values(domain, shape, dtype, device)
    key = (domain, tuple(shape), dtype, torch.device(device) if device is not None else None)
    sup = _SUPPORTS.get(key)
    if sup is None:
        sup = _SUPPORTS[key] = _support_values(domain, shape, dtype, device)
    return sup


def _support_values(domain: str, shape: tuple[int, ...], dtype=torch.float32, device=None) -> torch.Tensor:
    if domain == "categorical":
        vshape, k, kind = shape[:-1], shape[-1], torch.long
    elif domain == "binary":
        vshape, k, kind = shape, 2, dtype
    else:
        raise ValueError(f"domain {domain!r} has no finite support")
    m = 1
    for s in vshape:
        m *= s
    rows = list(itertools.product(range(k), repeat=m))
    return torch.tensor(rows, dtype=kind, device=device).reshape((len(rows),) + tuple(vshape))


# -- a parameter at a data mean: where a paste's learnt canvas starts ---------------------------
_AT_MEAN: dict[tuple[str, str], Callable[[torch.Tensor], torch.Tensor]] = {}


def at_mean(family_name: str, param: str):
    """Register how a family's network parameter ``param`` (its unconstrained value) makes the
    family's mean equal a given mean: ``@at_mean("Bernoulli", "logits")``."""
    def put(fn: Callable[[torch.Tensor], torch.Tensor]):
        if (family_name, param) in _AT_MEAN:
            raise ValueError(f"at_mean: {family_name}.{param} is registered already")
        if param not in family(family_name).head:
            raise ValueError(f"at_mean: {param!r} is not one of {family_name}'s network parameters")
        _AT_MEAN[(family_name, param)] = fn
        return fn
    return put


@at_mean("Bernoulli", "logits")
def _bernoulli_logits(mean: torch.Tensor) -> torch.Tensor:
    # a mean of 0 or 1 (a pixel never or always on) would be an infinite logit: clamped to 1e-3
    return torch.logit(mean.clamp(1e-3, 1 - 1e-3))


for _name in ("Normal", "Laplace", "StudentT"):  # the mean is loc itself (StudentT's for df > 1)
    at_mean(_name, "loc")(_identity)


def has_mean_map(family_name: str, param: str) -> bool:
    """Whether :func:`parameter_at_mean` knows ``family_name``'s ``param``."""
    return (family_name, param) in _AT_MEAN


def parameter_at_mean(family_name: str, param: str, mean: torch.Tensor) -> torch.Tensor | None:
    """The value of ``param`` at which ``family_name``'s mean is ``mean``, or None where no
    such map is registered (the parameter is a scale, say)."""
    fn = _AT_MEAN.get((family_name, param))
    return None if fn is None else fn(mean)


# -- user extension -----------------------------------------------------------------------
def register(name: str, cls: type, params: tuple[str, ...] | list[str], head: tuple[str, ...] | list[str] | None = None,
             support: str | None = None, event_rank: int = 0, uniform: dict[str, float] | None = None,
             aliases: dict[str, str] | None = None) -> Family:
    """Add a family in one call, e.g. ``register("Gumbel", torch.distributions.Gumbel, ("loc", "scale"))``.

    ``params``: literal parameters in positional order; ``head``: parameters a network
    produces (default ``params``); constraints come from ``cls.arg_constraints`` and the
    support name from ``cls.support`` unless given.  Also registers the torch-free
    metadata with :func:`graphvae.spec.families.register_family` so validation sees it."""
    params = tuple(params)
    head = tuple(head) if head is not None else params
    arg = dict(cls.arg_constraints)
    missing = [p for p in params + head if p not in arg]
    if missing:
        raise ValueError(f"{cls.__name__}.arg_constraints has no {', '.join(missing)}")
    cons = {p: constraint_name(arg[p]) for p in dict.fromkeys(params + head + tuple(aliases or {}))}
    if support is None:
        sup = cls.support
        if isinstance(sup, constraints.independent):
            sup = sup.base_constraint
        support = constraint_name(sup)
    fam = Family(name, f"{cls.__module__}.{cls.__qualname__}", params, head, cons, support, event_rank,
                 uniform, dict(aliases or {}))
    families.register_family(fam)
    module = importlib.import_module(cls.__module__)
    if getattr(module, cls.__qualname__, None) is cls:
        _CLASSES.pop(name, None)
    else:  # a class that cannot be imported by its dotted path (defined in a function, say)
        _CLASSES[name] = cls
    return fam
