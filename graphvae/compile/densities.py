r"""Plain distributions for the training step: a family's parameters and the few tensor operations
the step needs of them, without ``torch.distributions`` objects.

A small model's training step spends about as long building ``Independent(Normal(...))`` and
``Categorical(...)`` objects and going through their ``log_prob`` as on its matrix products
(the digits M2 at B = 16: about 0.3 ms of a 3.5 ms step, forward and backward).  The classes
here hold the parameters and compute, with the same formulas as torch's:

    Normal       log N(v; loc, scale) = -(v - loc)^2 / (2 scale^2) - log scale - log sqrt(2 pi);
                 rsample: loc + eps * scale, eps ~ N(0, I) drawn as torch draws it (same numbers)
    Bernoulli    log p(v; logits) = -BCE_with_logits(logits, v)
    Categorical  log p(v; logits) = log_softmax(logits)[v]

each summed over the variable's last ``n_event`` dims (torch's ``Independent``).  Each class is
registered with :func:`plain` beside its definition, for a family and the exact parameter names
it takes; :func:`plain_class` gives a factor's class, or None where the family or its parameters
have no plain form (then the step uses torch's object).  Only the training step (``mode = train``)
uses them, and only for what they implement: ``log_prob`` (a labelled or enumerated node, and
every p node that is not relaxed), ``rsample_scored`` (a reparameterised draw and its log q) and
``log_prob_support`` (a categorical's log q of every class, for enumeration).  A factor whose every
parameter is a literal (``Normal(0, 1)``, ``Categorical(uniform)``) is built once, by
``of_literals``, which works out once what ``log_prob`` would derive from the parameters each step
(the standard Normal's is -v^2 / 2 - log sqrt(2 pi); a uniform categorical's is -log K whatever
the value).  Everything else
(evaluation, prediction, relaxed and score-function draws) builds torch's distributions.
``tests/test_densities.py`` checks every registered class against torch's on a table of shapes.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

from graphvae.compile.objective import broadcast_shapes

LOG_SQRT_2PI = math.log(math.sqrt(2 * math.pi))  # torch's constant in Normal.log_prob

PLAIN: dict[str, tuple[frozenset[str], type]] = {}  # family -> (its parameter names, the class)


def plain(family: str, params: tuple[str, ...]) -> Callable[[type], type]:
    """Register the decorated class as the plain form of ``family`` given exactly ``params``."""
    def register(cls: type) -> type:
        if family in PLAIN:
            raise KeyError(f"family {family!r} already has a plain form ({PLAIN[family][1].__name__})")
        PLAIN[family] = (frozenset(params), cls)
        cls.family, cls.params = family, tuple(params)
        return cls
    return register


def plain_class(family: str, params) -> type | None:
    """The plain form of ``family`` given parameters named ``params``, or None where it has none."""
    entry = PLAIN.get(family)
    return entry[1] if entry is not None and entry[0] == frozenset(params) else None


def _reduce(t: torch.Tensor, n_event: int) -> torch.Tensor:
    """``t`` summed over its last ``n_event`` dims (the event of one value)."""
    if n_event == 0:
        return t
    return t.sum(-1) if n_event == 1 else t.flatten(t.dim() - n_event).sum(-1)


class _Plain:
    """What the plain classes share: ``batch_shape`` (the parameters' broadcast shape without the
    event dims, or a larger one after :meth:`expand`) and ``event_shape``, worked out when asked
    (a scored node never asks)."""

    n_event: int
    _tail = 0  # trailing dims of a parameter that are a value's own (Categorical's K), in neither shape
    _batch: torch.Size | None = None  # set by expand

    def _params(self) -> tuple[torch.Tensor, ...]:
        raise NotImplementedError

    _full_shape: torch.Size | None = None  # the parameters' broadcast shape, once worked out

    def _full(self) -> torch.Size:
        if self._full_shape is None:
            tail = self._tail
            self._full_shape = broadcast_shapes(*(p.shape[:p.dim() - tail] for p in self._params()))
        return self._full_shape

    def draw_shape(self, batch_shape=None) -> torch.Size:
        """The shape of one draw: ``batch_shape`` (this distribution's own when None), then the event."""
        full = self._full()
        batch = self.batch_shape if batch_shape is None else batch_shape
        return torch.Size(tuple(batch) + tuple(full[len(full) - self.n_event:]))

    @property
    def batch_shape(self) -> torch.Size:
        if self._batch is not None:
            return self._batch
        full = self._full()
        return full[:len(full) - self.n_event]

    @property
    def event_shape(self) -> torch.Size:
        full = self._full()
        return full[len(full) - self.n_event:]

    @classmethod
    def of_literals(cls, n_event: int, literals: dict[str, float], **params: torch.Tensor) -> "_Plain":
        """The distribution of a factor whose every parameter is a literal (``literals``: each one's
        value, filled into ``params``' tensors), built once: a class may work out here what its
        ``log_prob`` would otherwise derive from the parameters every step."""
        return cls(n_event, **params)

    def expand(self, batch_shape) -> "_Plain":
        """The same distribution over a larger batch shape (its draws cover it)."""
        out = object.__new__(type(self))
        out.__dict__.update(self.__dict__)
        out._batch = torch.Size(batch_shape)
        return out


@plain("Normal", ("loc", "scale"))
class PlainNormal(_Plain):
    def __init__(self, n_event: int, loc: torch.Tensor, scale: torch.Tensor):
        self.n_event, self.loc, self.scale = n_event, loc, scale
        self._standard = False  # N(0, I): log_prob is -v^2 / 2 - log sqrt(2 pi)
        self._log_scale = self._two_var = None  # literal parameters: worked out once

    @classmethod
    def of_literals(cls, n_event, literals, **params):
        out = cls(n_event, **params)
        if literals == {"loc": 0.0, "scale": 1.0}:
            out._standard = True
        else:
            out._log_scale, out._two_var = out.scale.log(), 2 * out.scale ** 2
        return out

    def _params(self):
        return self.loc, self.scale

    def rsample_scored(self, batch_shape=None) -> tuple[torch.Tensor, torch.Tensor]:
        """A reparameterised draw over ``batch_shape`` (the batch shape when None; one it broadcasts
        to), ``loc + eps * scale`` with eps drawn as torch's ``Normal.rsample`` draws it, and its
        log-density: at v = loc + eps * scale, log N(v; loc, scale) = -eps^2 / 2 - log scale -
        log sqrt(2 pi), the same function of loc, scale and eps as :meth:`log_prob` of the draw (so
        the same gradients) in fewer operations."""
        # as torch.distributions draws it (empty, then normal_): torch.randn would give the same numbers
        # eagerly, but inductor generates its own random numbers for it, unlike for normal_
        eps = torch.empty(self.draw_shape(batch_shape), dtype=self.loc.dtype, device=self.loc.device).normal_()
        value = self.loc + eps * self.scale
        return value, _reduce(-0.5 * eps * eps - self.scale.log() - LOG_SQRT_2PI, self.n_event)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        if self._standard:  # the same numbers: -(v - 0)^2 / (2 * 1) - log 1 is -0.5 * v^2, exactly; v^2 is
            # one use of v (v * v would be two, and summing their gradients with v's other uses rounds differently)
            return _reduce(-0.5 * value ** 2 - LOG_SQRT_2PI, self.n_event)
        if self._two_var is None:
            two_var, log_scale = 2 * self.scale ** 2, self.scale.log()
        else:
            two_var, log_scale = self._two_var, self._log_scale
        return _reduce(-((value - self.loc) ** 2) / two_var - log_scale - LOG_SQRT_2PI, self.n_event)


@plain("Bernoulli", ("logits",))
class PlainBernoulli(_Plain):
    def __init__(self, n_event: int, logits: torch.Tensor):
        self.n_event, self.logits = n_event, logits

    def _params(self):
        return (self.logits,)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        logits = self.logits
        if value.shape != logits.shape:  # the loss takes equal shapes
            shape = broadcast_shapes(value.shape, logits.shape)
            logits, value = logits.expand(shape), value.expand(shape)
        return _reduce(-F.binary_cross_entropy_with_logits(logits, value, reduction="none"), self.n_event)


@plain("Categorical", ("logits",))
class PlainCategorical(_Plain):
    def __init__(self, n_event: int, logits: torch.Tensor):
        self.n_event, self.log_pmf = n_event, torch.log_softmax(logits, -1)
        self._uniform = None  # literal logits (one value, so every class alike): log_pmf[..., 0]

    _tail = 1

    @classmethod
    def of_literals(cls, n_event, literals, **params):
        out = cls(n_event, **params)
        out._uniform = out.log_pmf[..., 0]  # a literal is one number for every class: log_softmax is -log K
        return out

    def _params(self):
        return (self.log_pmf,)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        """Class indices ``value`` (broadcastable to the batch and event shape) picked from log_softmax(logits)."""
        lp = self.log_pmf
        if self._uniform is not None:  # every class has the same log-probability: nothing to pick
            return _reduce(self._uniform.expand(broadcast_shapes(value.shape, lp.shape[:-1])), self.n_event)
        index = value if value.dtype == torch.long else value.long()
        if index.shape != lp.shape[:-1]:
            shape = broadcast_shapes(index.shape, lp.shape[:-1])
            lp, index = lp.expand(shape + lp.shape[-1:]), index.expand(shape)
        return _reduce(lp.gather(-1, index.unsqueeze(-1)).squeeze(-1), self.n_event)

    def log_prob_support(self, dim: int, lead: int) -> torch.Tensor | None:
        """The log-probability of every class at once, laid out as an enumerated variable's values
        are (:func:`graphvae.compile.estimators._enumerate`): the K classes along lead dim ``dim``
        of ``lead`` lead dims, then the batch; the same numbers as :meth:`log_prob` of those
        values, by moving log_pmf's class dim there (nothing picked out or scattered back; the result is
        made contiguous, so the sums over it run in the order they did over log_prob's).
        None where that does not apply (a value of several indices, or log_pmf already varying
        over that lead dim)."""
        lp = self.log_pmf
        rank = lead + 2  # lead dims, batch, classes
        if self.n_event or lp.dim() > rank:
            return None
        if lp.dim() < rank:
            lp = lp.reshape((1,) * (rank - lp.dim()) + tuple(lp.shape))
        if lp.shape[dim] != 1:
            return None
        return lp.transpose(dim, -1).squeeze(-1).contiguous()
