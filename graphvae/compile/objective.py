r"""The semi-supervised objective of Siddharth et al. (2017), computed from a trace of q and p.

Reference: N. Siddharth, B. Paige, J.-W. van de Meent, A. Desmaison, N. D. Goodman,
P. Kohli, F. Wood, P. H. S. Torr, "Learning Disentangled Representations with
Semi-Supervised Deep Generative Models", NIPS 2017 (eq. 4 and section 3); the
alpha-weighted classifier term follows Kingma, Rezende, Mohamed, Welling,
"Semi-Supervised Learning with Deep Generative Models", NIPS 2014 (eq. 9).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from graphvae.spec.ir import Spec
from graphvae.spec.settings import ObjectiveConfig


@dataclass
class Trace:
    """Every node of one forward pass over a group of examples sharing a labelled pattern.

    Tensors have the layout ``(*lead, B, ...)`` with ``lead = (N_1, ..., N_E, S)``:
    one dim per enumerated variable (size N_i in its own dim, 1 elsewhere) and the
    sample dim S, broadcastable: leading dims of size 1 may be left out, so a value that
    varies over neither (the data, a label, a node computed from them, any draw when S = 1
    and nothing is enumerated) is ``(B, ...)`` and its networks multiply plain matrices.
    ``logq``/``logp`` hold one log-density per variable, reduced over its event dims to
    ``(*lead, B)`` (broadcastable in the same way)."""

    n_enum: int
    batch_size: int
    values: dict[str, torch.Tensor] = field(default_factory=dict)
    logq: dict[str, torch.Tensor] = field(default_factory=dict)
    logp: dict[str, torch.Tensor] = field(default_factory=dict)
    labelled: frozenset[str] = frozenset()
    enumerated: list[str] = field(default_factory=list)
    reinforced: list[str] = field(default_factory=list)
    relaxed: dict[str, tuple[torch.Tensor, float]] = field(default_factory=dict)  # var -> (log-space sample, temperature)
    q_dists: dict[str, object] = field(default_factory=dict)  # q's distribution of each stochastic node
    dtype: torch.dtype = torch.float32  # the model's, for values made from scratch (enumerated supports)
    device: torch.device | None = None

    @property
    def lead(self) -> int:
        return self.n_enum + 1

    def checked(self, t: torch.Tensor, name: str) -> torch.Tensor:
        """``t``, a log-density of node ``name``, after asserting its layout ``(*lead, B)`` (broadcastable)."""
        if not 1 <= t.dim() <= self.lead + 1 or t.shape[-1] not in (1, self.batch_size):
            raise AssertionError(f"log-density of '{name}' has shape {tuple(t.shape)}; expected "
                                 f"{self.lead} lead dims and the batch ({self.batch_size})")
        return t


@dataclass
class Estimate:
    """Per-example results of :meth:`SemiSupervisedELBO.estimate`, each of shape (B,), and the
    group's sums of the logged terms."""

    objective: torch.Tensor  # the value to maximise
    surrogate: torch.Tensor  # same value; its gradient is the estimator's (score-function terms added)
    elbo: torch.Tensor  # bound on log p(x) (unlabelled) or log p(x, y) (labelled), beta = 1
    # (len(term_names),) without grad: each logged term summed over the group's examples, in
    # SemiSupervisedELBO.term_names' order, 0 for a supervised variable the group has no label of;
    # None unless asked for (estimate(..., parts=True))
    sums: torch.Tensor | None = None


def broadcast_shapes(*shapes) -> torch.Size:
    """``torch.broadcast_shapes`` on plain shapes, as shape arithmetic in Python (torch's goes
    through its reference implementation, ~60 µs a call: a noticeable part of a small model's step)."""
    first = shapes[0]
    if all(s == first for s in shapes):  # the common case in a step: nothing to broadcast
        return torch.Size(first)
    if torch.compiler.is_compiling():  # sizes may be symbolic (unhashable): worked out, not looked up
        return _broadcast(shapes)
    key = shapes  # torch.Size is a tuple: hashed and compared as one
    try:
        out = _BROADCASTS.get(key)
    except TypeError:  # a shape given as a list: nothing to look up
        return _broadcast(shapes)
    if out is None:
        if len(_BROADCASTS) > 4096:  # a run's steps ask for a handful of combinations; bound it anyway
            _BROADCASTS.clear()
        out = _BROADCASTS[key] = _broadcast(shapes)
    return out


_BROADCASTS: dict[tuple, torch.Size] = {}  # the shapes' broadcast shape, by the shapes (eager steps repeat them)


def _broadcast(shapes) -> torch.Size:
    rank = max(len(s) for s in shapes)
    out = [1] * rank
    for s in shapes:
        for i, n in enumerate(s, rank - len(s)):
            if n != 1:
                if out[i] != 1 and out[i] != n:
                    raise RuntimeError(f"shapes {[tuple(t) for t in shapes]} do not broadcast")
                out[i] = n
    return torch.Size(out)


def slot_mask(count: torch.Tensor, slot: int, dtype: torch.dtype) -> torch.Tensor:
    """1 where slot ``slot`` of a plate is present (slot < the count), else 0, laid out as the
    count's value without its event dim: class indices compare; a relaxed one-hot count gives the
    probability that it exceeds ``slot`` (the sum of its entries past ``slot``)."""
    if count.is_floating_point():
        return count[..., slot + 1:].sum(-1).to(dtype)
    return (count > slot).to(dtype)


def _logmeanexp_count(total: torch.Tensor, samples: int) -> torch.Tensor:
    return total - math.log(samples) if samples != 1 else total


class SemiSupervisedELBO:
    r"""The objective of Siddharth et al. (2017), for any q and p a spec describes.

    Write :math:`x` for the observed variables, :math:`y` for the supervised ones that
    are labelled in an example, and :math:`z` for every other latent or supervised
    variable.

    **Unlabelled examples** maximise the ELBO

    .. math:: \mathcal U(x) = \mathbb E_{q(z|x)}\big[\log p(x,z) - \log q(z|x)\big].

    A continuous :math:`z` is reparameterised (``rsample``); a discrete one uses its
    estimator: ``enumerate`` sums exactly over its values (one tensor dim per
    enumerated variable, weighted by :math:`q`); ``relax`` draws a Concrete sample at
    the given temperature and scores it with the relaxed densities under q and p;
    ``reinforce`` adds the score-function term :math:`(f - b)\nabla\log q(z)` with a
    leave-one-out baseline :math:`b` over the S samples (over the batch when S = 1),
    through a surrogate whose value is the objective itself.

    **Labelled examples** maximise (Siddharth et al. 2017, eq. 4)

    .. math:: \mathcal L(x,y) = \mathbb E_{q(z|x,y)}\Big[\log\frac{p(x,y,z)}{q(z,y|x)}\Big]
              + (1+\alpha)\log q(y|x)
              = \mathrm{ELBO}(x,y) + \alpha\log q(y|x).

    Neither :math:`q(z|x,y)` nor :math:`q(y|x)` has a closed form when y comes after
    z in q, so with :math:`z_s \sim q(z|x)`, :math:`s = 1..S` (y clamped to its label
    where a later node depends on it) and weights :math:`w_s = q(y|z_s, x)`:

    .. math:: \log q(y|x) \approx \log\tfrac1S\textstyle\sum_s w_s \quad\text{(a log-mean-exp)},\qquad
              \mathbb E_{q(z|x,y)}[f] \approx \textstyle\sum_s \bar w_s f(z_s),\quad
              \bar w_s = w_s / \sum_{s'} w_{s'},

    with :math:`f(z_s) = \log p(x,y,z_s) - \log q(z_s|x) - \log w_s`.  Enumerated
    variables enter the weights with their probabilities (the sums run over
    enumerated values and samples).  When y has no latent ancestor in q (M2, where
    y depends on x only) every :math:`w_s` equals :math:`q(y|x)`, the estimate is
    exact and :math:`\mathcal L` reduces to Kingma et al.'s :math:`-\mathcal L(x,y) +
    \alpha\log q(y|x)`.  Gradients flow through the samples and the weights.

    **KL weights.** ``beta v = b`` multiplies :math:`\log q(v|\cdot) - \log p(v|\cdot)`
    of latent v in :math:`f` (beta-VAE); the reported ``elbo`` always uses 1.

    **Scaling of alpha.**  The classifier term of a labelled example is :math:`w\,\alpha\log q(y|x)`
    beside its ELBO, and the loss is the negated objective averaged over the batch.
    ``alpha_scaling = dataset`` (the default) sets :math:`w = N/N_\ell` for a training set of
    :math:`N` examples of which :math:`N_\ell` are labelled: Kingma et al.'s and Maaløe et
    al.'s weighting (their released code), 50 for 100 labels of MNIST's 50,000 with
    alpha = 0.1.  The trainer tells the model N and N_l (:meth:`set_data_size`); a model
    that was not told uses the batch's own ratio instead.  ``per_example`` sets w = 1, as
    probtorch's ``elbo`` does; ``labelled_fraction`` sets :math:`w = B/B_\ell` for a batch of
    B examples of which :math:`B_\ell` are labelled.  ``docs/training.md`` has the figures.
        """

    def __init__(self, spec: Spec, config: ObjectiveConfig):
        self.config = config
        self.alpha = float(config.alpha)
        self.observed = tuple(v.name for v in spec.observed)
        self.supervised = tuple(v.name for v in spec.supervised)
        stochastic_q = {f.name for f in spec.encoder if not f.deterministic}
        self.hidden = tuple(v.name for v in spec.variables if v.name in stochastic_q)  # non-observed
        self.betas = {v: spec.objective.beta(v) for v in self.hidden if spec.variable(v).role == "latent"}
        self.data_size: tuple[int, int] | None = None  # (N, N_labelled) of the training set, for alpha_scaling
        self.masks: dict[str, tuple[str, int]] = {}  # plate slot variable -> (count variable, slot)
        # the logged terms summed over examples, in this order (Estimate.sums)
        self.term_names = ("elbo", "reconstruction", *(f"kl/{v}" for v in self.hidden),
                           *(f"{k}/{y}" for y in self.supervised for k in ("classifier", "ess")))
        self._positions: dict[tuple, tuple[list[int] | None, int]] = {}  # labelled -> _order's answer

    def _mask(self, trace: Trace, v: str, t):
        """``t`` (a log-density term of ``v``) times 0 where v's plate slot is absent."""
        if v not in self.masks:
            return t
        count, slot = self.masks[v]
        return t * slot_mask(trace.values[count], slot, trace.dtype)

    def set_data_size(self, n_examples: int, n_labelled: int) -> None:
        """Tell the objective the training set's size, for ``alpha_scaling = dataset``."""
        self.data_size = (int(n_examples), int(n_labelled))

    def alpha_for(self, n_batch: int, n_labelled: int) -> float:
        """The weight of log q(y|x) per labelled example in a batch of ``n_batch`` with ``n_labelled``."""
        scaling = self.config.alpha_scaling
        if scaling == "dataset" and self.data_size is not None and self.data_size[1] > 0:
            return self.alpha * self.data_size[0] / self.data_size[1]
        if scaling in ("dataset", "labelled_fraction") and n_labelled > 0:
            return self.alpha * n_batch / n_labelled
        return self.alpha

    def alpha_text(self) -> str:
        """How the weight resolves, e.g. ``alpha * N / N_labelled = 0.1 * 1293 / 100 = 1.293 per labelled example``."""
        scaling = self.config.alpha_scaling
        if scaling == "per_example":
            return f"alpha = {self.alpha:g} per labelled example"
        if scaling == "dataset" and self.data_size is not None and self.data_size[1] > 0:
            n, n_l = self.data_size
            return (f"alpha * N / N_labelled = {self.alpha:g} * {n} / {n_l} = {self.alpha * n / n_l:.4g} per labelled "
                    "example")
        which = "of the training set (until the model is told it: that of each batch)" if scaling == "dataset" \
            else "of each batch"
        return f"alpha * N / N_labelled {which}, alpha = {self.alpha:g}"

    # -- helpers ----------------------------------------------------------------------
    @staticmethod
    def _full_shape(trace: Trace) -> torch.Size:
        shapes = [t.shape for t in trace.logq.values()] + [t.shape for t in trace.logp.values()]
        full = broadcast_shapes(*shapes, (1,) * (trace.lead + 1))  # as long as the longest of them
        assert len(full) == trace.lead + 1, f"a log-density of rank {len(full)}, expected lead {trace.lead} + batch"
        assert full[-1] == trace.batch_size, f"batch dim {full[-1]} != {trace.batch_size}"
        return full

    @staticmethod
    def _flat(t: torch.Tensor | float, full: torch.Size, like: torch.Tensor) -> torch.Tensor:
        if not torch.is_tensor(t):
            t = like.new_full((), float(t))
        return t.expand(full).reshape(-1, full[-1])

    @staticmethod
    def _sum(table: dict[str, torch.Tensor], names) -> torch.Tensor | float:
        total: torch.Tensor | float = 0.0
        for i, n in enumerate(names):
            total = table[n] if i == 0 else total + table[n]
        return total

    # -- the estimator ----------------------------------------------------------------
    def estimate(self, trace: Trace, alpha: float, parts: bool = True) -> Estimate:
        """Per-example objective, surrogate and ELBO of one group (see the class docstring);
        ``parts`` also gives the group's sums of the logged terms (``Estimate.sums``).

        The weights are taken the cheapest exact way: with no labelled variable they are the
        enumerated values' q (which sums to one per sample) over S, with no normalising; with one
        particle (nothing enumerated, S = 1) they are 1; otherwise they are normalised with a
        log-sum-exp over the particles."""
        full = self._full_shape(trace)
        like = next(iter(trace.logp.values()))
        dims = tuple(range(trace.lead))  # the particle dims (enumerated values, samples), summed over
        n_batch, n_samples = full[-1], full[trace.n_enum]
        one_particle = full[:-1].numel() == 1
        kl = {v: trace.logq[v] - trace.logp[v] for v in self.hidden}
        if self.masks:  # a plate slot past the count takes no part: its log p - log q is multiplied by 0
            kl = {v: self._mask(trace, v, t) for v, t in kl.items()}
        log_obs = self._sum(trace.logp, self.observed)
        f_plain = log_obs - self._sum(kl, self.hidden)
        if all(b == 1.0 for b in self.betas.values()):
            f_beta = f_plain
        else:
            f_beta = log_obs - self._sum({v: self.betas.get(v, 1.0) * kl[v] for v in kl}, self.hidden)
        lw_enum = self._sum(trace.logq, trace.enumerated)
        lw_labelled = self._sum({y: self._mask(trace, y, trace.logq[y]) for y in trace.labelled}, sorted(trace.labelled))
        lw = lw_labelled if not trace.enumerated else lw_enum + lw_labelled

        def tensor(t) -> torch.Tensor:  # a log-density, or a constant where no node contributes
            return t if torch.is_tensor(t) else like.new_full((), float(t))

        if one_particle:
            wbar: torch.Tensor | float = 1.0

            def expect(t) -> torch.Tensor:  # the one particle's value, as (B,)
                t = tensor(t)
                if t.shape == (n_batch,):
                    return t
                return (t if t.numel() == n_batch else t.expand(full)).reshape(n_batch)
            log_norm = expect(lw)  # log of the one weight
        else:
            if not trace.labelled:  # q of the enumerated values sums to one in each of the S samples
                if not torch.is_tensor(lw_enum):
                    wbar = 1.0 / n_samples
                else:
                    wbar = torch.exp(lw_enum) if n_samples == 1 else torch.exp(lw_enum) / n_samples
                log_norm = None
            else:
                lw_full = tensor(lw).expand(full)
                log_norm = torch.logsumexp(lw_full.reshape(-1, n_batch), 0)
                wbar = torch.exp(lw_full - log_norm)

            def expect(t) -> torch.Tensor:  # the weighted sum over the particles, as (B,)
                weighted = wbar * tensor(t)
                return (weighted if weighted.shape == full else torch.broadcast_to(weighted, full)).sum(dims)
        objective = expect(f_beta)
        elbo = objective if f_beta is f_plain else expect(f_plain)
        if trace.labelled:
            log_qy = _logmeanexp_count(log_norm, n_samples)
            objective = objective + (1.0 + alpha) * log_qy
            elbo = elbo + log_qy
        sums = self._sums(trace, elbo, log_obs, kl, lw_enum, wbar, full, one_particle, like) if parts else None
        surrogate = objective
        if trace.reinforced:
            surrogate = objective + self._score_terms(trace, f_beta, wbar, full, dims)
        assert objective.shape == (n_batch,)
        assert sums is None or sums.shape == (len(self.term_names),), f"logged sums of shape {tuple(sums.shape)}"
        return Estimate(objective, surrogate, elbo, sums)

    @torch.no_grad()
    def _sums(self, trace, elbo, log_obs, kl, lw_enum, wbar, full, one_particle, like) -> torch.Tensor:
        """The group's sums over its examples of the logged terms (see :class:`Estimate`): the ELBO,
        ``reconstruction`` and ``kl/<v>`` weighted by the particles' weights, and for each
        labelled y ``classifier/<y>`` (log q(y|x)) and ``ess/<y>`` (the effective sample size of
        its weights).  Values only, so the training step records no graph for them.  The terms
        are stacked and reduced at once: with one particle every term is per example already
        (the ESS is 1 each); otherwise the weighted ones are, over the particles and examples."""
        n_samples, n_batch = full[trace.n_enum], full[-1]
        weighted = [log_obs if torch.is_tensor(log_obs) else like.new_full((), float(log_obs))]
        weighted += [kl[v] for v in self.hidden]
        labelled = tuple(sorted(trace.labelled))
        if one_particle:  # elbo, reconstruction, kl/*, classifier/* per example, then the ESS of each y
            rows = [elbo, *weighted, *(trace.logq[y] for y in labelled)]
            if any(t.shape != (n_batch,) for t in rows):
                rows = [t.expand(full).reshape(n_batch) for t in rows]
            pieces = [torch.stack(rows).sum(1)]
            if labelled:
                pieces.append(like.new_full((len(labelled),), float(n_batch)))
        else:  # elbo, then the weighted terms over the particles, then classifier/* and ess/* of each y
            if any(t.shape != full for t in weighted):
                weighted = torch.broadcast_tensors(*weighted, like.new_zeros(()).expand(full))[:-1]
            stacked = torch.stack(weighted) * wbar  # (T, *particles, B)
            pieces = [elbo.sum().reshape(1), stacked.sum(tuple(range(1, stacked.dim())))]
            classifier, ess = [], []
            for y in labelled:
                lw_y = (lw_enum + trace.logq[y]).expand(full)
                per_sample = torch.logsumexp(lw_y.flatten(0, trace.n_enum - 1), 0) if trace.n_enum else lw_y
                w = torch.softmax(per_sample, 0)
                classifier.append(_logmeanexp_count(torch.logsumexp(per_sample, 0), n_samples).sum())
                ess.append((1.0 / (w * w).sum(0)).sum())
            if labelled:
                pieces.append(torch.stack(classifier + ess))
        if len(labelled) == len(self.supervised) <= 1:  # already in term_names' order
            return torch.cat(pieces)
        order, missing = self._order(labelled)  # the rest (an unlabelled y's) are 0
        if missing:
            pieces.append(like.new_zeros(missing))
        out = torch.cat(pieces)
        return out if order is None else out[order]

    def _order(self, labelled: tuple[str, ...]) -> tuple[list[int] | None, int]:
        """How :meth:`_sums` puts its values into :attr:`term_names`' order for a group labelled in
        ``labelled``: the positions, in the names' order, of the values it stacks (elbo,
        reconstruction, kl/*, the labelled ys' classifier/* then their ess/*, then a 0 for each
        term of an unlabelled y; None where that is the names' order), and how many zeros."""
        found = self._positions.get(labelled)
        if found is None:
            head = 2 + len(self.hidden)
            stacked = [*self.term_names[:head], *(f"classifier/{y}" for y in labelled), *(f"ess/{y}" for y in labelled)]
            absent = [n for n in self.term_names[head:] if n not in stacked]
            where = {n: i for i, n in enumerate(stacked + absent)}
            order = [where[n] for n in self.term_names]
            found = self._positions[labelled] = (None if order == sorted(order) else order, len(absent))
        return found

    def _score_terms(self, trace, f_beta, wbar, full, dims) -> torch.Tensor:
        """Score-function terms with value zero: sum wbar (f - b) log q(r) - (the same, detached)."""
        f = f_beta.detach().expand(full)
        s_dim = trace.n_enum
        n_samples, n_batch = full[s_dim], full[-1]
        if n_samples > 1:  # leave-one-out over the samples
            baseline = (f.sum(s_dim, keepdim=True) - f) / (n_samples - 1)
        elif n_batch > 1:  # leave-one-out over the batch (independent of this example's draw)
            baseline = (f.sum(-1, keepdim=True) - f) / (n_batch - 1)
        else:
            baseline = torch.zeros_like(f)
        score = self._sum(trace.logq, trace.reinforced)
        w = wbar.detach() if torch.is_tensor(wbar) else wbar
        term = torch.broadcast_to(w * (f - baseline) * score, full).sum(dims)
        return term - term.detach()

    def log_weights(self, trace: Trace) -> torch.Tensor:
        """IWAE log-weights ``(P, B)``: log p of everything minus log q of what was sampled
        (enumerated variables' q cancels against their weight; labelled ones are given)."""
        full = self._full_shape(trace)
        like = next(iter(trace.logp.values()))
        sampled = [v for v in self.hidden if v not in trace.labelled and v not in trace.enumerated]
        if self.masks:  # an absent slot's sampled or labelled terms count 0; an enumerated one's p sums to 1
            logp = {v: t if v in trace.enumerated else self._mask(trace, v, t) for v, t in trace.logp.items()}
            logq = {v: self._mask(trace, v, trace.logq[v]) for v in sampled}
            lw = self._sum(logp, list(logp)) - self._sum(logq, sampled)
        else:
            lw = self._sum(trace.logp, list(trace.logp)) - self._sum(trace.logq, sampled)
        return self._flat(lw, full, like), full[trace.n_enum]

    def log_marginal(self, trace: Trace) -> torch.Tensor:
        """Per-example IWAE estimate: log-mean-exp over samples (sum over enumerated values)."""
        lw, n_samples = self.log_weights(trace)
        out = _logmeanexp_count(torch.logsumexp(lw, 0), n_samples)
        assert out.shape == (trace.batch_size,)
        return out
