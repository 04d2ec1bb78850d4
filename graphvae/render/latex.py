"""The model's math as a LaTeX fragment: the factorisation of q and p, and the objective.

``graphvae render SPEC --latex`` prints what :func:`to_latex` returns.  The fragment
compiles inside a plain document that loads ``amsmath`` (no other package): the
expectation is written ``\\mathrm{E}`` so that ``amssymb`` is not needed.

Choices, documented here and in the fragment's header comment:

* Deterministic nodes (``h | x = mlp(256)``) are folded into the conditioning sets of
  the factors that read them, so ``y | z, h`` with ``h | x`` reads ``q(y \\mid x, z)``;
  a line after the factorisation names each one as a function, ``h = \\mathrm{mlp}(x)``.
* Conditioning sets list variables in their declaration order; factors follow a
  topological order of their block that keeps the source order where it is free.
* The supervised term is exact when no supervised variable's q factor conditions on a
  latent.  Otherwise q(y|x) has no closed form and the term is the importance-sampled
  one of Siddharth et al. (2017): proposals from the latents' own q factors (labels
  clamped), weights the labels' q factors, and q(y|x) their average over S samples.
* ``beta v = b`` multiplies the log-ratio ``log p(v|..)/q(v|..)`` in the ELBO, which in
  expectation is ``-b KL``; betas of 1 are not written.

Nothing here imports torch.
"""

from __future__ import annotations

import re

import networkx as nx

from graphvae.spec import printers
from graphvae.spec.estimators import ESTIMATORS, estimator_call
from graphvae.spec.graph import decoder_graph, encoder_graph, topological_order
from graphvae.spec.ir import Factor, Spec
from graphvae.spec.settings import objective_setting

HEADER = (
    "% Needs only \\usepackage{amsmath}.  Deterministic nodes are folded into the\n"
    "% conditioning sets of the factors that read them."
)


# -- names ---------------------------------------------------------------------------
def tex_name(name: str) -> str:
    """A variable name in math mode: ``z`` -> ``z``, ``z1`` -> ``z_{1}``, ``y_digit`` ->
    ``y_{\\mathrm{digit}}``, ``style`` -> ``\\mathrm{style}``."""
    if re.fullmatch(r"[A-Za-z]", name):
        return name
    m = re.fullmatch(r"([A-Za-z])(\d+)", name)
    if m:
        return f"{m.group(1)}_{{{m.group(2)}}}"
    m = re.fullmatch(r"([A-Za-z])_([A-Za-z0-9]+)", name)
    if m:
        sub = m.group(2) if m.group(2).isdigit() else "\\mathrm{" + m.group(2) + "}"
        return f"{m.group(1)}_{{{sub}}}"
    return "\\mathrm{" + name.replace("_", "\\_") + "}"


def tex_text(text: str) -> str:
    """Escape text for LaTeX text mode (names of models, estimators, networks)."""
    out = []
    for ch in str(text):
        if ch in "#$%&_{}":
            out.append("\\" + ch)
        elif ch.isalnum() or ch in " .,;:()+-=/*'!?[]<>@|":
            out.append(ch)
        else:
            out.append("?")
    return "".join(out)


def tex_number(value) -> str:
    if isinstance(value, bool):
        return "\\text{" + ("true" if value else "false") + "}"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if isinstance(value, (int, float)):
        return repr(value) if "e" not in repr(value) else f"{value:g}"
    return "\\text{" + tex_text(value) + "}"


# -- the structure of one block ------------------------------------------------------
class Block:
    """The factors of q (encoder) or p (decoder), over :mod:`graphvae.spec.graph`'s DiGraph,
    with deterministic nodes folded into the conditioning sets."""

    def __init__(self, spec: Spec, block: str):
        self.spec = spec
        self.block = block
        self.letter = "q" if block == "encoder" else "p"
        self.graph = encoder_graph(spec) if block == "encoder" else decoder_graph(spec)
        self.rank = {v.name: i for i, v in enumerate(spec.variables)}

    @property
    def factors(self) -> list[Factor]:
        return [f for f in (self.graph.nodes[n]["factor"] for n in self.graph) if f is not None]

    def factor(self, name: str) -> Factor | None:
        return self.graph.nodes[name]["factor"] if name in self.graph else None

    def _sort(self, names) -> list[str]:
        return sorted(set(names), key=lambda n: (self.rank.get(n, len(self.rank)), n))

    def given(self, name: str) -> list[str]:
        """The variables factor ``name`` conditions on, deterministic parents replaced by theirs."""
        found: list[str] = []
        seen: set[str] = set()
        stack = list(self.graph.predecessors(name)) if name in self.graph else []
        while stack:
            parent = stack.pop()
            if parent in seen:
                continue
            seen.add(parent)
            if self.graph.nodes[parent]["kind"] == "deterministic":
                stack.extend(self.graph.predecessors(parent))
            else:
                found.append(parent)
        return self._sort(found)

    def order(self) -> list[Factor]:
        """All factors in a topological order that keeps the source order where free."""
        try:
            names = topological_order(self.graph)
        except nx.NetworkXUnfeasible:  # a cycle: validation reports it; keep the source order
            names = list(self.graph)
        return [f for f in (self.factor(n) for n in names) if f is not None]

    def stochastic(self) -> list[Factor]:
        return [f for f in self.order() if not f.deterministic]

    def deterministic(self) -> list[Factor]:
        return [f for f in self.order() if f.deterministic]

    def variables(self) -> list[str]:
        """Names of the variables this block has a factor for, in declaration order."""
        return self._sort(f.name for f in self.factors if not f.deterministic)

    def inputs(self) -> list[str]:
        """Variables the block conditions on without having a factor for them (x in q)."""
        return self._sort(n for n in self.graph if self.factor(n) is None)

    def term(self, name: str, given=None, sampled=frozenset(), drop=frozenset()) -> str:
        """``q(y \\mid x, z^{(s)})``: one factor, sampled variables marked ``^{(s)}``."""
        parents = [p for p in (self.given(name) if given is None else given) if p not in drop]
        return self.letter + "(" + tex_name(name) + _bar(parents, sampled) + ")"


def _names(names, sampled=frozenset()) -> str:
    return ", ".join(tex_name(n) + ("^{(s)}" if n in sampled else "") for n in names)


def _bar(given, sampled=frozenset()) -> str:
    return f" \\mid {_names(given, sampled)}" if given else ""


def joint(letter: str, names, given=()) -> str:
    return f"{letter}({_names(names)}{_bar(given)})"


def factorisation(spec: Spec, block: str) -> str:
    """``q(y, z \\mid x) = q(y \\mid x)\\, q(z \\mid x, y)`` for ``block`` "encoder" or "decoder";
    a plate's factors are written once, under a product over its slots."""
    b = encoder(spec) if block == "encoder" else decoder(spec)
    lhs = joint(b.letter, b.variables(), b.inputs())
    terms, done = [], set()
    for f in b.stochastic():
        if f.slot is None or f.shared is None:
            terms.append(b.term(f.name))
        elif f.slot.plate not in done:
            done.add(f.slot.plate)
            terms.append(_plate_product(spec, b, f.slot.plate))
    rhs = "\\, ".join(terms) or "1"
    return f"{lhs} = {rhs}"


def _slot_tex(text: str, sizes: dict[str, int], plate_of: dict[str, str]) -> str:
    """``y[k]`` -> ``{y}_{k}``, ``z[k-1]`` -> ``{z}_{k-1}``, ``y[*]`` -> ``{y}_{0:K-1}``, ``y[0]`` -> ``{y}_{0}``."""
    m = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)\[(.*)\]", text)
    if m is None:
        return tex_name(text)
    base, index = m.groups()
    if index == "*":
        index = f"0:{sizes[plate_of[base]] - 1}" if base in plate_of else index
    return f"{{{tex_name(base)}}}_{{{index}}}"


def _folded(parents, factors: dict[str, Factor]) -> list[str]:
    """Written parents with deterministic nodes replaced by what they read, as :meth:`Block.given` does."""
    out: list[str] = []
    for p in parents:
        node = factors.get(p)
        more = _folded(node.parents, factors) if node is not None and node.deterministic else [p]
        out += [m for m in more if m not in out]
    return out


def _plate_product(spec: Spec, b: Block, plate: str) -> str:
    """``\\prod_{k=0}^{K-1} q(y_k | x, z_{k-1})\\, q(z_k | x, y_k)``: each factor of the plate once."""
    written = spec.as_written
    sizes = {p.name: int(p.size) for p in spec.plates}
    plate_of = {v.slot.base: v.slot.plate for v in spec.variables if v.slot is not None}
    factors = {f.name: f for f in (written.encoder if b.block == "encoder" else written.decoder)}
    seen, terms = set(), []
    for f in b.stochastic():
        if f.slot is None or f.slot.plate != plate or f.shared in seen:
            continue
        seen.add(f.shared)
        w = factors.get(f.shared)
        given = [_slot_tex(p, sizes, plate_of) for p in _folded(w.parents if w else (), factors)]
        bar = " \\mid " + ", ".join(given) if given else ""
        terms.append(f"{b.letter}({_slot_tex(f.shared, sizes, plate_of)}{bar})")
    count = spec.plate(plate).count
    mask = f"^{{[{plate} < {tex_name(count)}]}}" if count else ""  # an absent slot's factors count as 1
    product = f"\\prod_{{{plate}=0}}^{{{sizes[plate] - 1}}} "
    joined = "\\, ".join(terms)
    return product + (joined if len(terms) == 1 and not mask else f"\\big[{joined}\\big]{mask}")


def encoder(spec: Spec) -> Block:
    return Block(spec, "encoder")


def decoder(spec: Spec) -> Block:
    return Block(spec, "decoder")


def net_text(factor: Factor) -> str:
    return f"\\mathrm{{{tex_text(factor.net.kind if factor.net else 'f')}}}"


# -- the objective ---------------------------------------------------------------------
TERMS_PER_LINE = 3  # terms of an expanded log-ratio per line of the align


def _bracket(spec: Spec, q: Block, p: Block) -> list[str]:
    """The log-ratio inside the expectations: ``[\\log p(x, y, z) / q(y, z | x)]``, or, when a
    latent has a KL weight, one term per factor of p with ``\\beta_v`` on latent v's ratio."""
    hidden, observed = q.variables(), q.inputs()
    weighted = {v for v in hidden if spec.objective.beta(v) != 1.0 and spec.variable(v).role == "latent"}
    if not weighted:
        return [f"\\log \\frac{{{joint('p', p.variables())}}}{{{joint('q', hidden, observed)}}}"]
    parts = []
    for f in p.stochastic():
        if f.name in hidden:
            coef = f"\\beta_{{{tex_name(f.name)}}} " if f.name in weighted else ""
            parts.append(f"{coef}\\log \\frac{{{p.term(f.name)}}}{{{q.term(f.name)}}}")
        else:
            parts.append(f"\\log {p.term(f.name)}")
    return parts


def _expectation(lhs: str, under: str, terms: list[str], tail: str = "") -> list[str]:
    """``lhs &= E_under[terms] tail`` as align lines; a long sum of terms breaks every
    :data:`TERMS_PER_LINE` terms (``\\bigg`` brackets may span lines, ``\\left`` ones may not)."""
    expect = f"\\mathrm{{E}}_{{{under}}}"
    if len(terms) == 1:
        return [f"{lhs} &= {expect}\\left[{terms[0]}\\right]{tail}"]
    chunks = [" + ".join(terms[i:i + TERMS_PER_LINE]) for i in range(0, len(terms), TERMS_PER_LINE)]
    lines = [f"{lhs} &= {expect}\\bigg[{chunks[0]}"] + [f"&\\qquad + {c}" for c in chunks[1:]]
    lines[-1] += "\\bigg]"
    if tail:
        lines.append(f"&\\qquad{tail}")
    return lines


def _elbo(spec: Spec, q: Block, p: Block) -> list[str]:
    return _expectation(f"\\mathcal{{L}}({_names(q.inputs())})", joint("q", q.variables(), q.inputs()),
                        _bracket(spec, q, p))


def _weight(spec: Spec) -> str:
    """The weight of a labelled example's log q(y|x) beyond its ELBO, as alpha_scaling makes it."""
    scaling = objective_setting(spec.objective, "alpha_scaling")
    if scaling == "dataset":
        return "\\alpha \\frac{N}{N_{\\mathrm{labelled}}}"
    if scaling == "labelled_fraction":
        return "\\alpha \\frac{B}{B_{\\mathrm{labelled}}}"
    return "\\alpha"


def _supervised(spec: Spec, q: Block, p: Block) -> tuple[list[str], bool]:
    """Lines of the labelled-example term, and whether it is importance-sampled."""
    labels = [v.name for v in spec.supervised if v.name in q.variables()]
    latents = [n for n in q.variables() if n not in labels]
    observed = q.inputs()
    lhs = f"\\mathcal{{L}}({_names(observed + labels)})"
    bracket = _bracket(spec, q, p)
    post = joint("q", latents, observed + labels)
    q_y = joint("q", labels, observed)
    sampled_labels = [y for y in labels if set(q.given(y)) & set(latents)]
    if not sampled_labels:
        if len(bracket) > 1:  # the compiled form, with the KL weights inside
            lines = _expectation(lhs, post, bracket, f" + (1 + {_weight(spec)}) \\log {q_y}")
        else:  # the same value, in Kingma et al.'s form
            p_all = joint("p", p.variables())
            lines = [f"{lhs} &= \\mathrm{{E}}_{{{post}}}\\left[\\log \\frac{{{p_all}}}{{{post}}}\\right]"
                     f" + {_weight(spec)} \\log {q_y}"]
        if len(latents) > 1:
            lines.append(f"{post} &= " + "\\, ".join(q.term(z) for z in latents))
        if len(labels) > 1:
            lines.append(f"{q_y} &= " + "\\, ".join(q.term(y) for y in labels))
        return lines, False
    sampled = frozenset(latents)
    weight = "\\, ".join(q.term(y, sampled=sampled) for y in sampled_labels)
    exact = "".join(q.term(y) + "\\, " for y in labels if y not in sampled_labels)
    proposal = "\\, ".join(q.term(z) for z in latents)
    lines = _expectation(lhs, post, bracket, f" + (1 + {_weight(spec)}) \\log {q_y}") + [
        f"\\mathrm{{E}}_{{{post}}}\\left[f({_names(latents)})\\right] &\\approx \\sum_{{s=1}}^{{S}} "
        f"\\frac{{w_s}}{{\\sum_{{s'=1}}^{{S}} w_{{s'}}}}\\, f({_names(latents, sampled)}), \\quad w_s = {weight}",
        f"{q_y} &\\approx {exact}\\frac{{1}}{{S}} \\sum_{{s=1}}^{{S}} {weight}",
        f"{_names(latents, sampled)} &\\sim {proposal}",
    ]
    return lines, True


def _estimator_items(spec: Spec, q: Block) -> list[str]:
    items = []
    for name in q.variables():
        found = estimator_call(spec, name)
        if found is None:
            continue
        (method, default), v = found, tex_name(name)
        est = ESTIMATORS.get(method.name)
        if est is not None:
            how = est.describe_latex(q.term(name), v, method, tex_number)
        else:
            how = "\\texttt{" + tex_text(printers.call(method, short=True)) + "}"
        if default:
            how += " (the default: the objective names no estimator)"
        items.append(f"\\item ${v}$: {how}")
    return items


def objective(spec: Spec) -> str:
    """The objective as LaTeX: the ELBO, the supervised term, settings and estimators."""
    q, p = encoder(spec), decoder(spec)
    obj = spec.objective
    observed = q.inputs()
    labels = [v.name for v in spec.supervised if v.name in q.variables()]
    out = [f"Unlabelled examples (${_names(observed)}$ only) maximise the ELBO",
           "\\begin{align*}", *_join(_elbo(spec, q, p)), "\\end{align*}"]
    samples = objective_setting(obj, "samples")
    settings = [f"$S = {tex_number(samples)}$ sample{'' if samples == 1 else 's'} per example"]
    settings += [f"$\\beta_{{{tex_name(b.var)}}} = {tex_number(b.value)}$"
                 for b in obj.betas if float(b.value) != 1.0]
    if labels:
        lines, sampled = _supervised(spec, q, p)
        word = "importance-sampled, since a label follows a latent in $q$" if sampled else "exact"
        out += [f"Labelled examples (${_names(observed + labels)}$) maximise the supervised term ({word})",
                "\\begin{align*}", *_join(lines), "\\end{align*}"]
        alpha, scaling = objective_setting(obj, "alpha"), objective_setting(obj, "alpha_scaling")
        scale = {"per_example": "once per labelled example",
                 "labelled_fraction": "times the batch's examples $B$ per labelled one",
                 "dataset": "times the training set's examples $N$ per labelled one"}.get(scaling, tex_text(scaling))
        settings.insert(0, f"$\\alpha = {tex_number(alpha)}$ ({scale})")
        total = (f"\\mathcal{{J}} = \\sum_{{{_names(observed)} \\in \\mathcal{{U}}}} \\mathcal{{L}}({_names(observed)})"
                 f" + \\sum_{{({_names(observed + labels)}) \\in \\mathcal{{S}}}} "
                 f"\\mathcal{{L}}({_names(observed + labels)})")
        out.append(f"The objective is ${total}$, over unlabelled $\\mathcal{{U}}$ and labelled $\\mathcal{{S}}$ data,")
    out.append("with " + ", ".join(settings) + ".")
    items = _estimator_items(spec, q)
    if items:
        out += ["Estimators of the discrete variables:", "\\begin{itemize}", *items, "\\end{itemize}"]
    return "\n".join(out)


def _join(lines: list[str]) -> list[str]:
    return [line + (" \\\\" if i < len(lines) - 1 else "") for i, line in enumerate(lines)]


def deterministic_note(spec: Spec, blocks) -> str | None:
    defs = []
    for b in blocks:
        shared = set()
        for f in b.deterministic():
            if f.shared is not None and f.slot is not None:  # a plate's node: once, with its index
                if f.shared not in shared:
                    shared.add(f.shared)
                    sizes = {p.name: int(p.size) for p in spec.plates}
                    plate_of = {v.slot.base: v.slot.plate for v in spec.variables if v.slot is not None}
                    plate_of[f.slot.base] = f.slot.plate
                    w = {g.name: g for g in spec.as_written.encoder + spec.as_written.decoder}.get(f.shared)
                    args = ", ".join(_slot_tex(p, sizes, plate_of) for p in (w.parents if w else ()))
                    defs.append(f"${_slot_tex(f.shared, sizes, plate_of)} = {net_text(f)}({args})$")
                continue
            defs.append(f"${tex_name(f.name)} = {net_text(f)}({_names(b._sort(f.parents))})$")
    if not defs:
        return None
    return "where " + ", ".join(defs) + (" is" if len(defs) == 1 else " are") + " deterministic."


def to_latex(spec: Spec, only: str | None = None) -> str:
    """The whole fragment: header comment, factorisations, and (unless ``only``) the objective."""
    blocks = [b for b in ("encoder", "decoder") if only in (None, b)]
    out = [f"% graphvae render --latex: model {spec.name}", HEADER]
    which = {"encoder": "the encoder $q$", "decoder": "the decoder $p$"}
    out.append(f"\\noindent Model \\texttt{{{tex_text(spec.name)}}}: "
               + " and ".join(which[b] for b in blocks) + (" factorise" if len(blocks) > 1 else " factorises")
               + " as")
    out += ["\\begin{align*}", *_join([factorisation(spec, b).replace(" = ", " &= ", 1) for b in blocks]),
            "\\end{align*}"]
    note = deterministic_note(spec, [encoder(spec) if b == "encoder" else decoder(spec) for b in blocks])
    if note:
        out.append(note)
    if only is None:
        out += ["", objective(spec)]
    return "\n".join(out) + "\n"
