"""``graphvae render``: the model's graph as a diagram (or its math as LaTeX, see :mod:`graphvae.render.latex`).

Two stages:

1. :func:`describe` turns a :class:`~graphvae.spec.ir.Spec` into a plain :class:`Diagram`
   (clusters of nodes and edges with their style attributes), which tests assert on.
2. :func:`to_graphviz` turns the diagram into a :class:`graphviz.Digraph`;
   :func:`write` writes it atomically in the format of the output suffix.

The picture follows the figures of Siddharth et al. (2017): the encoder q and the
decoder p side by side as two labelled clusters, each with a plate over the N data
points; observed variables shaded, supervised ones half-shaded ("observed for some
examples"), latent ones white, deterministic nodes small boxes, with a legend of the
kinds drawn; an edge ``a -> b`` means "b conditions on a".  Each factor is labelled as the
spec writes it, its network included (``x ~ Bernoulli(mlp(500)) [784]``, ``h = mlp(256)``).
A discrete variable's gradient estimator is written under its node in q, where it is sampled.

Rendering never imports torch; the ``dot`` program is needed only for .svg/.png/.pdf.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from graphvae.atomic import atomic_write_bytes as atomic_write
from graphvae.errors import UserError
from graphvae.render.latex import Block
from graphvae.spec import printers
from graphvae.spec.estimators import estimator_call
from graphvae.spec.ir import Dist, Factor, Spec, Variable
from graphvae.spec.settings import objective_setting

FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": "dot", ".gv": "dot"}
INSTALL_HINT = (
    "the Graphviz program 'dot' is needed to write {fmt} files but was not found on PATH; "
    "install Graphviz (apt-get install graphviz, brew install graphviz or conda install graphviz) "
    "or write a .dot file instead"
)

SHADE = "gray72"
# Style attributes per kind of node (Graphviz names).  A supervised node's fill stops at
# half width (a two-stop gradient at angle 0): left half shaded, right half white,
# observed for some examples only.
STYLES: dict[str, dict[str, str]] = {
    "observed": {"shape": "ellipse", "style": "filled", "fillcolor": SHADE},
    "supervised": {"shape": "ellipse", "style": "filled", "fillcolor": f"{SHADE};0.5:white",
                   "gradientangle": "0"},
    "latent": {"shape": "ellipse", "style": "filled", "fillcolor": "white"},
    "deterministic": {"shape": "box", "style": "filled", "fillcolor": "white", "fontsize": "10",
                      "height": "0.3", "margin": "0.08,0.03"},
}
GRAPH_ATTRS = {"rankdir": "TB", "fontname": "Helvetica", "labelloc": "t", "fontsize": "14",
               "nodesep": "0.3", "ranksep": "0.45", "newrank": "true"}
NODE_ATTRS = {"fontname": "Helvetica", "fontsize": "12", "penwidth": "1.2"}
EDGE_ATTRS = {"arrowsize": "0.7", "penwidth": "1.1"}
CLUSTER_ATTRS = {"style": "rounded", "color": "gray40", "fontsize": "13", "labeljust": "c"}
LEGEND_ATTRS = {"style": "dashed", "color": "gray60", "fontsize": "11", "labeljust": "l"}
# What the shading and shapes mean, in the legend's order (a legend shows the kinds a diagram has).
LEGEND = {"observed": "observed", "supervised": "supervised (labelled for some examples)", "latent": "latent",
          "deterministic": "deterministic"}
PLATE_ATTRS = {"style": "solid", "color": "gray55", "labeljust": "r", "labelloc": "b", "fontsize": "12"}


# -- stage 1: a plain description -------------------------------------------------------
@dataclass(frozen=True)
class Node:
    id: str  # unique in the diagram: "q_z", "p_z"
    name: str  # the variable or deterministic node's name
    kind: str  # "observed" | "supervised" | "latent" | "deterministic"
    lines: tuple[str, ...]  # label lines, e.g. ("y ~ Categorical [10]", "enumerate")
    attrs: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def label(self) -> str:
        return "\n".join(self.lines)


@dataclass(frozen=True)
class Edge:
    tail: str  # node id of the parent
    head: str  # node id of the child (which conditions on the parent)
    label: str = ""  # "k-1": the child reads an earlier slot of the parent's plate


@dataclass
class Cluster:
    id: str  # "encoder" | "decoder"
    label: str  # e.g. "encoder  q(y, z | x)"
    nodes: list[Node]
    edges: list[Edge]
    plate: str = "N"  # label of the plate over the data points around the nodes
    plates: list[tuple[str, str, list[str]]] = field(default_factory=list)  # (id, "k = 1..3", node ids) of spec plates

    def node(self, name: str) -> Node:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)


@dataclass
class Diagram:
    name: str
    label: str
    clusters: list[Cluster]
    legend: list[Node] = field(default_factory=list)  # one sample node per kind drawn, in LEGEND's order

    def cluster(self, cid: str) -> Cluster:
        for c in self.clusters:
            if c.id == cid:
                return c
        raise KeyError(cid)


def shape_text(var: Variable | None) -> str:
    return f" {printers.dims(var.shape)}" if var is not None and var.shape else ""


def dist_text(dist: Dist) -> str:
    """The family with its arguments, networks included, as the spec writes them: ``Normal(0, 1)``,
    ``Categorical(uniform)``, ``Bernoulli(mlp(500))``, ``Normal(loc=mlp(8), scale=0.5)``."""
    if not dist.params:
        return dist.family
    return printers.dist(dist, compact=True)


def estimator_text(spec: Spec, name: str) -> str | None:
    """``enumerate``, ``relax(0.66)``, ``reinforce`` for a discrete variable; ``(default)`` when
    the objective names none."""
    found = estimator_call(spec, name)
    if found is None:
        return None
    call, default = found
    return printers.call(call, short=True) + (" (default)" if default else "")


def _factor_node(spec: Spec, factor: Factor, prefix: str, in_q: bool) -> Node:
    var = spec.variable(factor.name)
    if factor.deterministic:
        net = printers.net(factor.net, compact=True) if factor.net else "?"
        return Node(f"{prefix}_{factor.name}", factor.name, "deterministic", (f"{factor.name} = {net}",),
                    dict(STYLES["deterministic"]))
    kind = var.role if var is not None and var.role in STYLES else "latent"
    lines = [f"{factor.name} ~ {dist_text(factor.dist)}{shape_text(var)}"]
    est = estimator_text(spec, factor.name) if in_q else None
    if est:
        lines.append(est)
    return Node(f"{prefix}_{factor.name}", factor.name, kind, tuple(lines), dict(STYLES[kind]))


def _input_node(spec: Spec, name: str, prefix: str) -> Node:
    """A variable a block conditions on without a factor for it (x in q)."""
    var = spec.variable(name)
    kind = var.role if var is not None and var.role in STYLES else "latent"
    text = f"{name} : {var.domain}{shape_text(var)}" if var is not None else name
    return Node(f"{prefix}_{name}", name, kind, (text,), dict(STYLES[kind]))


def _cluster(spec: Spec, block: str) -> Cluster:
    b = Block(spec, block)  # graphvae.spec.graph's DiGraph of the block
    p = b.letter
    nodes = [_input_node(spec, n, p) for n in b.inputs()]
    nodes += [_factor_node(spec, f, p, block == "encoder") for f in b.factors]
    edges = [Edge(f"{p}_{tail}", f"{p}_{head}") for tail, head in b.graph.edges]
    given = f" | {', '.join(b.inputs())}" if b.inputs() else ""
    cluster = Cluster(block, f"{block}  {p}({', '.join(b.variables())}{given})", nodes, edges)
    return _fold_plates(spec, b, cluster) if spec.plates and spec.written is not None else cluster


def _fold_plates(spec: Spec, b: Block, cluster: Cluster) -> Cluster:
    """One node per plate variable (``y[k]``) inside a box per plate, as graphical-model figures
    draw them: the slots' copies fold into it, an edge from an earlier slot is labelled ``k-1``."""
    p = b.letter
    slots = {}  # node id of a copy -> (folded id, plate, slot)
    for f in b.factors:
        var = spec.variable(f.name)
        slot = f.slot or (var.slot if var is not None else None)
        if slot is not None:
            slots[f"{p}_{f.name}"] = (f"{p}_{slot.base}", slot.plate, slot.index, f"{slot.base}[{slot.plate}]")
    for name in b.inputs():
        var = spec.variable(name)
        if var is not None and var.slot is not None:
            slots[f"{p}_{name}"] = (f"{p}_{var.slot.base}", var.slot.plate, var.slot.index,
                                    f"{var.slot.base}[{var.slot.plate}]")
    nodes, members = [], {}
    for node in cluster.nodes:
        if node.id not in slots:
            nodes.append(node)
            continue
        folded, plate, index, written = slots[node.id]
        if index != 0:
            continue
        first = node.lines[0]
        lines = (written + first[len(node.name):],) + node.lines[1:]
        nodes.append(Node(folded, written, node.kind, lines, node.attrs))
        members.setdefault(plate, []).append(folded)
    edges, seen = [], set()
    for e in cluster.edges:
        tail, head = slots.get(e.tail), slots.get(e.head)
        label = ""
        if tail and head and tail[1] == head[1] and tail[2] != head[2]:
            label = f"{tail[1]}-{head[2] - tail[2]}"
        edge = Edge(tail[0] if tail else e.tail, head[0] if head else e.head, label)
        if edge not in seen:
            seen.add(edge)
            edges.append(edge)
    plates = []
    for plate in spec.plates:
        if plate.name in members:
            count = f" (the first {plate.count})" if plate.count else ""
            plates.append((f"{p}_plate_{plate.name}", f"{plate.name} = 1..{plate.size}{count}", members[plate.name]))
    def fold(names):
        return list(dict.fromkeys(slots[f"{p}_{n}"][3] if f"{p}_{n}" in slots else n for n in names))

    given = f" | {', '.join(fold(b.inputs()))}" if b.inputs() else ""
    label = f"{cluster.id}  {p}({', '.join(fold(b.variables()))}{given})"
    return Cluster(cluster.id, label, nodes, edges, cluster.plate, plates)


def describe(spec: Spec, only: str | None = None) -> Diagram:
    """The picture of ``spec`` as plain data: encoder and decoder clusters (or one, with ``only``)."""
    blocks = [b for b in ("encoder", "decoder") if only in (None, b)]
    settings = []
    if spec.supervised:
        settings.append(f"alpha = {printers.number(objective_setting(spec.objective, 'alpha'), compact=True)}")
    settings.append(f"S = {objective_setting(spec.objective, 'samples')}")
    settings += [f"beta {b.var} = {printers.number(b.value, compact=True)}" for b in spec.as_written.objective.betas
                 if float(b.value) != 1.0]
    label = f"model {spec.name}   ({', '.join(settings)})"
    clusters = [_cluster(spec, b) for b in blocks]
    kinds = {n.kind for c in clusters for n in c.nodes}
    legend = [Node(f"legend_{kind}", kind, kind, (text,), dict(STYLES[kind])) for kind, text in LEGEND.items()
              if kind in kinds]
    return Diagram(spec.name, label, clusters, legend)


# -- stage 2: graphviz -----------------------------------------------------------------
def _dot_label(lines: tuple[str, ...]) -> str:
    # graphviz's "\n" escape centres each line; backslashes in names are escaped first.
    return "\\n".join(line.replace("\\", "\\\\") for line in lines)


def to_graphviz(diagram: Diagram):
    """A :class:`graphviz.Digraph` of the diagram: one cluster per block, a plate inside each."""
    import graphviz

    g = graphviz.Digraph(diagram.name, graph_attr={**GRAPH_ATTRS, "label": diagram.label},
                         node_attr=NODE_ATTRS, edge_attr=EDGE_ATTRS)
    for cluster in diagram.clusters:
        with g.subgraph(name=f"cluster_{cluster.id}") as sub:
            sub.attr(label=cluster.label, **CLUSTER_ATTRS)
            with sub.subgraph(name=f"cluster_{cluster.id}_plate") as plate:
                plate.attr(label=cluster.plate, **PLATE_ATTRS)
                inside = {node_id: pid for pid, _, ids in cluster.plates for node_id in ids}
                for node in cluster.nodes:
                    if node.id not in inside:
                        plate.node(node.id, _dot_label(node.lines), **node.attrs)
                by_id = {node.id: node for node in cluster.nodes}
                for pid, label, ids in cluster.plates:  # a spec's plate: a box inside the one over N
                    with plate.subgraph(name=f"cluster_{pid}") as box:
                        box.attr(label=label, **PLATE_ATTRS)
                        for node_id in ids:
                            box.node(node_id, _dot_label(by_id[node_id].lines), **by_id[node_id].attrs)
            for edge in cluster.edges:
                if edge.label:
                    sub.edge(edge.tail, edge.head, label=edge.label, style="dashed", fontsize="10")
                else:
                    sub.edge(edge.tail, edge.head)
    if diagram.legend:  # a column of sample nodes, one per kind, held in order by invisible edges
        with g.subgraph(name="cluster_legend") as legend:
            legend.attr(label="legend", **LEGEND_ATTRS)
            for node in diagram.legend:
                legend.node(node.id, _dot_label(node.lines), **{**node.attrs, "fontsize": "10"})
            for above, below in zip(diagram.legend, diagram.legend[1:]):
                legend.edge(above.id, below.id, style="invis")
    return g


def output_format(out: str | os.PathLike) -> str:
    """The graphviz format for an output path, from its suffix; UserError for an unknown one."""
    suffix = Path(out).suffix.lower()
    if suffix == ".tex":
        raise UserError(f"cannot write '{out}' as a picture: use --latex to write the math as .tex")
    if suffix not in FORMATS:
        known = ", ".join(s for s in FORMATS if s != ".gv")
        raise UserError(f"cannot write '{out}': unknown output format '{suffix or '(none)'}'; use one of {known}")
    return FORMATS[suffix]


def image_bytes(digraph, fmt: str) -> bytes:
    """The picture in ``fmt``; DOT source needs no program, other formats run ``dot``."""
    if fmt == "dot":
        return digraph.source.encode("utf-8")
    import graphviz

    try:
        return digraph.pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        raise UserError(INSTALL_HINT.format(fmt=f".{fmt}")) from None
    except graphviz.CalledProcessError as exc:
        detail = (exc.stderr or b"").decode("utf-8", "replace").strip().splitlines()
        raise UserError(f"dot failed to draw .{fmt}: {detail[0] if detail else exc}") from None


def write(digraph, out: str | os.PathLike) -> None:
    """Write the picture to ``out`` in the format of its suffix, atomically."""
    atomic_write(out, image_bytes(digraph, output_format(out)))
