"""The encoder q and the decoder p of a spec as networkx graphs (torch-free).

Each block becomes a :class:`networkx.DiGraph` with an edge ``parent -> child`` for
every parent a factor names.  Nodes carry:

* ``kind``: ``"observed" | "supervised" | "latent"`` (the variable's role),
  ``"deterministic"`` for a node ``h | x = mlp(256)``, or ``None`` for a name that
  is neither a declared variable nor defined in the block (validation reports it);
* ``factor``: the block's :class:`~graphvae.spec.ir.Factor` defining the node, or ``None``
  for an input such as the observed ``x`` in q (the first factor wins when a name is
  defined twice; validation reports the duplicate);
* ``variable``: the declared :class:`~graphvae.spec.ir.Variable` of that name, or ``None``;
* ``order``: position of the node's first appearance (factors first, in source
  order, then inputs), used to keep orders and cycles deterministic.

The graphs are built from any spec, even an invalid one, so that validation can
look for cycles; the compiler and renderer use them on validated specs.
"""

from __future__ import annotations

from typing import Iterable

import networkx as nx

from graphvae.spec.ir import Factor, Spec, Variable


def _first_variables(spec: Spec) -> dict[str, Variable]:
    out: dict[str, Variable] = {}
    for v in spec.variables:
        out.setdefault(v.name, v)
    return out


def block_graph(spec: Spec, factors: Iterable[Factor]) -> nx.DiGraph:
    """The graph of one block (a sequence of factors) of ``spec``."""
    variables = _first_variables(spec)
    factors = list(factors)
    g = nx.DiGraph()

    def add(name: str, factor: Factor | None) -> None:
        if name in g:
            return
        if factor is not None and factor.deterministic:
            kind = "deterministic"
        else:
            var = variables.get(name)
            kind = var.role if var is not None else None
        g.add_node(name, kind=kind, factor=factor, variable=variables.get(name), order=len(g))

    for f in factors:
        add(f.name, f)
    for f in factors:
        for parent in f.parents:
            add(parent, None)
    for f in factors:
        for parent in f.parents:
            g.add_edge(parent, f.name)
    return g


def encoder_graph(spec: Spec) -> nx.DiGraph:
    """q: the encoder's factors; observed variables appear as inputs (``factor=None``)."""
    return block_graph(spec, spec.encoder)


def decoder_graph(spec: Spec) -> nx.DiGraph:
    """p: the decoder's factors."""
    return block_graph(spec, spec.decoder)


def _order(g: nx.DiGraph, node: str) -> int:
    return g.nodes[node].get("order", 0)


def topological_order(g: nx.DiGraph) -> list[str]:
    """Nodes with every parent before its children; ties keep source order.

    Raises :class:`networkx.NetworkXUnfeasible` when the graph has a cycle."""
    return list(nx.lexicographical_topological_sort(g, key=lambda n: _order(g, n)))


def _rotate(cycle: list[str], g: nx.DiGraph) -> list[str]:
    start = min(range(len(cycle)), key=lambda i: _order(g, cycle[i]))
    return cycle[start:] + cycle[:start]


def find_cycle(g: nx.DiGraph, nodes: Iterable[str] | None = None) -> list[str] | None:
    """One cycle as node names in edge order (``["z", "y"]`` for ``z -> y -> z``;
    ``["z"]`` for a self loop), starting at its earliest node; None if acyclic.

    ``nodes`` restricts the search to cycles through those nodes' component."""
    sources = sorted(g if nodes is None else nodes, key=lambda n: _order(g, n))
    try:
        edges = nx.find_cycle(g, source=sources)
    except nx.NetworkXNoCycle:
        return None
    return _rotate([u for u, _ in edges], g)


def all_cycles(g: nx.DiGraph) -> list[list[str]]:
    """One cycle per strongly connected component that has one, in source order."""
    cycles = []
    for comp in nx.strongly_connected_components(g):
        if len(comp) > 1 or any(g.has_edge(n, n) for n in comp):
            cycle = find_cycle(g.subgraph(comp))
            if cycle:
                cycles.append(cycle)
    return sorted(cycles, key=lambda c: _order(g, c[0]))


def format_cycle(cycle: list[str]) -> str:
    """``["z", "y"]`` -> ``"z -> y -> z"``."""
    return " -> ".join([*cycle, cycle[0]])
