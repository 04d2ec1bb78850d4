"""One stochastic factor of a spec as a module: its networks and literal parameters, and the
distribution they give, as torch's object (:meth:`FactorModule.dist`) or in the training step's
plain form (:meth:`FactorModule.plain`, :mod:`graphvae.compile.densities`)."""

from __future__ import annotations

import torch
from torch import nn

from graphvae.compile import densities
from graphvae.compile import distributions as dists
from graphvae.compile.nets import build_net
from graphvae.compile.parents import ParentInput
from graphvae.spec.ir import Net


class FactorModule(nn.Module):
    """One stochastic factor: its networks (one per network argument, keyed by the
    parameters it produces, e.g. ``"loc+scale"``) and its literal parameters (buffers of
    the variable's parameter shape, so ``.to(device)`` and ``.double()`` move them)."""

    def __init__(self, family: str, shape: tuple[int, ...], literals: dict[str, float],
                 nets: list[tuple[Net, tuple[str, ...]]], parents: tuple[ParentInput, ...]):
        super().__init__()
        self.family = family
        self.shape = tuple(shape)
        self.n_event = dists.event_dims(family, self.shape)
        self.nets = nn.ModuleDict()
        for net, names in nets:
            self.nets["+".join(names)] = build_net(net, parents, {n: self.shape for n in names})
        self._net_list = tuple(self.nets.values())  # the same networks, outside nn.Module's lookup, for params
        self.literal_names = tuple(literals)
        self._literal_values = {name: float(value) for name, value in literals.items()}
        for name, value in literals.items():
            self.register_buffer(f"literal_{name}", torch.full(self.shape, float(value)), persistent=False)
        # decided once: each head parameter's map onto its constraint, and how to build the distribution
        self._to_constraint = {name: dists.constraint_map(family, name) for names in self.nets for name in
                               names.split("+")}
        self._build = dists.builder(family, self.n_event)
        self._fixed = None  # the distribution itself, built once, when every parameter is a literal
        # the training step's plain form of it (graphvae.compile.densities), None where there is none
        self._plain = densities.plain_class(family, [*self._to_constraint, *self.literal_names])
        self._fixed_plain = None

    def _apply(self, fn, *args, **kwargs):  # the literals move (.to(), .double()): build the fixed one anew
        self._fixed = self._fixed_plain = None
        return super()._apply(fn, *args, **kwargs)

    def params(self, values: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        out = {}
        for net in self._net_list:
            for name, block in net(values).items():
                out[name] = self._to_constraint[name](block)
        for name in self.literal_names:
            out[name] = getattr(self, f"literal_{name}")
        return out

    def dist(self, values: list[torch.Tensor]):
        if self._net_list:
            return self._build(self.params(values))
        if self._fixed is None:  # literal parameters only (a prior such as Normal(0, 1)): the same every step
            self._fixed = self._build(self.params(values))
        return self._fixed

    @property
    def has_plain(self) -> bool:
        """Whether the family, with these parameters, has a plain form (:mod:`graphvae.compile.densities`)."""
        return self._plain is not None

    @property
    def plain_reparameterised(self) -> bool:
        """Whether the plain form makes reparameterised draws (``rsample_scored``)."""
        return hasattr(self._plain, "rsample_scored")

    def plain(self, values: list[torch.Tensor]):
        """The distribution as :meth:`dist` gives it, in its plain form (see :attr:`has_plain`)."""
        if self._net_list:
            return self._plain(self.n_event, **self.params(values))
        if self._fixed_plain is None:
            self._fixed_plain = self._plain.of_literals(self.n_event, self._literal_values, **self.params(values))
        return self._fixed_plain

    def forward(self, values: list[torch.Tensor]):
        return self.dist(values)
