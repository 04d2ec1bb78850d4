"""The hand-written M2 of ``handwritten_m2.py`` again, written as a Pyro 1.9 model and guide.

It is the Pyro contender of ``bench_step.py --peers``.  The networks are ``handwritten_m2._mlp``
of the very sizes ``handwritten_m2.M2`` gives them, under the same attribute names, so
``PyroM2.load_state_dict(m2.state_dict())`` copies a hand-written M2's weights:

    classifier q(y|x)     x -> hidden -> y logits
    encoder    q(z|x,y)   [x, onehot(y)] -> hidden -> (z loc, z log-scale)
    decoder    p(x|y,z)   [onehot(y), z] -> hidden -> x Bernoulli logits
    p(z) = N(0, I),  p(y) uniform.

Model and guide each have a ``pyro.plate`` over the labelled rows and one over the unlabelled
rows.  In a labelled row y is observed in the model (log p(y) counts) and the model adds
``pyro.factor(alpha_weight * log q(y|x))``, the classifier term; in an unlabelled row the guide
draws y from q(y|x) with ``infer={"enumerate": "parallel"}``, so ``TraceEnum_ELBO`` sums over the
classes exactly (q(z|x,y) and p(x|y,z) then run on a (classes, rows, ...) batch).  The loss is the
hand-written one:

    -( sum_labelled [ELBO(x, y) + w log q(y|x)]  +  sum_unlabelled ELBO(x) ) / (rows in the batch)

with one reparameterised z per (x, y).

A step is ``TraceEnum_ELBO(max_plate_nesting=1).differentiable_loss(model, guide, ...)``, its
``backward()`` and one ``torch.optim.Adam`` step on ``PyroM2.parameters()``.  We take
``differentiable_loss`` with a plain torch optimiser rather than ``SVI``: it is Pyro's documented
way to use a PyTorch optimiser, it returns the loss as a tensor (so the step is the same
zero_grad / backward / step as the other contenders') and it skips SVI's param-store round trip
(``SVI.step`` collects the parameters from the trace, wraps them per parameter in ``pyro.optim``
and converts the loss to a float each step).  For the same reason the networks are plain
``nn.Module`` attributes, not registered with ``pyro.module``: nothing here reads the param store,
and registering would add a param-store look-up per parameter on every call of model and guide.
Pyro's validation (and torch.distributions' argument checks) is off inside :meth:`PyroM2.loss`
(``validate = False``), as the compiled model builds its distributions with
``validate_args=False``; set ``validate = True`` to have Pyro check shapes and supports.
"""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import torch
import torch.nn.functional as F
from handwritten_m2 import M2, _mlp  # benchmarks/ is on sys.path when the bench or the tests import this
from pyro.infer import TraceEnum_ELBO
from torch import nn


def _run(net: nn.Module, t: torch.Tensor) -> torch.Tensor:
    """``net`` on the last dim of ``t`` with any leading dims flattened into rows (batch norm takes 2-D)."""
    if t.dim() == 2:
        return net(t)
    return net(t.reshape(-1, t.shape[-1])).reshape(*t.shape[:-1], -1)


def _cat_last(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Concatenate on the last dim after broadcasting the leading dims (an enumerated y is (K, 1, K))."""
    lead = torch.broadcast_shapes(a.shape[:-1], b.shape[:-1])
    return torch.cat([a.expand(*lead, a.shape[-1]), b.expand(*lead, b.shape[-1])], -1)


class PyroM2(nn.Module):
    """M2 as a Pyro model and guide; :meth:`loss` has the signature and value of ``M2.loss``."""

    def __init__(self, x_dim=784, y_dim=10, z_dim=50, hidden=(500,), batchnorm=False):
        super().__init__()
        hidden = [hidden] if isinstance(hidden, int) else list(hidden)
        self.x_dim, self.y_dim, self.z_dim = x_dim, y_dim, z_dim
        self.classifier = _mlp([x_dim, *hidden, y_dim], batchnorm)
        self.encoder = _mlp([x_dim + y_dim, *hidden, 2 * z_dim], batchnorm)
        self.decoder = _mlp([y_dim + z_dim, *hidden, x_dim], batchnorm)
        self.elbo = TraceEnum_ELBO(max_plate_nesting=1)
        self.validate = False

    @classmethod
    def like(cls, m2: M2) -> "PyroM2":
        """A Pyro M2 with the sizes of the hand-written ``m2`` and a copy of its weights."""
        linears = [m for m in m2.classifier if isinstance(m, nn.Linear)]
        batchnorm = any(isinstance(m, nn.BatchNorm1d) for m in m2.classifier)
        out = cls(x_dim=linears[0].in_features, y_dim=m2.y_dim, z_dim=m2.z_dim,
                  hidden=[m.out_features for m in linears[:-1]], batchnorm=batchnorm)
        out.load_state_dict(m2.state_dict())
        first = next(m2.parameters(), None)
        return out.to(first.device) if first is not None else out

    # -- model and guide: labelled rows (xl, yl), unlabelled rows xu; either may be None ----------
    def _prior_y(self, like: torch.Tensor, n: int):
        return dist.OneHotCategorical(logits=like.new_zeros(n, self.y_dim))

    def _prior_z(self, like: torch.Tensor, n: int):
        return dist.Normal(like.new_zeros(()), like.new_ones(())).expand([n, self.z_dim]).to_event(1)

    def _q_z(self, x: torch.Tensor, y_onehot: torch.Tensor):
        loc, log_scale = _run(self.encoder, _cat_last(x, y_onehot)).chunk(2, -1)
        return dist.Normal(loc, log_scale.exp()).to_event(1)

    def model(self, xl, yl, xu, weight):
        if xl is not None:
            n = xl.shape[0]
            y1 = F.one_hot(yl, self.y_dim).to(xl.dtype)
            with pyro.plate("labelled", n):
                z = pyro.sample("z_labelled", self._prior_z(xl, n))
                pyro.sample("y_labelled", self._prior_y(xl, n), obs=y1)
                pyro.sample("x_labelled", dist.Bernoulli(logits=self.decoder(torch.cat([y1, z], -1))).to_event(1),
                            obs=xl)
                log_qy = F.log_softmax(self.classifier(xl), -1).gather(1, yl[:, None]).squeeze(1)
                pyro.factor("classifier", weight * log_qy)
        if xu is not None:
            n = xu.shape[0]
            with pyro.plate("unlabelled", n):
                y = pyro.sample("y_unlabelled", self._prior_y(xu, n))
                z = pyro.sample("z_unlabelled", self._prior_z(xu, n))
                logits = _run(self.decoder, _cat_last(y, z))
                pyro.sample("x_unlabelled", dist.Bernoulli(logits=logits).to_event(1), obs=xu)

    def guide(self, xl, yl, xu, weight):
        if xl is not None:
            with pyro.plate("labelled", xl.shape[0]):
                pyro.sample("z_labelled", self._q_z(xl, F.one_hot(yl, self.y_dim).to(xl.dtype)))
        if xu is not None:
            with pyro.plate("unlabelled", xu.shape[0]):
                y = pyro.sample("y_unlabelled", dist.OneHotCategorical(logits=self.classifier(xu)),
                                infer={"enumerate": "parallel"})
                pyro.sample("z_unlabelled", self._q_z(xu, y))

    # -- the objective ------------------------------------------------------------------------------
    def loss(self, x, y, alpha):
        """Mean over the batch of the negative objective; y = -1 marks unlabelled rows (as ``M2.loss``)."""
        labelled = y >= 0
        has_l, has_u = bool(labelled.any()), bool((~labelled).any())
        xl, yl = (x[labelled], y[labelled]) if has_l else (None, None)
        xu = x[~labelled] if has_u else None
        with pyro.validation_enabled(self.validate):
            return self.elbo.differentiable_loss(self.model, self.guide, xl, yl, xu, alpha) / x.shape[0]

    @torch.no_grad()
    def predict(self, x):
        return self.classifier(x).argmax(-1)


def pyro_like(spec) -> PyroM2:
    """The Pyro M2 with the sizes of an M2-shaped spec (those ``handwritten_m2.m2_like`` reads)."""
    from handwritten_m2 import m2_like

    return PyroM2.like(m2_like(spec))
