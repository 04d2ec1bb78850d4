"""How each estimator of :mod:`graphvae.spec.estimators` draws a stochastic q node, registered by name.

An implementation takes the node, q's distribution ``d`` for it (batch shape broadcastable
to ``(*lead, B)``), the trace of the forward pass and the number of samples S, and records
the node's value and its log q in the trace (see :class:`graphvae.compile.objective.Trace`).
Each is registered with :func:`draws` right above its definition, like
``torch.distributions.kl.register_kl``; :func:`check_registry` (run at import, and by the
tests) refuses an estimator without an implementation or an implementation without an
estimator.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch

from graphvae.compile import distributions as dists
from graphvae.compile.objective import Trace, broadcast_shapes
from graphvae.spec.estimators import ESTIMATORS
from graphvae.spec.ir import Variable


@dataclass(frozen=True)
class QNode:
    """A stochastic q node as compiled: its variable, q's family, its estimator and the
    estimator's options (defaults filled in)."""

    name: str
    var: Variable
    family: str
    estimator: str
    options: dict[str, float] = field(default_factory=dict)


Draw = Callable[[QNode, torch.distributions.Distribution, Trace, int], None]
DRAWS: dict[str, Draw] = {}


def draws(*names: str) -> Callable[[Draw], Draw]:
    """Register the decorated function as the drawing of the estimators ``names``."""
    def register(fn: Draw) -> Draw:
        for name in names:
            if name not in ESTIMATORS:
                raise KeyError(f"no estimator {name!r} in graphvae.spec.estimators to draw for")
            if name in DRAWS:
                raise KeyError(f"estimator {name!r} already has a drawing ({DRAWS[name].__name__})")
            DRAWS[name] = fn
        return fn
    return register


def check_registry() -> None:
    """Every registered estimator has a drawing and every drawing an estimator."""
    missing = sorted(set(ESTIMATORS) - set(DRAWS))
    extra = sorted(set(DRAWS) - set(ESTIMATORS))
    if missing or extra:
        raise RuntimeError(f"estimators without a drawing: {missing}; drawings without an estimator: {extra}")


def draw(node: QNode, estimator: str, d, trace: Trace, samples: int) -> None:
    """Draw ``node`` with ``estimator`` (its own, or the one evaluation uses in its place)."""
    DRAWS[estimator](node, d, trace, samples)
    if ESTIMATORS[estimator].reinforced:
        trace.reinforced.append(node.name)


def _target(d, trace: Trace, samples: int) -> torch.Size:
    """The batch shape of a draw: the distribution's, broadcast over S samples of each example."""
    return broadcast_shapes(d.batch_shape, (samples, trace.batch_size) if samples > 1 else (trace.batch_size,))


def _expanded(d, trace: Trace, samples: int):
    """``d`` over the batch shape of a draw (itself when it has that shape already)."""
    target = _target(d, trace, samples)
    return d if target == d.batch_shape else d.expand(target)


def _record(node: QNode, value: torch.Tensor, d, trace: Trace) -> None:
    trace.values[node.name] = value
    trace.logq[node.name] = trace.checked(d.log_prob(value), node.name)


def mean_or_mode(d, var: Variable, mean_only: bool = False) -> torch.Tensor:
    """The mean of ``d``; for a discrete variable (unless ``mean_only``) its mode; always the mode
    for a categorical one (class indices have no mean)."""
    if (mean_only and var.domain != "categorical") or not var.discrete:
        return dists.mean(d)
    if var.domain == "binary":
        probs = dists.base_of(d).probs
        return (probs > 0.5).to(probs.dtype)
    return d.mode


# -- the implementations --------------------------------------------------------------------------
@draws("enumerate")
def _enumerate(node: QNode, d, trace: Trace, samples: int) -> None:
    """Every value of the variable at once, in its own lead dim of the trace.  A plain categorical
    (:mod:`graphvae.compile.densities`) gives their log q from its log-probabilities moved into
    place (``log_prob_support``) rather than picking them out."""
    i, lead = trace.enumerated.index(node.name), trace.lead
    sup = dists.support_values(node.var.domain, node.var.shape, trace.dtype, trace.device)
    value = sup.reshape((1,) * i + (sup.shape[0],) + (1,) * (lead - i) + tuple(sup.shape[1:]))
    logq = d.log_prob_support(i, lead) if hasattr(d, "log_prob_support") else None
    if logq is None:
        _record(node, value, d, trace)
        return
    trace.values[node.name] = value
    trace.logq[node.name] = trace.checked(logq, node.name)


@draws("rsample")
def _rsample(node: QNode, d, trace: Trace, samples: int) -> None:
    """A reparameterised draw: gradients flow through the value.  A plain distribution
    (:mod:`graphvae.compile.densities`) scores its own draw (``rsample_scored``)."""
    if hasattr(d, "rsample_scored"):
        value, logq = d.rsample_scored(_target(d, trace, samples))
        trace.values[node.name] = value
        trace.logq[node.name] = trace.checked(logq, node.name)
        return
    _record(node, _expanded(d, trace, samples).rsample(), d, trace)


@draws("sample", "reinforce", "score")
def _sample(node: QNode, d, trace: Trace, samples: int) -> None:
    """An exact draw without a gradient through it (reinforce and score add score-function terms)."""
    _record(node, _expanded(dists.drawable(d), trace, samples).sample(), d, trace)


@draws("relax")
def _relax(node: QNode, d, trace: Trace, samples: int) -> None:
    """A Concrete draw, scored in log space under q here and under p's relaxed density later."""
    relaxed = dists.build_relaxed(node.family, d, node.options["temperature"]).expand(_target(d, trace, samples))
    log_space = relaxed.rsample()
    trace.relaxed[node.name] = (log_space, node.options["temperature"])
    trace.values[node.name] = dists.relaxation(node.family).to_value(log_space)
    trace.logq[node.name] = trace.checked(relaxed.log_prob(log_space), node.name)


@draws("mean")
def _mean(node: QNode, d, trace: Trace, samples: int) -> None:
    """The mean (continuous) or mode (discrete) of q, with no log q: for encoding."""
    trace.values[node.name] = mean_or_mode(d.expand(_target(d, trace, samples)), node.var)


check_registry()
