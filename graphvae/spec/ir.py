"""The spec IR: frozen dataclasses that both front ends (DSL and YAML) produce.

Data flows one way: text -> IR -> graph -> modules -> loss.  This module is the
contract between the front ends, validation, the compiler and the renderer, and
it imports nothing heavier than the standard library.

Every node carries a source :class:`Span` for diagnostics.  Spans never take part
in equality, so a spec read from ``m2.gvae`` equals the one read from ``m2.yaml``.

The IR is deliberately *permissive*: front ends only reject what they cannot
parse.  Unknown families, networks, options, undefined names, duplicates, cycles
and the like are carried as written and reported by :mod:`graphvae.spec.validate`,
so that every mistake in a file is reported at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from math import prod
from typing import Iterator, Union

ROLES = ("observed", "supervised", "latent")
DOMAINS = ("real", "positive", "unit", "binary", "categorical", "simplex")
# Domains whose values are finite and discrete (a latent of such a domain needs an estimator).
DISCRETE_DOMAINS = ("binary", "categorical")


def _first_by(items, attr: str) -> dict:
    """``{item.<attr>: item}`` keeping the first item of each key."""
    out: dict = {}
    for item in items:
        out.setdefault(getattr(item, attr), item)
    return out


@dataclass(frozen=True, order=True)
class Span:
    """A region of a source file.  Lines and columns are 1-based (lark's convention);
    the YAML loader converts PyYAML's 0-based marks at its boundary."""

    path: str
    line: int
    col: int
    end_line: int = 0
    end_col: int = 0


def _span() -> Span | None:  # a span field that equality and repr ignore
    return field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Option:
    """A named option as written, e.g. ``activation = relu`` or ``temperature = 0.66``."""

    name: str
    value: Union[int, float, str, bool]
    span: Span | None = _span()


class _Options:
    """``option(name)``: the value of a named option as written, or ``default``."""

    options: tuple[Option, ...]

    def option(self, name: str, default=None):
        return next((opt.value for opt in self.options if opt.name == name), default)


@dataclass(frozen=True)
class Net(_Options):
    """A network expression.

    ``kind`` is one of ``graphvae.spec.networks.NETWORKS`` once validated (front ends
    carry any identifier so validation can say "did you mean").  ``hidden`` holds the
    positional widths: hidden layers for ``mlp``; for ``linear`` used as a
    deterministic node, its single output width; channels for ``conv`` and ``locate``;
    the window for ``glimpse``, ``erase`` and ``paste``.  A bare identifier such as
    ``linear`` parses as ``Net("linear")``.

    As a family argument the network ends in an affine head producing the
    unconstrained parameter blocks.  As a deterministic node (``h | x = mlp(256)``)
    its value is the last hidden layer (activated), of width ``hidden[-1]``.
    """

    kind: str
    hidden: tuple[int, ...] = ()
    options: tuple[Option, ...] = ()
    span: Span | None = _span()

    @property
    def activation(self) -> str:
        return str(self.option("activation", "relu"))


@dataclass(frozen=True)
class Uniform:
    """The keyword ``uniform`` as a family argument: equal probabilities, e.g. ``Categorical(uniform)``."""

    span: Span | None = _span()


ParamValue = Union[int, float, Net, Uniform]


@dataclass(frozen=True)
class Param:
    """One argument of a family, positional (``name is None``) or named."""

    name: str | None
    value: ParamValue
    span: Span | None = _span()


@dataclass(frozen=True)
class Dist:
    """A family applied to its arguments as written, e.g. ``Normal(0, 1)`` or ``Normal(loc = mlp(500), scale = 0.1)``."""

    family: str
    params: tuple[Param, ...] = ()
    span: Span | None = _span()

    @property
    def nets(self) -> tuple[Net, ...]:
        return tuple(p.value for p in self.params if isinstance(p.value, Net))


@dataclass(frozen=True)
class Slot:
    """Where an expanded variable or factor came from: copy ``index`` of ``base`` in plate ``plate``
    (``y_1`` is ``Slot("y", "k", 1)``)."""

    base: str
    plate: str
    index: int


@dataclass(frozen=True)
class Plate:
    """``plate k < 3 count n``: K = ``size`` copies (slots k = 0..K-1) of the variables declared
    ``name[k]``; ``count`` names a categorical[K+1] variable saying how many slots are present
    (slot k is present iff k < n).  ``size`` is carried as written (None when no bound is given,
    a name when one is) for validation to judge."""

    name: str
    size: Union[int, float, str, None] = None
    count: str | None = None
    span: Span | None = _span()
    size_span: Span | None = _span()
    count_span: Span | None = _span()


@dataclass(frozen=True)
class Factor:
    """One line of an encoder or decoder block.

    Stochastic: ``name | parents ~ dist``.  Deterministic: ``name | parents = net``
    (then ``dist is None`` and ``net`` is set).

    As written, names may index a plate (``y[k]``, parents ``z[k-1]``, ``y[*]``, ``y[0]``, kept as
    that text).  Expanded (:mod:`graphvae.spec.plates`), each slot's copy has ``slot`` set and
    ``shared`` naming the one network the K copies share (the written factor's name); ``absent``
    lists ``(position, like)`` for each parent the copy lacks (``z[k-1]`` of slot 0): the shared
    network's input at that position, shaped as variable ``like``, reads zero."""

    name: str
    parents: tuple[str, ...] = ()
    dist: Dist | None = None
    net: Net | None = None
    span: Span | None = _span()  # the whole factor
    name_span: Span | None = _span()  # the defined name
    parent_spans: tuple[Span, ...] = field(default=(), compare=False, repr=False)
    shared: str | None = None
    absent: tuple[tuple[int, str], ...] = ()
    slot: Slot | None = None

    @property
    def deterministic(self) -> bool:
        return self.dist is None


@dataclass(frozen=True)
class Variable:
    """A declared variable: ``x : observed binary[784]``.

    ``shape`` is the bracket as written.  For ``categorical[K]`` it is ``(K,)``: the
    value is a class index in ``0..K-1``, fed to networks one-hot; for ``simplex[K]``
    it is ``(K,)`` too.  YAML's ``classes: K`` becomes ``shape = (K,)``.

    ``indices`` holds the plate indices as written (``y[k] : ...`` has ``("k",)``); an expanded
    copy has none and ``slot`` says where it came from.
    """

    name: str
    role: str
    domain: str
    shape: tuple[int, ...] = ()
    span: Span | None = _span()
    role_span: Span | None = _span()  # the role word, for diagnostics (None: use span)
    domain_span: Span | None = _span()  # the domain word
    indices: tuple[str, ...] = ()
    slot: Slot | None = None

    @property
    def classes(self) -> int | None:
        """Number of classes of a categorical variable, else None."""
        return self.shape[-1] if self.domain == "categorical" and self.shape else None

    @property
    def discrete(self) -> bool:
        return self.domain in DISCRETE_DOMAINS

    @property
    def size(self) -> int:
        """Width of the flattened value as a network input (one-hot width for categorical)."""
        return prod(self.shape) if self.shape else 1

    @property
    def missing(self) -> int | float:
        """The value that marks a missing label: ``-1`` for a class index, NaN otherwise."""
        return -1 if self.domain == "categorical" else float("nan")

    @property
    def value_shape(self) -> tuple[int, ...]:
        """Shape of one example's value tensor: class indices drop the last dim."""
        return self.shape[:-1] if self.domain == "categorical" else self.shape


@dataclass(frozen=True)
class Setting:
    """``name = value`` in an objective or train block (``alpha = 0.1``, ``epochs = 50``,
    ``data = mnist``).  Identifiers are carried as strings."""

    name: str
    value: Union[int, float, str, bool]
    span: Span | None = _span()


@dataclass(frozen=True)
class Call(_Options):
    """An identifier with options, e.g. ``relax(temperature = 0.66)`` or a bare ``enumerate``."""

    name: str
    options: tuple[Option, ...] = ()
    span: Span | None = _span()


@dataclass(frozen=True)
class Estimator:
    """The gradient estimator of one discrete variable: ``y = enumerate``,
    ``y = relax(temperature = 0.66)`` or ``y = reinforce``."""

    var: str
    method: Call
    span: Span | None = _span()


@dataclass(frozen=True)
class Beta:
    """A per-latent KL weight: DSL ``beta z = 4``, YAML ``beta: {z: 4}``."""

    var: str
    value: float
    span: Span | None = _span()


@dataclass(frozen=True)
class Objective:
    """The objective block.  ``settings`` holds ``alpha``, ``samples`` and the other
    scalar options (see :mod:`graphvae.spec.settings` for names and defaults)."""

    settings: tuple[Setting, ...] = ()
    estimators: tuple[Estimator, ...] = ()
    betas: tuple[Beta, ...] = ()
    span: Span | None = _span()

    # lookups by name go through dicts built once (the first entry of a name wins), so that a
    # rule asking once per variable stays linear in the spec's size
    @cached_property
    def _settings_by_name(self) -> dict[str, Setting]:
        return _first_by(self.settings, "name")

    @cached_property
    def _estimators_by_var(self) -> dict[str, Estimator]:
        return _first_by(self.estimators, "var")

    @cached_property
    def _betas_by_var(self) -> dict[str, Beta]:
        return _first_by(self.betas, "var")

    def get(self, name: str, default=None):
        s = self._settings_by_name.get(name)
        return s.value if s is not None else default

    def estimator(self, var: str) -> Estimator | None:
        return self._estimators_by_var.get(var)

    def beta(self, var: str) -> float:
        b = self._betas_by_var.get(var)
        return float(b.value) if b is not None else 1.0


@dataclass(frozen=True)
class Spec:
    """A whole model spec."""

    name: str
    variables: tuple[Variable, ...] = ()
    encoder: tuple[Factor, ...] = ()
    decoder: tuple[Factor, ...] = ()
    objective: Objective = field(default_factory=Objective)
    train: tuple[Setting, ...] = ()
    span: Span | None = _span()  # the `model NAME` line
    encoder_span: Span | None = _span()  # the `encoder` keyword / key
    decoder_span: Span | None = _span()
    train_span: Span | None = _span()
    path: str = field(default="<string>", compare=False, repr=False)
    source: str = field(default="", compare=False, repr=False)
    plates: tuple[Plate, ...] = ()
    written: "Spec | None" = field(default=None, compare=False, repr=False)  # the plate form an expansion came from

    @property
    def as_written(self) -> "Spec":
        """The spec as its file writes it: the plate form of an expanded spec, else itself."""
        return self.written if self.written is not None else self

    def plate(self, name: str) -> Plate | None:
        return next((p for p in self.plates if p.name == name), None)

    # -- lookups -----------------------------------------------------------------
    @cached_property
    def _variables_by_name(self) -> dict[str, Variable]:
        return _first_by(self.variables, "name")

    @cached_property
    def _train_by_name(self) -> dict[str, Setting]:
        return _first_by(self.train, "name")

    def variable(self, name: str) -> Variable | None:
        return self._variables_by_name.get(name)

    @property
    def var_map(self) -> dict[str, Variable]:
        return {v.name: v for v in self.variables}

    def by_role(self, role: str) -> tuple[Variable, ...]:
        return tuple(v for v in self.variables if v.role == role)

    @property
    def observed(self) -> tuple[Variable, ...]:
        return self.by_role("observed")

    @property
    def supervised(self) -> tuple[Variable, ...]:
        return self.by_role("supervised")

    @property
    def latent(self) -> tuple[Variable, ...]:
        return self.by_role("latent")

    def factors(self) -> Iterator[tuple[str, Factor]]:
        """All factors with their block, ``("encoder" | "decoder", factor)``."""
        for f in self.encoder:
            yield "encoder", f
        for f in self.decoder:
            yield "decoder", f

    def train_setting(self, name: str, default=None):
        s = self._train_by_name.get(name)
        return s.value if s is not None else default
