"""The text ``graphvae compile SPEC`` prints: nodes, networks, factorisation, objective."""

from __future__ import annotations

import networkx as nx

from graphvae.compile import distributions as dists
from graphvae.compile.factor import FactorModule
from graphvae.compile.nets import parameter_count
from graphvae.spec import printers
from graphvae.spec.estimators import ESTIMATORS, support_size
from graphvae.spec.graph import encoder_graph
from graphvae.spec.ir import Factor, Net, Spec
from graphvae.spec.networks import image_shape, node_width


def _value_text(spec: Spec, name: str) -> str:
    v = spec.variable(name)
    if v.domain == "categorical":
        dims = ", ".join(["B"] + [str(d) for d in v.value_shape]) + ("," if not v.value_shape else "")
        return f"({dims}) class index; one-hot width {v.size} as a network input"
    return "(" + ", ".join(["B"] + [str(d) for d in v.shape]) + ")"


def _table(rows: list[list[str]], indent: str = "  ", numeric_last: bool = False) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for r in rows:
        last = len(r) - 1
        cells = [c.rjust(w) if i == last and numeric_last else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))]
        out.append(indent + "  ".join(cells).rstrip())
    return out


def _factorisation(spec: Spec, block: tuple[Factor, ...], letter: str) -> str:
    observed = [v.name for v in spec.observed]
    stochastic = [f for f in block if not f.deterministic]
    defined = {f.name for f in stochastic}
    names = [v.name for v in spec.variables if v.name in defined and (v.name not in observed or letter == "p")]
    head = f"{letter}({', '.join(names)}" + (f" | {', '.join(observed)})" if letter == "q" else ")")
    factors = " ".join(f"{letter}({printers.given(f.name, f.parents)})" for f in stochastic)
    det = [f"{f.name} = {printers.net(f.net, compact=True)}({', '.join(f.parents)})" for f in block if f.deterministic]
    return f"{head} = {factors}" + (f",  where {'; '.join(det)}" if det else "")


def report(model, seconds: float | None = None) -> str:
    spec: Spec = model.spec
    lines = [f"model {spec.name}  ({spec.path})" + (f"  compiled in {seconds:.3f} s" if seconds is not None else ""), ""]
    lines.append("nodes")
    rows = [[v.name, v.role, f"{v.domain}[{', '.join(map(str, v.shape))}]", _value_text(spec, v.name)]
            for v in spec.variables]
    variables = {v.name: v for v in spec.variables}
    for block, factors in (("q", spec.encoder), ("p", spec.decoder)):
        nodes = {f.name: f for f in factors if f.deterministic}
        for f in factors:
            if f.deterministic:
                shape = image_shape(f.name, variables, nodes) if f.net.kind == "erase" else None
                value = ", ".join(map(str, shape)) if shape else node_width(f.net) if f.net.hidden else "?"
                rows.append([f.name, f"deterministic in {block}", f"{printers.net(f.net, compact=True)}",
                             f"(B, {value})"])
    lines += _table(rows) + [""]

    lines.append("networks")
    rows = [["", "factor", "family", "network -> parameters", "parameters"]]
    total = 0
    first_of: dict[int, str] = {}  # a plate's copies share one module: counted once, at its first copy
    for letter, block, modules in (("q", spec.encoder, model.encoder), ("p", spec.decoder, model.decoder)):
        for f in block:
            module = modules[f.name]
            if id(module) in first_of:
                rows.append([letter, f"{printers.given(f.name, f.parents)} {'=' if f.deterministic else '~'}",
                             "shared", f"the network of {first_of[id(module)]} ({f.shared})", "0"])
                continue
            first_of[id(module)] = f.name
            n = parameter_count(module)
            total += n
            if f.deterministic:
                rows.append([letter, f"{printers.given(f.name, f.parents)} =", "deterministic",
                             f"{printers.net(f.net, compact=True)} -> {f.name}[{module.out_features}]", f"{n:,}"])
                continue
            assert isinstance(module, FactorModule)
            parts = []
            arg_nets = [p.value for p in f.dist.params if isinstance(p.value, Net)]
            for (key, net), ir_net in zip(module.nets.items(), arg_nets):
                blocks = ", ".join(f"{p}[{', '.join(map(str, module.shape))}]" for p in key.split("+"))
                parts.append(f"{printers.net(ir_net, compact=True)} -> {blocks}")
            parts += [f"{p} = {getattr(module, f'literal_{p}').flatten()[0].item():g}" for p in module.literal_names]
            rows.append([letter, f"{printers.given(f.name, f.parents)} ~", f.dist.family, "; ".join(parts), f"{n:,}"])
    rows.append(["", "total", "", "", f"{total:,}"])
    lines += _table(rows, numeric_last=True) + [""]

    lines.append("factorisation")
    lines.append("  " + _factorisation(spec, spec.encoder, "q"))
    lines.append("  " + _factorisation(spec, spec.decoder, "p"))
    lines.append("")
    lines += _objective_lines(model)
    return "\n".join(lines) + "\n"


def _objective_lines(model) -> list[str]:
    spec: Spec = model.spec
    cfg = model.config
    x = ", ".join(v.name for v in spec.observed)
    hidden = list(model.objective.hidden)
    sup = [v.name for v in spec.supervised]
    lines = ["objective  (maximised; loss = - mean over the batch)"]
    all_h = ", ".join(hidden)
    lines.append(f"  unlabelled:  U({x}) = E_q({all_h} | {x}) [ log p({x}, {all_h}) - log q({all_h} | {x}) ]")
    g = encoder_graph(spec)
    stochastic = set(model.methods)
    for y in sup:
        rest = ", ".join(h for h in hidden if h != y) or "-"
        lines.append(f"  labelled {y}:  L({x}, {y}) = E_q({rest} | {x}, {y}) [ log p({x}, {all_h}) - log q({all_h} | {x}) ]"
                     f" + (1 + alpha) log q({y} | {x})")
        before = sorted(a for a in nx.ancestors(g, y) if a in stochastic)
        if before:
            lines.append(f"      {y} comes after {', '.join(before)} in q: q({y} | {x}) ~= log-mean-exp over S = {cfg.samples}"
                         f" samples of q({y} | {', '.join(before)}, ...); E_q(. | {x}, {y}) self-normalised by those weights")
        else:
            lines.append(f"      {y} has no latent ancestor in q: q({y} | {x}) is exact")
    lines.append(f"  classifier weight ({cfg.alpha_scaling}): {model.objective.alpha_text()}; S = {cfg.samples} "
                 "sample(s) per example")
    betas = {v: b for v, b in model.objective.betas.items() if b != 1.0}
    if betas:
        lines.append("  KL weights: " + ", ".join(f"beta {v} = {b:g}" for v, b in betas.items())
                     + " multiply log q - log p of those latents")
    lines.append("  estimators")
    rows = []
    for name in model.q_order:
        if name not in model.methods:
            continue
        node = model.nodes[name]
        v = node.var
        relax = dists.relaxation(node.family)
        text = ESTIMATORS[node.estimator].describe(support_size(v), relax.density if relax else "", node.options)
        method = node.estimator
        when = " (when unlabelled)" if v.role == "supervised" else ""
        rows.append([name, method, text + when])
    lines += _table(rows, indent="    ") if rows else ["    (none)"]
    return lines
