"""Compile a validated spec into a :class:`graphvae.compile.model.CompiledModel`.

* :func:`compile_spec` accepts a path (``.gvae``, ``.yaml``/``.yml``) or a
  :class:`~graphvae.spec.ir.Spec`; it validates it (raising
  :class:`~graphvae.spec.diagnostics.SpecError` with every diagnostic), resolves the
  objective configuration (spec settings, then keyword overrides), plans each
  factor's parameters (literals, ``uniform``, one network for all head parameters
  or one per named parameter, read from :mod:`graphvae.spec.binding`), picks each q node's
  estimator (:mod:`graphvae.spec.estimators`) and builds the networks.

``graphvae compile`` prints what was built (:mod:`graphvae.compile.report`).
"""

from __future__ import annotations

import os
from dataclasses import replace

import networkx as nx
from torch import nn

from graphvae.compile import distributions as dists
from graphvae.compile.estimators import QNode
from graphvae.compile.model import CompiledModel
from graphvae.compile.factor import FactorModule
from graphvae.compile.nets import build_net
from graphvae.compile.parents import ParentInput
from graphvae.spec import errorcodes as codes
from graphvae.spec.binding import plan_params
from graphvae.spec.diagnostics import SpecError, error
from graphvae.spec.estimators import ESTIMATORS, estimator_call
from graphvae.spec.graph import decoder_graph, encoder_graph, topological_order
from graphvae.spec.ir import Factor, Net, Spec
from graphvae.spec.networks import image_shape, node_width
from graphvae.spec.plates import count_masks
from graphvae.spec.settings import SETTINGS, ObjectiveConfig, problems


def deterministic_width(net: Net) -> int:
    if not net.hidden:
        raise ValueError(f"a deterministic {net.kind} needs an output width, e.g. {net.kind}(64)")
    return node_width(net)


def input_names(factor: Factor) -> list[str]:
    """The names of the network inputs of ``factor``: its parents, with the variable each absent
    parent (``z[k-1]`` of slot 0, see :mod:`graphvae.spec.plates`) is shaped like at its position."""
    names = list(factor.parents)
    for position, like in sorted(factor.absent):
        names.insert(position, like)
    return names


def _parent_inputs(spec: Spec, factor: Factor, block: dict[str, Factor]) -> tuple[ParentInput, ...]:
    out = []
    nodes = {n: f for n, f in block.items() if f.deterministic}
    variables = {v.name: v for v in spec.variables}
    for p in input_names(factor):
        kind = nodes[p].net.kind if p in nodes else None
        if kind == "erase":  # an image of its image variable's shape
            out.append(ParentInput(p, image_shape(p, variables, nodes), node=kind))
        elif kind is not None:  # a glimpse's value is its window flattened; a conv reads it as an image
            image = image_shape(p, {}, nodes) if kind == "glimpse" else None
            out.append(ParentInput(p, (deterministic_width(block[p].net),), image=image, node=kind))
        else:
            v = spec.variable(p)
            out.append(ParentInput(p, tuple(v.shape), v.classes))
    return tuple(out)


def _block_modules(spec: Spec, factors: tuple[Factor, ...]) -> nn.ModuleDict:
    block = {f.name: f for f in factors}
    modules = nn.ModuleDict()
    shared: dict[str, nn.Module] = {}  # the one network of a plate's K copies of a factor
    for f in factors:
        if f.shared is not None and f.shared in shared:
            modules[f.name] = shared[f.shared]
            continue
        parents = _parent_inputs(spec, f, block)
        try:
            if f.deterministic:
                modules[f.name] = build_net(f.net, parents, None)
            else:
                plan = plan_params(f)
                v = spec.variable(f.name)
                modules[f.name] = FactorModule(f.dist.family, tuple(v.shape) or (), plan.literals, list(plan.nets),
                                               parents)
        except (ValueError, KeyError) as exc:
            raise SpecError([error(codes.COMPILE, f"cannot compile factor '{f.name}': {exc}", f.span)],
                            {spec.path: spec.source}) from None
        if f.shared is not None:
            shared[f.shared] = modules[f.name]
    return modules


def zeroed_inputs(spec: Spec, factors: tuple[Factor, ...]) -> dict[str, tuple[tuple, ...]]:
    """``{factor: ((input position, count variable, slot, classes, value dims), ...)}``: the inputs of each
    factor outside a plate that read a slot of a plate with a count (a slot's variable, or a deterministic
    node of the slot such as a decoder's patch), zeroed where that slot is absent (slot >= the count)."""
    masks = count_masks(spec)
    counts = {p.name: p.count for p in spec.plates if p.count}
    nodes = {f.name: f for f in factors if f.deterministic}
    out = {}
    for f in factors:
        rows = []
        absent = {position for position, _ in f.absent}
        for i, name in enumerate(input_names(f)):
            if i in absent:
                continue
            node = nodes.get(name)
            if node is not None:
                if node.slot is not None and node.slot.plate in counts and (f.slot is None or
                                                                            f.slot.plate != node.slot.plate):
                    dims = 2 if node.net.kind == "erase" else 1  # an erase's value is an image, the others flat
                    rows.append((i, counts[node.slot.plate], node.slot.index, None, dims))
                continue
            var = spec.variable(name)
            if name in masks and (f.slot is None or f.slot.plate != var.slot.plate):
                rows.append((i, *masks[name], var.classes, len(var.shape)))
        if rows:
            out[f.name] = tuple(rows)
    return out


def _order(spec: Spec, graph: nx.DiGraph, factors: tuple[Factor, ...]) -> list[str]:
    """The block's factors in a topological order; a factor whose inputs a count variable zeroes
    comes after that count where the graph allows (else its inputs are used as they are)."""
    names = {f.name for f in factors}
    for name, rows in zeroed_inputs(spec, factors).items():
        for _, count, *_ in rows:
            if count in graph and not graph.has_edge(count, name) and not nx.has_path(graph, name, count):
                graph.add_edge(count, name)
    return [n for n in topological_order(graph) if n in names]


def q_nodes(spec: Spec) -> dict[str, QNode]:
    """Every stochastic q variable with its estimator and the estimator's options: the spec's
    (or the default) for a discrete one; ``rsample`` for a continuous one whose family has a
    reparameterised sample, else ``score``."""
    nodes = {}
    for f in spec.encoder:
        if f.deterministic:
            continue
        v = spec.variable(f.name)
        if v.discrete:
            call, _ = estimator_call(spec, f.name)
            name = call.name
        else:
            call, name = None, "rsample" if dists.torch_class(f.dist.family).has_rsample else "score"
        nodes[f.name] = QNode(f.name, v, f.dist.family, name, ESTIMATORS[name].resolved(call))
    return nodes


def objective_config(spec: Spec, **overrides) -> ObjectiveConfig:
    """The spec's objective settings over the defaults, then ``overrides`` (checked against the
    same table as the spec: an unknown name is a TypeError, a bad value a ValueError)."""
    rows = SETTINGS["objective"]
    unknown = [k for k in overrides if k not in rows]
    if unknown:
        raise TypeError(f"unknown objective setting(s) {', '.join(unknown)}; known: {', '.join(rows)}")
    values = {s.name: s.value for s in spec.objective.settings if s.name in rows}
    values.update(overrides)
    typed = {k: rows[k].type(v) for k, v in values.items()}
    found = problems("objective", typed)
    if found:
        raise ValueError(found[0])
    return replace(ObjectiveConfig(), **typed)


def load(spec_or_path) -> Spec:
    from graphvae.spec.loader import load_spec

    return load_spec(spec_or_path if isinstance(spec_or_path, Spec) else os.fspath(spec_or_path))


def compile_spec(spec_or_path, **overrides) -> CompiledModel:
    """Compile a spec (a path or a Spec) into a :class:`~graphvae.compile.model.CompiledModel`.

    ``overrides`` replace objective settings (``alpha``, ``samples``, ``alpha_scaling``)."""
    spec = load(spec_or_path)
    config = objective_config(spec, **overrides)
    encoder = _block_modules(spec, spec.encoder)
    decoder = _block_modules(spec, spec.decoder)
    q_order = _order(spec, encoder_graph(spec), spec.encoder)
    p_order = _order(spec, decoder_graph(spec), spec.decoder)
    model = CompiledModel(spec, config, encoder, decoder, q_order, p_order, q_nodes(spec))
    model.set_plates(zeroed_inputs(spec, spec.encoder), zeroed_inputs(spec, spec.decoder), count_masks(spec))
    return model
