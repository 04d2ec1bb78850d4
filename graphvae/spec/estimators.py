r"""The registry of estimators: how a stochastic q node gets its value, one object each (torch-free).

Each :class:`Estimator` holds what every layer needs to know about it, in one place:

* its **options** with their constraints and defaults (``relax(temperature = t)``), which
  validation checks and the compiler reads;
* whether a spec may **declare** it (``y = relax``) and for which variables it applies
  (discrete or continuous; ``relax`` also needs a q family with a relaxed form);
* whether it **enumerates** (adds a tensor dim over the variable's values) and which
  estimator **evaluation** (IWAE) uses in its place: exact draws, never a relaxation;
* its description as **text** (``graphvae compile``) and as **LaTeX** (``render --latex``).

How each one draws is the torch side's: :mod:`graphvae.compile.estimators` registers one
implementation per name, beside its registration, and checks that every estimator here has
one.  Adding an estimator is one :func:`register_estimator` call here and one ``@draws``
function there.

The **default estimator** of a discrete variable the objective names none for is
:func:`default_estimator`: ``enumerate`` up to :data:`ENUMERATE_LIMIT` values, else
``reinforce``.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import log2, prod

from graphvae.spec.ir import Call, Spec, Variable
from graphvae.spec.settings import Constraint, Interval

ENUMERATE_LIMIT = 1024  # joint values summed over per example before enumeration is "large"
MAX_COUNTED_BITS = 4096  # support_size counts exactly up to 2**this many values


@dataclass(frozen=True)
class EstimatorOption:
    name: str
    constraint: Constraint
    default: float
    latex: str = ""  # appended to the LaTeX description when a spec gives the option; {value} is its value


@dataclass(frozen=True)
class Estimator:
    name: str
    discrete: bool  # for discrete variables (else continuous ones)
    declarable: bool  # a spec may name it in its objective (the others are chosen by the compiler)
    text: str  # `graphvae compile`: str.format with n (number of values), density and the options
    latex: str  # `render --latex`: str.format with q (the q factor) and v (the variable), both LaTeX
    options: tuple[EstimatorOption, ...] = ()
    enumerates: bool = False  # sums over every value in a tensor dim instead of drawing
    evaluation: str = ""  # the estimator evaluation (IWAE) uses instead; "" for itself
    families: tuple[str, ...] | None = None  # the q families it needs (None: any)
    reinforced: bool = False  # adds score-function terms to the gradient

    def option(self, name: str) -> EstimatorOption | None:
        return next((o for o in self.options if o.name == name), None)

    def resolved(self, call: Call | None) -> dict[str, float]:
        """Every option's value: as ``call`` gives it, else its default."""
        given = {o.name: o.value for o in call.options} if call is not None else {}
        return {o.name: float(given.get(o.name, o.default)) for o in self.options}

    def describe(self, n: int | None = None, density: str = "", options: dict[str, float] | None = None) -> str:
        """The text ``graphvae compile`` prints: ``n`` values, the relaxed ``density``, the options."""
        return self.text.format(n=n or 0, density=density, **(options if options is not None else self.resolved(None)))

    def describe_latex(self, q: str, v: str, call: Call | None = None, tex_number=str) -> str:
        text = self.latex.format(q=q, v=v)
        for opt in self.options:
            value = call.option(opt.name) if call is not None else None
            if value is not None and opt.latex:
                text += opt.latex.format(value=tex_number(value))
        return text


ESTIMATORS: dict[str, Estimator] = {}


def register_estimator(estimator: Estimator) -> Estimator:
    """Add an estimator (its drawing is registered in graphvae.compile.estimators)."""
    if estimator.evaluation and estimator.evaluation not in ESTIMATORS and estimator.evaluation != estimator.name:
        raise ValueError(f"estimator {estimator.name}: evaluation estimator {estimator.evaluation!r} is not registered")
    ESTIMATORS[estimator.name] = estimator
    return estimator


# `sample` and `mean` first: the others name them as their evaluation.
register_estimator(Estimator(
    "sample", discrete=True, declarable=False, text="exact sample (no gradient through the draw)",
    latex="an exact sample"))
register_estimator(Estimator(
    "mean", discrete=True, declarable=False, text="the mean (continuous) or mode (discrete) of q",
    latex="the mean or mode of ${q}$"))
register_estimator(Estimator(
    "enumerate", discrete=True, declarable=True, enumerates=True,
    text="exact sum over its {n} values, batched in one tensor dim",
    latex="enumerated, $\\mathrm{{E}}_{{{q}}}[f] = \\sum_{{{v}}} {q}\\, f({v})$"))
register_estimator(Estimator(
    "relax", discrete=True, declarable=True, evaluation="sample", families=("Categorical", "Bernoulli"),
    options=(EstimatorOption("temperature", Interval(0, lower_open=True), 2 / 3,  # Maddison et al. (2017)
                             ", temperature $\\tau = {value}$"),),
    text="Concrete/Gumbel-softmax sample at temperature {temperature:g}, scored with the relaxed densities "
         "({density})",
    latex="relaxed: a Concrete (Gumbel-softmax) sample, scored with relaxed densities"))
register_estimator(Estimator(
    "reinforce", discrete=True, declarable=True, evaluation="sample", reinforced=True,
    text="score function (REINFORCE) with a leave-one-out baseline",
    latex="score-function (REINFORCE) gradient with a leave-one-out baseline"))
register_estimator(Estimator(
    "rsample", discrete=False, declarable=False, text="reparameterised sample (rsample)",
    latex="a reparameterised sample"))
register_estimator(Estimator(
    "score", discrete=False, declarable=False, evaluation="sample", reinforced=True,
    text="score function (the family has no rsample)", latex="score-function gradient"))

DECLARABLE = tuple(name for name, e in ESTIMATORS.items() if e.declarable)


# -- sizes of discrete supports -------------------------------------------------------------------
def _entries(var: Variable) -> int | None:
    """Number of binary entries, or None when the shape is not a tuple of positive integers."""
    if not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in var.shape):
        return None
    return prod(var.shape)


def support_log2(var: Variable) -> float | None:
    """log2 of the number of values of a discrete variable (cheap for any shape), else None."""
    if var.domain == "categorical":
        k = var.shape[-1] if len(var.shape) == 1 else None
        return log2(k) if isinstance(k, int) and not isinstance(k, bool) and k > 0 else None
    if var.domain == "binary":
        return _entries(var)
    return None


def support_size(var: Variable) -> int | None:
    """Number of values of a discrete variable: K for categorical[K], 2**n for binary with n entries;
    None for other domains, malformed shapes, or more than 2**MAX_COUNTED_BITS values."""
    bits = support_log2(var)
    if bits is None or bits > MAX_COUNTED_BITS:
        return None
    return var.shape[-1] if var.domain == "categorical" else 2 ** _entries(var)


def size_text(var: Variable) -> str:
    """The number of values as text: ``10``, or ``2^784`` for a large binary variable."""
    bits = support_log2(var)
    if var.domain == "binary" and bits is not None and bits > 10:
        return f"2^{int(bits)}"
    return str(support_size(var))


# -- which estimator a variable gets ----------------------------------------------------------------
def default_estimator(spec: Spec, var: str | Variable) -> str:
    """The estimator of a discrete latent or supervised variable the objective names none for:
    ``"enumerate"`` when it has at most :data:`ENUMERATE_LIMIT` values, else ``"reinforce"``.
    Raises ValueError for an undeclared, observed or continuous variable."""
    v = spec.variable(var) if isinstance(var, str) else var
    if v is None or v.role == "observed" or not v.discrete:
        raise ValueError(f"no estimator applies to {var if isinstance(var, str) else var.name!r}")
    bits = support_log2(v)
    return "enumerate" if bits is not None and bits <= log2(ENUMERATE_LIMIT) else "reinforce"


def estimator_call(spec: Spec, name: str) -> tuple[Call, bool] | None:
    """The estimator of a discrete latent or supervised variable as a call, and whether it is
    the default (the objective names none); None for other variables."""
    var = spec.variable(name)
    if var is None or var.role == "observed" or not var.discrete:
        return None
    est = spec.objective.estimator(name)
    if est is not None:
        return est.method, False
    return Call(default_estimator(spec, var)), True


def estimator_method(spec: Spec, name: str) -> str | None:
    """The method the objective uses for variable ``name``: the spec's estimator, else the
    default for a discrete latent or supervised variable, else None."""
    found = estimator_call(spec, name)
    return found[0].name if found is not None else None

