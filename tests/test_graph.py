"""graphvae.spec.graph: q and p as networkx graphs, topological order and cycles."""

from __future__ import annotations

import networkx as nx
import pytest

from graphvae.spec.graph import all_cycles, decoder_graph, encoder_graph, find_cycle, format_cycle, topological_order
from graphvae.spec.ir import Dist, Factor, Net, Param, Spec, Variable

VARS = (
    Variable("x", "observed", "binary", (4,)),
    Variable("y", "supervised", "categorical", (3,)),
    Variable("z", "latent", "real", (2,)),
)


def factor(name: str, parents: str = "", det: bool = False) -> Factor:
    ps = tuple(p.strip() for p in parents.split(",") if p.strip())
    if det:
        return Factor(name, ps, net=Net("mlp", (8,)))
    return Factor(name, ps, Dist("Normal", (Param(None, Net("mlp", (8,))),)))


def spec(encoder=(), decoder=()) -> Spec:
    return Spec("t", VARS, tuple(factor(*f) for f in encoder), tuple(factor(*f) for f in decoder))


@pytest.mark.parametrize("encoder, edges, kinds", [
    ([("y", "x"), ("z", "x, y")], {("x", "y"), ("x", "z"), ("y", "z")},
     {"x": "observed", "y": "supervised", "z": "latent"}),
    ([("h", "x", True), ("z", "h"), ("y", "z, h")], {("x", "h"), ("h", "z"), ("z", "y"), ("h", "y")},
     {"x": "observed", "h": "deterministic", "z": "latent", "y": "supervised"}),
    ([("z", "x, q")], {("x", "z"), ("q", "z")}, {"x": "observed", "z": "latent", "q": None}),
])
def test_encoder_graph_edges_and_kinds(encoder, edges, kinds):
    g = encoder_graph(spec(encoder=encoder))
    assert set(g.edges) == edges
    assert {n: g.nodes[n]["kind"] for n in g} == kinds


@pytest.mark.parametrize("name, has_factor, has_variable", [
    ("x", False, True), ("y", True, True), ("h", True, False),
])
def test_node_factor_and_variable_attributes(name, has_factor, has_variable):
    s = spec(encoder=[("h", "x", True), ("y", "h")])
    g = encoder_graph(s)
    node = g.nodes[name]
    assert (node["factor"] is not None) == has_factor
    assert (node["variable"] is not None) == has_variable
    if has_factor:
        assert node["factor"].name == name
    if has_variable:
        assert node["variable"] is s.variable(name)


def test_first_factor_wins_for_duplicates():
    s = Spec("t", VARS, (factor("z", "x"), factor("z", "y")))
    g = encoder_graph(s)
    assert g.nodes["z"]["factor"] is s.encoder[0]
    assert set(g.edges) == {("x", "z"), ("y", "z")}


@pytest.mark.parametrize("decoder, order", [
    ([("z", ""), ("y", ""), ("x", "y, z")], ["z", "y", "x"]),
    ([("x", "y, z"), ("z", ""), ("y", "")], ["z", "y", "x"]),
    ([("x", "h"), ("h", "z", True), ("z", "")], ["z", "h", "x"]),
])
def test_topological_order_parents_first_ties_in_source_order(decoder, order):
    g = decoder_graph(spec(decoder=decoder))
    assert topological_order(g) == order


def test_topological_order_raises_on_cycle():
    g = encoder_graph(spec(encoder=[("z", "y"), ("y", "z")]))
    with pytest.raises(nx.NetworkXUnfeasible):
        topological_order(g)


@pytest.mark.parametrize("encoder, cycle", [
    ([("z", "x, y"), ("y", "z")], ["z", "y"]),
    ([("y", "z"), ("z", "x, y")], ["y", "z"]),
    ([("z", "z")], ["z"]),
    ([("h", "y", True), ("z", "h"), ("y", "z")], ["h", "z", "y"]),
    ([("y", "x"), ("z", "x, y")], None),
])
def test_find_cycle(encoder, cycle):
    assert find_cycle(encoder_graph(spec(encoder=encoder))) == cycle


@pytest.mark.parametrize("encoder, cycles", [
    ([("z", "y"), ("y", "z"), ("h", "g", True), ("g", "h", True)], [["z", "y"], ["h", "g"]]),
    ([("z", "z"), ("y", "x")], [["z"]]),
    ([("y", "x")], []),
])
def test_all_cycles_one_per_component(encoder, cycles):
    assert all_cycles(encoder_graph(spec(encoder=encoder))) == cycles


@pytest.mark.parametrize("cycle, text", [(["z", "y"], "z -> y -> z"), (["z"], "z -> z")])
def test_format_cycle(cycle, text):
    assert format_cycle(cycle) == text


def test_graph_module_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, graphvae.spec.graph; assert 'torch' not in sys.modules"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
