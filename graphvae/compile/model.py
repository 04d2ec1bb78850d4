"""The compiled model: an ``nn.Module`` that runs q then p over a batch and scores it.

:func:`graphvae.compile.compiler.compile_spec` builds a :class:`CompiledModel`.  Its
``encoder`` and ``decoder`` are ``nn.ModuleDict``\\ s of per-node networks (keys are
the node names); nodes run in the topological order of each graph.  Tensors have
the layout ``(*lead, B, *value_shape)`` where ``lead`` is one dim per enumerated
variable followed by the sample dim S (see :class:`graphvae.compile.objective.Trace`).

A batch mixes labelled and unlabelled examples.  :meth:`CompiledModel.loss`
groups the examples by which supervised variables they label (gather, run, sum;
:mod:`graphvae.compile.groups`), so labelled M2 examples are never enumerated over y.
"""

from __future__ import annotations

import torch
from torch import nn

from graphvae.compile import distributions as dists
from graphvae.compile.batch_check import CheckedBatch, check_batch
from graphvae.compile.estimators import QNode, draw, mean_or_mode
from graphvae.compile.groups import check_layout, group_size, group_values, layout_groups, pattern_groups
from graphvae.compile.attention import Paste
from graphvae.compile.objective import SemiSupervisedELBO, Trace, slot_mask
from graphvae.errors import UserError
from graphvae.spec.estimators import ESTIMATORS
from graphvae.spec.ir import Spec
from graphvae.spec.settings import ObjectiveConfig

PREDICT_SAMPLES = 32  # least number of latent draws predict() averages q(y|z,x) over, when y follows latents in q

class CompiledModel(nn.Module):
    """A spec compiled to networks, with the semi-supervised objective as :meth:`loss`.

    ``nodes`` holds every stochastic q variable with its estimator (see
    :mod:`graphvae.spec.estimators`): ``enumerate | relax | reinforce`` for a discrete one,
    ``rsample | score`` for a continuous one (reparameterised or not)."""

    def __init__(self, spec: Spec, config: ObjectiveConfig, encoder: nn.ModuleDict, decoder: nn.ModuleDict,
                 q_order: list[str], p_order: list[str], nodes: dict[str, QNode]):
        super().__init__()
        self.spec = spec
        self.config = config
        self.encoder = encoder
        self.decoder = decoder
        # each block's factor modules by name as a plain dict (the same modules; a step looks each up)
        self._blocks = {"q": dict(encoder.items()), "p": dict(decoder.items())}
        self.q_order = tuple(q_order)
        self.p_order = tuple(p_order)
        self.nodes = dict(nodes)
        self.methods = {name: node.estimator for name, node in self.nodes.items()}  # variable -> estimator
        self.objective = SemiSupervisedELBO(spec, config)
        self.check_inputs = True  # set False to skip batch checks in a tight loop
        self._qf = {f.name: f for f in spec.encoder}
        self._pf = {f.name: f for f in spec.decoder}
        self._vars = spec.var_map
        self._ancestries: dict[str, list[str]] = {}  # q node -> the nodes a trace stopping there runs
        self._plans: dict[tuple, tuple[str, ...]] = {}  # (labelled, mode, stop_at) -> enumerated q nodes
        self._where: tuple[torch.dtype, torch.device] | None = None  # dtype and device, until moved
        self._divisors: dict[tuple, tuple] = {}  # the logged terms' denominators and labelled counts, per batch composition
        self._methods_in: dict[tuple[str, str], str] = {}  # (q node, mode) -> its estimator there
        self._plain_nodes: dict[tuple, bool] = {}  # (q node, mode, labelled) -> in its plain form
        self._layouts: dict[tuple, list] = {}  # a layout's groups, per (layout, supervised names, batch size)
        self._observed = frozenset(v.name for v in spec.observed)
        self._supervised = frozenset(v.name for v in spec.supervised)
        self._absent = {block: {f.name: tuple(sorted(f.absent)) for f in factors if f.absent}
                        for block, factors in (("q", spec.encoder), ("p", spec.decoder))}
        self._zeroed: dict[str, dict] = {"q": {}, "p": {}}

    def set_plates(self, zeroed_q: dict, zeroed_p: dict, masks: dict[str, tuple[str, int]]) -> None:
        """The count masks of plates (the compiler calls this): ``zeroed_*`` say which inputs of q's
        and p's factors read a slot that is absent past its count, ``masks`` which variables' terms
        count only while their slot is present."""
        self._zeroed = {"q": dict(zeroed_q), "p": dict(zeroed_p)}
        self._ancestries.clear()  # the counts that zero inputs are ancestors too
        self.objective.masks = dict(masks)

    # -- plumbing ---------------------------------------------------------------------
    def _probe(self) -> torch.Tensor | None:
        for t in self.parameters():
            return t
        for t in self.buffers():
            return t
        return None

    def _placed(self) -> tuple[torch.dtype, torch.device]:
        if self._where is None:
            t = self._probe()
            self._where = (t.dtype, t.device) if t is not None else (torch.get_default_dtype(), torch.device("cpu"))
        return self._where

    def _apply(self, fn, *args, **kwargs):  # .to(), .double(), .cuda() ...: the dtype and device may change
        self._where = None
        return super()._apply(fn, *args, **kwargs)

    @property
    def dtype(self) -> torch.dtype:
        return self._placed()[0]

    @property
    def device(self) -> torch.device:
        return self._placed()[1]

    def _check(self, batch, require=None) -> CheckedBatch:
        if not self.check_inputs:
            return _unchecked(self.spec, batch)
        return check_batch(self.spec, batch, self.dtype, self.device, require)

    def set_data_size(self, n_examples: int, n_labelled: int) -> "CompiledModel":
        """Tell the model its training set's size: ``alpha_scaling = dataset`` weighs log q(y|x) of a
        labelled example by alpha * N / N_labelled (the trainer calls this)."""
        self.objective.set_data_size(n_examples, n_labelled)
        return self

    def canvases(self) -> list[str]:
        """The observed variables whose p factor is a ``paste`` with a learnt canvas that
        :meth:`start_canvases` can start at the data's mean."""
        observed = {v.name for v in self.spec.variables if v.role == "observed"}
        return [name for name, module in self.decoder.items() if name in observed
                and any(isinstance(net, Paste) and dists.has_mean_map(module.family, key)
                        for key, net in getattr(module, "nets", {}).items())]

    @torch.no_grad()
    def start_canvases(self, means: dict[str, torch.Tensor]) -> "CompiledModel":
        """Start each paste's learnt canvas (see :meth:`canvases`) where its family's mean is
        ``means[variable]``, the training images' per-pixel mean, instead of at 0.  A Bernoulli
        canvas at 0 is grey (p = 0.5) everywhere, and only the canvas reaches the pixels no patch
        covers, so an optimiser moving each of its values by about lr a step takes thousands of
        steps to find the background; the trainer calls this once on a new run."""
        for name in self.canvases():
            module = self.decoder[name]
            for key, net in module.nets.items():
                if isinstance(net, Paste) and name in means:
                    value = dists.parameter_at_mean(module.family, key, means[name].to(net.bias))
                    net.bias.copy_(value.reshape(net.bias.shape))
        return self

    def forward(self, batch, terms: bool = False):
        """Same as :meth:`loss` (so ``torch.compile(model)`` compiles the training step)."""
        return self.loss(batch, terms=terms)

    def _method(self, name: str, mode: str) -> str:
        """The estimator of q node ``name`` when running in ``mode``: its own in training, the one
        evaluation uses in its place for ``iwae`` (exact draws), the mean or mode for ``mean``."""
        own = self.methods[name]
        if mode == "mean":
            return "mean"
        return (ESTIMATORS[own].evaluation or own) if mode == "iwae" else own

    def _walk(self, block: str, order, values: dict[str, torch.Tensor]):
        """Run ``block`` (``"q"`` or ``"p"``) in ``order``: each deterministic node is computed on
        the way; yields ``(name, factor, parent values, module)`` of each stochastic node, whose
        value the caller puts into ``values`` before the walk goes on.  A plate's absent parent
        (``z[k-1]`` of slot 0) is None; a slot past its count enters a network outside the plate as
        zeros."""
        factors = self._qf if block == "q" else self._pf
        modules = self._blocks[block]
        absent, zeroed = self._absent[block], self._zeroed[block]
        det: dict[str, torch.Tensor] = {}
        for name in order:
            factor = factors[name]
            parents = [det[p] if p in det else values[p] for p in factor.parents]
            if name in absent:
                for position, _ in absent[name]:
                    parents.insert(position, None)
            if name in zeroed:
                parents = self._zero_absent(parents, zeroed[name], values)
            if factor.deterministic:
                det[name] = modules[name](parents)
            else:
                yield name, factor, parents, modules[name]

    def _zero_absent(self, parents: list, rows, values: dict[str, torch.Tensor]) -> list:
        parents = list(parents)
        for position, count, slot, classes, ndim in rows:
            if count not in values:  # the count comes later in this block: the slot enters as it is
                continue
            value = parents[position]
            mask = slot_mask(values[count], slot, self.dtype)
            if not value.is_floating_point():  # class indices: zero their one-hot
                value = torch.nn.functional.one_hot(value, classes).to(mask.dtype)
            parents[position] = value * mask.reshape(tuple(mask.shape) + (1,) * ndim)
        return parents

    # -- running q and p --------------------------------------------------------------
    def _trace(self, values: dict[str, torch.Tensor], size: int, labelled: frozenset[str], samples: int,
               mode: str = "train", run_p: bool = True, stop_at: str | None = None) -> Trace:
        order = self.q_order if stop_at is None else self._q_ancestry(stop_at)
        key = (labelled, mode, stop_at)
        enumerated = self._plans.get(key)
        if enumerated is None:  # decided once per labelled pattern and mode
            enumerated = self._plans[key] = tuple(
                n for n in order if not self._qf[n].deterministic and n not in labelled and n != stop_at
                and ESTIMATORS[self._method(n, mode)].enumerates)
        dtype, device = self._placed()
        trace = Trace(len(enumerated), size, labelled=labelled, enumerated=list(enumerated), dtype=dtype,
                      device=device)
        trace.values.update(values)  # (B, ...): the data vary over no lead dim
        for name, _, parents, module in self._walk("q", order, trace.values):
            if name != stop_at and self._plain_q(name, mode, name in labelled):
                self._q_node(trace, name, module.plain(parents), mode, samples)
                continue
            d = module.dist(parents)
            trace.q_dists[name] = d
            if name == stop_at:
                return trace
            self._q_node(trace, name, d, mode, samples)
        if run_p:
            self._p_pass(trace, plain=mode == "train")
        return trace

    def _plain_q(self, name: str, mode: str, labelled: bool) -> bool:
        """Whether the training step takes q node ``name`` in its plain form
        (:mod:`graphvae.compile.densities`): in training, where its family has one and the node
        is labelled (scored), enumerated (scored) or reparameterised (drawn as the plain form
        draws), decided once."""
        key = (name, mode, labelled)
        use = self._plain_nodes.get(key)
        if use is None:
            module = self.encoder[name]
            method = self._method(name, mode)
            use = self._plain_nodes[key] = mode == "train" and module.has_plain and (
                labelled or method == "enumerate" or (method == "rsample" and module.plain_reparameterised))
        return use

    def _q_ancestry(self, name: str) -> list[str]:
        """q's nodes that ``name``'s distribution depends on, and ``name``, in q's order: its
        ancestors through parents and through the counts that zero a slot's inputs.  A trace that
        stops at ``name`` runs these alone: the others (a later slot's digit when predicting an
        earlier one's, say) change neither q(name | x) nor, summed out, its particles' weights."""
        order = self._ancestries.get(name)
        if order is None:
            need, stack = set(), [name]
            while stack:
                n = stack.pop()
                if n in need or n not in self._qf:
                    continue
                need.add(n)
                stack += list(self._qf[n].parents) + [row[1] for row in self._zeroed["q"].get(n, ())]
            order = self._ancestries[name] = [n for n in self.q_order if n in need]
        return order

    def _q_node(self, trace: Trace, name: str, d, mode: str, samples: int) -> None:
        if name in trace.labelled:
            trace.logq[name] = trace.checked(d.log_prob(trace.values[name]), name)
        else:
            method = self._methods_in.get((name, mode))
            if method is None:
                method = self._methods_in[(name, mode)] = self._method(name, mode)
            draw(self.nodes[name], method, d, trace, samples)

    def _p_pass(self, trace: Trace, plain: bool = False) -> None:
        """Score every p node; ``plain``: in its plain form where its family has one (training)."""
        for name, factor, parents, module in self._walk("p", self.p_order, trace.values):
            if plain and module.has_plain and name not in trace.relaxed:
                trace.logp[name] = trace.checked(module.plain(parents).log_prob(trace.values[name]), name)
                continue
            d = module.dist(parents)
            if name in trace.relaxed:  # scored in the log space of its relaxation, as under q
                log_space, temperature = trace.relaxed[name]
                relaxed = dists.build_relaxed(factor.dist.family, d, temperature)
                trace.logp[name] = trace.checked(relaxed.log_prob(log_space), name)
            else:
                trace.logp[name] = trace.checked(d.log_prob(trace.values[name]), name)

    # -- the public API ---------------------------------------------------------------
    def loss(self, batch, terms: bool = False, layout=None):
        """The negated objective averaged over the batch (a scalar to minimise).

        With ``terms=True`` also a dict of detached scalars for logging: ``elbo``,
        ``reconstruction``, ``kl/<v>`` (per example), ``classifier/<y>`` (mean log q(y|x)
        over labelled examples), ``ess/<y>`` (effective sample size of the weights) and
        ``n_labelled/<y>``.

        ``layout`` (optional): the batch's rows as runs ``((labelled names, count), ...)`` in row
        order, as ``graphvae.data.Batch.layout`` gives them.  The groups are then taken from it
        rather than from the labels, so the step never waits for the device; with
        ``check_inputs = False`` too (the trainer's setting: its data was checked once, when
        loaded) nothing in the step reads a tensor's values on the host, and the step compiles
        with ``torch.compile(fullgraph=True)``.  The result is the same as without it."""
        if layout is None:
            cb = self._check(batch)
            groups = pattern_groups(cb)
        elif self.check_inputs:
            cb = self._check(batch)
            groups = layout_groups(batch, layout, self._supervised, self._layouts)
            check_layout(cb, groups)
        else:
            cb = CheckedBatch(dict(batch), {}, next(iter(batch.values())).shape[0])
            groups = layout_groups(batch, layout, self._supervised, self._layouts)
        sizes = [group_size(cb, idx) for _, idx in groups]
        n_any = sum(n for (lab, _), n in zip(groups, sizes) if lab)
        alpha = self.objective.alpha_for(cb.size, n_any)
        total = None
        names = self._term_names()
        sums = None  # the logged terms' sums over the batch, one entry per name (a stacked tensor)
        for (labelled, idx), n in zip(groups, sizes):
            values = group_values(cb, self._observed | labelled, idx)
            n = next(iter(values.values())).shape[0]  # the same count, as the tensors know it (under dynamic shapes)
            trace = self._trace(values, n, labelled, self.config.samples)
            est = self.objective.estimate(trace, alpha, parts=terms)
            total = est.surrogate.sum() if total is None else total + est.surrogate.sum()
            if terms:
                sums = est.sums if sums is None else sums + est.sums
        loss = -total / cb.size
        if not terms:
            return loss
        n_labelled = {y: sum(n for (lab, _), n in zip(groups, sizes) if y in lab) for y in self.objective.supervised}
        return loss, self._terms(cb.size, n_labelled, names, sums)

    def _term_names(self) -> tuple[str, ...]:
        """The logged terms summed over examples, in :meth:`_terms`' order."""
        return self.objective.term_names

    def _terms(self, size: int, n_labelled: dict[str, int], names, sums: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-example means (per labelled example for classifier/ and ess/) of the summed terms,
        and the labelled counts, as 0-dim tensors on the model's device."""
        supervised = self.objective.supervised
        key = (size, tuple(n_labelled[y] for y in supervised), sums.dtype, sums.device)
        made = None if torch.compiler.is_compiling() else self._divisors.get(key)
        if made is None:  # made once per batch composition (under torch.compile: constants of the graph)
            counts = tuple(float(max(n_labelled[k.partition("/")[2]], 1)) if k.startswith(("classifier/", "ess/"))
                           else float(size) for k in names)
            made = (torch.tensor(counts, dtype=sums.dtype, device=sums.device),
                    torch.tensor([float(n_labelled[y]) for y in supervised], dtype=sums.dtype, device=sums.device),
                    (*names, *(f"n_labelled/{y}" for y in supervised)))
            if not torch.compiler.is_compiling():
                self._divisors[key] = made
        divisor, counted, all_names = made
        return dict(zip(all_names, torch.cat([sums / divisor, counted]).unbind()))

    # -- evaluation: each runs under torch.no_grad() and returns tensors without grad ----------
    @torch.no_grad()
    def log_marginal(self, batch, samples: int = 100) -> torch.Tensor:
        """Per-example IWAE estimate (B,) of log p(x), or of log p(x, y) where y is labelled.

        Discrete variables declared ``enumerate`` are summed exactly; ``relax`` and
        ``reinforce`` ones are drawn exactly (no relaxation).  ``samples=1`` gives a
        single-sample ELBO."""
        if samples < 1:
            raise UserError(f"log_marginal needs samples >= 1, got {samples}")
        cb = self._check(batch)
        out = None
        for labelled, idx in pattern_groups(cb):
            n = group_size(cb, idx)
            trace = self._trace(group_values(cb, self._observed | labelled, idx), n, labelled, samples, mode="iwae")
            value = self.objective.log_marginal(trace)
            if idx is None:
                return value
            out = value.new_empty(cb.size) if out is None else out
            out = out.index_copy(0, idx, value)
        return out

    @torch.no_grad()
    def predict(self, batch, var: str, samples: int | None = None) -> torch.Tensor:
        """Predictions of a supervised variable from q(var | x) (given labels are ignored
        for ``var``, used for the others): class indices for a finite discrete variable
        (the mode of the marginal, estimated with ``samples`` draws of the latents
        before it; default the objective's S, at least PREDICT_SAMPLES), the mean for a
        continuous one.  With no sampled latent before ``var`` in q, no draw is made."""
        return self._predict(batch, var, samples, probs=False)

    @torch.no_grad()
    def predict_probs(self, batch, var: str, samples: int | None = None) -> torch.Tensor:
        """Class probabilities ``(B, K)`` of a supervised ``categorical[K]`` variable under q(var | x):
        the particle average :meth:`predict` takes the mode of (so its argmax is ``predict``'s)."""
        v = self._vars.get(var)
        if v is not None and v.role == "supervised" and (v.domain != "categorical" or v.value_shape != ()):
            raise UserError(f"'{var}' is {v.domain}{list(v.shape)}: class probabilities are given for a "
                            "supervised categorical[K] variable only")
        return self._predict(batch, var, samples, probs=True)

    def _predict(self, batch, var: str, samples: int | None, probs: bool) -> torch.Tensor:
        v = self._vars.get(var)
        if v is None or v.role != "supervised":
            choices = ", ".join(s.name for s in self.spec.supervised) or "none"
            raise UserError(f"'{var}' is not a supervised variable of model '{self.spec.name}' (supervised: {choices})")
        cb = self._check(batch)
        samples = samples or max(self.config.samples, PREDICT_SAMPLES)
        hidden_values = {k: t for k, t in cb.values.items() if k != var}
        masks = {k: m for k, m in cb.labelled.items() if k != var}
        cb2 = CheckedBatch(hidden_values, masks, cb.size)
        out = None
        for labelled, idx in pattern_groups(cb2):
            n = group_size(cb2, idx)
            value = self._predict_group(group_values(cb2, self._observed | labelled, idx), n, labelled, var, samples, probs)
            if idx is None:
                return value
            out = value.new_empty((cb.size,) + value.shape[1:]) if out is None else out
            out = out.index_copy(0, idx, value)
        return out

    def _predict_group(self, values, size, labelled, var, samples, probs: bool = False) -> torch.Tensor:
        v = self._vars[var]
        trace = self._trace(values, size, labelled, samples, mode="iwae", run_p=False, stop_at=var)
        d = trace.q_dists[var]
        lw = 0.0  # particle weights: enumerated values by their q probability, samples equally
        for e in trace.enumerated:
            lw = lw + trace.logq[e]
        if v.discrete:  # score every value of var under each particle; mode of the particle average
            sup = dists.support_values(v.domain, v.shape, self.dtype, self.device)
            lp = d.log_prob(sup.reshape((sup.shape[0],) + (1,) * (trace.lead + 1) + tuple(sup.shape[1:]))) + lw
            marginal = torch.logsumexp(lp.flatten(1, trace.lead), 1)  # (N, B)
            if probs:
                return torch.softmax(marginal, 0).transpose(0, 1)  # (B, N): normalised over the values
            return sup[marginal.argmax(0)]
        mean = dists.mean(d)
        lb = (1,) * (trace.lead + 1 - len(d.batch_shape)) + tuple(d.batch_shape)  # d's lead and batch dims, all
        mean = mean.reshape(lb + tuple(mean.shape[len(d.batch_shape):]))
        # the particles: var's q may not read every enumerated variable, whose weights still count
        lead_shape = torch.broadcast_shapes(mean.shape[:trace.lead + 1], lw.shape if torch.is_tensor(lw) else ())
        mean = mean.expand(lead_shape + mean.shape[trace.lead + 1:])
        w = torch.softmax((torch.zeros(lead_shape, dtype=mean.dtype, device=mean.device) + lw).reshape(-1, size), 0)
        flat = mean.reshape((-1, size) + tuple(mean.shape[trace.lead + 1:]))
        return (w.reshape(w.shape + (1,) * (flat.dim() - 2)) * flat).sum(0)

    @torch.no_grad()
    def encode(self, batch) -> dict[str, torch.Tensor]:
        """Posterior means (continuous) or modes (discrete) of every latent and supervised
        variable, ``(B, *value_shape)``, nodes computed in q's order from the previous
        nodes' means; labelled supervised variables keep their labels."""
        cb = self._check(batch)
        out: dict[str, torch.Tensor] = {}
        for labelled, idx in pattern_groups(cb):
            n = group_size(cb, idx)
            trace = self._trace(group_values(cb, self._observed | labelled, idx), n, labelled, 1, mode="mean", run_p=False)
            for v in self.objective.hidden:
                vshape = tuple(self._vars[v].value_shape if self._vars[v].domain == "categorical"
                               else self._vars[v].shape)
                value = trace.values[v].reshape((n,) + vshape)
                if idx is None:
                    out[v] = value
                else:
                    if v not in out:
                        out[v] = value.new_empty((cb.size,) + value.shape[1:])
                    out[v] = out[v].index_copy(0, idx, value)
        return out

    @torch.no_grad()
    def posterior(self, batch) -> dict[str, dict[str, torch.Tensor]]:
        """The parameters of q for every latent and supervised variable, ``{var: {param: (B, *shape)}}``
        (e.g. ``{"z": {"loc": ..., "scale": ...}, "y": {"probs": ...}}``), each factor evaluated at
        its parents' values as :meth:`encode` computes them (means or modes; labels kept)."""
        cb = self._check(batch)
        out: dict[str, dict[str, torch.Tensor]] = {}
        for labelled, idx in pattern_groups(cb):
            n = group_size(cb, idx)
            trace = self._trace(group_values(cb, self._observed | labelled, idx), n, labelled, 1, mode="mean", run_p=False)
            for name, d in trace.q_dists.items():
                base = dists.base_of(d)
                for param in dists.family(self._qf[name].dist.family).params:
                    value = getattr(base, param, None)
                    if not torch.is_tensor(value):
                        continue
                    tail = tuple(value.shape[len(base.batch_shape):])  # the parameter's own dims (probs: K)
                    value = value.expand(tuple(base.batch_shape) + tail)
                    per_example = tuple(value.shape[len(d.batch_shape):])  # after the lead and batch dims
                    lb = torch.broadcast_shapes(tuple(d.batch_shape), (n,))
                    value = value.expand(tuple(lb) + per_example).reshape((n,) + per_example)
                    slot = out.setdefault(name, {})
                    if idx is None:
                        slot[param] = value
                    else:
                        if param not in slot:
                            slot[param] = value.new_empty((cb.size,) + value.shape[1:])
                        slot[param] = slot[param].index_copy(0, idx, value)
        return out

    @torch.no_grad()
    def reconstruct(self, batch) -> dict[str, torch.Tensor]:
        """Means of p(x | encoded latents) for every observed variable, ``(B, *shape)``."""
        cb = self._check(batch)
        codes = self.encode(batch)
        return self._decode(codes, cb.size)

    @torch.no_grad()
    def sample(self, n: int, given: dict[str, torch.Tensor | int | float] | None = None) -> dict[str, torch.Tensor]:
        """Ancestral samples of p: every variable ``(n, *value_shape)``; latent and supervised
        ones drawn (or clamped to ``given``), observed ones as their distribution's mean."""
        if n < 1:
            raise UserError(f"sample needs n >= 1, got {n}")
        given = dict(given or {})
        for name in given:
            v = self._vars.get(name)
            if v is None or v.role == "observed":
                allowed = ", ".join(x.name for x in self.spec.variables if x.role != "observed")
                raise UserError(f"cannot clamp '{name}' when sampling; give latent or supervised variables ({allowed})")
        clamped = {k: self._broadcast_given(k, t, n) for k, t in given.items()}
        return self._decode(clamped, n, draw=True)

    def _broadcast_given(self, name: str, t, n: int) -> torch.Tensor:
        v = self._vars[name]
        vshape = v.value_shape if v.domain == "categorical" else v.shape
        kind = torch.long if v.domain == "categorical" else self.dtype
        t = torch.as_tensor(t, device=self.device)
        if v.domain == "categorical" and t.is_floating_point():
            raise UserError(f"given['{name}'] must hold class indices (integers), got {t.dtype}")
        t = t.to(kind)
        try:
            if t.dim() == len(vshape):
                t = t.expand((n,) + tuple(vshape))
            return t.expand((n,) + tuple(vshape)).clone()
        except RuntimeError:
            raise UserError(f"given['{name}'] should have shape {tuple(vshape)} or ({n}, {', '.join(map(str, vshape))}),"
                            f" got {tuple(t.shape)}") from None

    def _decode(self, values: dict[str, torch.Tensor], n: int, draw: bool = False) -> dict[str, torch.Tensor]:
        """Run p in order from ``values`` (n examples); observed nodes take their means."""
        vals = {k: t.reshape((1,) + tuple(t.shape)) for k, t in values.items()}
        out = {}
        for name, _, parents, module in self._walk("p", self.p_order, vals):
            var = self._vars[name]
            if name in vals and var.role != "observed":
                value = vals[name]
            else:
                d = module.dist(parents)
                target = torch.broadcast_shapes(d.batch_shape, (1, n))
                if var.role == "observed":
                    value = mean_or_mode(d.expand(target), var, mean_only=True)
                else:
                    value = dists.drawable(d).expand(target).sample()
            vals[name] = value
            out[name] = value.reshape((n,) + tuple(value.shape[2:]))
        return out if draw else {v.name: out[v.name] for v in self.spec.observed}


def _unchecked(spec: Spec, batch) -> CheckedBatch:
    values, labelled, size = {}, {}, 0
    for name, t in batch.items():
        v = spec.variable(name)
        size = t.shape[0]
        if v.role == "supervised":
            if v.domain == "categorical":
                labelled[name] = (t.reshape(size, -1) >= 0).all(1)
                t = t.clamp(min=0)
            else:
                labelled[name] = ~torch.isnan(t.reshape(size, -1)).any(1)
                t = torch.nan_to_num(t, nan=0.0)
        values[name] = t
    return CheckedBatch(values, labelled, size)
