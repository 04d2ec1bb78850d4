"""The YAML front end: ``.yaml`` text -> :class:`graphvae.spec.ir.Spec` plus diagnostics.

The text is *composed* (parsed to PyYAML's node tree) with the safe loader and
never constructed as a whole: :class:`SpecReader` reads each node
(:mod:`graphvae.spec.yaml_nodes` holds the typed, positioned reading), so every key and
value keeps its position and no tag can build a Python object.

Structural problems (a missing ``model``, an unknown key such as ``givn``, a
mapping where a list belongs, a duplicated key) are diagnostics with positions,
all collected.  Unless the YAML itself does not parse, a best-effort spec is
returned with them so validation can report the rest at once.
"""

from __future__ import annotations

import re

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode

from graphvae.spec import errorcodes as codes
from graphvae.spec.binding import canonical_params
from graphvae.spec.diagnostics import Diagnostic, error
from graphvae.spec.ir import (Beta, Call, Dist, Estimator, Factor, Net, Objective, Option, Param, Plate, Setting, Span,
                              Spec, Uniform, Variable)
from graphvae.spec.settings import SETTINGS
from graphvae.spec.yaml_nodes import MAX_EXPANDED_NODES, TAG, NodeReader, alias_growth, bad_tags, syntax_error

__all__ = ["load_yaml", "TOP_KEYS", "VARIABLE_KEYS", "FACTOR_KEYS", "OBJECTIVE_KEYS"]

TOP_KEYS = ("model", "plates", "variables", "encoder", "decoder", "objective", "train")
PLATE_KEYS = ("size", "count")
VARIABLE_KEYS = ("role", "domain", "shape", "classes", "plate")
FACTOR_KEYS = ("given", "dist", "net", "args", "params")
OBJECTIVE_KEYS = tuple(SETTINGS["objective"]) + ("estimators", "beta")
BOM = "\ufeff"
_DEEP = re.compile(r"(?:[\[{][ \t]*){100}|(?:- ){100}")  # 100 lists or mappings opened in a row



class SpecReader(NodeReader):
    """Reads the node tree into IR objects, collecting diagnostics."""

    # -- variables ------------------------------------------------------------------------
    def variable(self, name: str, key: Node, node: Node) -> Variable | None:
        where = f"variable '{name}'"
        fields = {k: v for k, _, v in self.pairs(node, where, VARIABLE_KEYS)}
        for required in ("role", "domain"):
            if required not in fields and isinstance(node, MappingNode):
                self.report(codes.MISSING_KEY, f"{where} has no '{required}'", key)
        role = self.name(fields["role"], f"the role of {where}") if "role" in fields else None
        domain = self.name(fields["domain"], f"the domain of {where}") if "domain" in fields else None
        shape: tuple[int, ...] = ()
        if "shape" in fields and "classes" in fields:
            self.report(codes.CONFLICTING_KEYS, f"{where} gives both 'shape' and 'classes' (classes: K means "
                                            "shape: [K])", fields["classes"])
        elif "shape" in fields:
            dims = [self.number(d, f"the shape of {where}", whole=True) for d in
                    self.items(fields["shape"], f"the shape of {where}")]
            shape = tuple(d for d in dims if d is not None)
        elif "classes" in fields:
            k = self.number(fields["classes"], f"the classes of {where}", whole=True)
            shape = (k,) if k is not None else ()
        indices: tuple[str, ...] = ()
        if "plate" in fields:
            indices = tuple(p for p in (self.name(item, f"the plate of {where}")
                                        for item in self.items(fields["plate"], f"the plate of {where}")) if p)
        if role is None or domain is None:
            return None
        return Variable(name, role, domain, shape, self.span(key, node),
                        self.span(fields["role"]), self.span(fields["domain"]), indices)

    # -- plates ---------------------------------------------------------------------------
    def plates(self, node: Node) -> tuple[Plate, ...]:
        """``plates: {k: {size: 3, count: n}}``: each plate by its name (its index)."""
        out = []
        for name, key, value in self.pairs(node, "the plates", duplicates_ok=True):
            where = f"plate '{name}'"
            fields = {k: v for k, _, v in self.pairs(value, where, PLATE_KEYS)}
            size = size_span = count = count_span = None
            if "size" in fields:
                literal = self.literal(fields["size"], f"the size of {where}")
                size = None if literal is ... else literal
                size_span = self.span(fields["size"])
            if "count" in fields:
                count = self.name(fields["count"], f"the count of {where}")
                count_span = self.span(fields["count"])
            out.append(Plate(name, size, count, self.span(key, value), size_span, count_span))
        return tuple(out)

    # -- networks and families ------------------------------------------------------------
    def net(self, node: Node, where: str) -> Net | None:
        """``linear``, ``{mlp: [500, 500], activation: relu}``, ``{linear: 64}``: the first key names the network."""
        if isinstance(node, ScalarNode):
            kind = self.name(node, where)
            return Net(kind, (), (), self.span(node)) if kind else None
        entries = self.pairs(node, where)
        if not entries:
            if isinstance(node, MappingNode):
                self.wrong(node, "a network such as 'linear' or {mlp: [500]}", where)
            return None
        (kind, _, widths_node), options = entries[0], entries[1:]
        hidden: list[int] = []
        if not (isinstance(widths_node, ScalarNode) and self.scalar(widths_node, where) is None):
            for item in self.items(widths_node, f"the widths of '{kind}' in {where}"):
                width = self.number(item, f"a width of '{kind}' in {where}", whole=True)
                if width is not None:
                    hidden.append(width)
        opts = []
        for name, key, value in options:
            v = self.literal(value, f"option '{name}' of '{kind}' in {where}")
            if v is not ...:
                opts.append(Option(name, v, self.span(key, value)))
        return Net(kind, tuple(hidden), tuple(opts), self.span(node))

    def arg_value(self, node: Node, where: str):
        """A family argument: a number, ``uniform``, or a network."""
        if isinstance(node, ScalarNode) and node.tag in (TAG + "int", TAG + "float"):
            value = self.number(node, where)
            return ... if value is None else value
        if isinstance(node, ScalarNode) and node.tag in (TAG + "bool", TAG + "null"):
            self.wrong(node, "a number, 'uniform' or a network", where)
            return ...
        if isinstance(node, ScalarNode) and node.value == "uniform":
            return Uniform(self.span(node))
        net = self.net(node, where)
        return ... if net is None else net

    def dist(self, family: str, fields: dict[str, tuple[Node, Node]], where: str, span: Span) -> Dist:
        params: list[Param] = []
        if "net" in fields:
            key, node = fields["net"]
            value = self.net(node, f"the network of {where}")
            if value is not None:
                params.append(Param(None, value, self.span(key, node)))
        for field in ("args", "params"):
            if field not in fields:
                continue
            key, node = fields[field]
            if isinstance(node, MappingNode) and field == "params":
                for name, pkey, value in self.pairs(node, f"the parameters of {where}"):
                    v = self.arg_value(value, f"parameter '{name}' of {where}")
                    if v is not ...:
                        params.append(Param(name, v, self.span(pkey, value)))
                continue
            for item in self.items(node, f"the {field} of {where}"):
                v = self.arg_value(item, f"an argument of {where}")
                if v is not ...:
                    params.append(Param(None, v, self.span(item)))
        return Dist(family, canonical_params(family, tuple(params)), span)

    def factor(self, block: str, name: str, key: Node, node: Node) -> Factor | None:
        where = f"the {block} factor of '{name}'"
        entries = self.pairs(node, where, FACTOR_KEYS)
        fields = {k: (kn, v) for k, kn, v in entries}
        parents, parent_spans = [], []
        if "given" in fields:
            for item in self.items(fields["given"][1], f"the parents of {where}"):
                parent = self.ref(item, f"a parent in {where}")
                if parent is not None:
                    parents.append(parent)
                    parent_spans.append(self.span(item))
        span, name_span = self.span(key, node), self.span(key)
        if "dist" in fields:
            family = self.name(fields["dist"][1], f"the family of {where}")
            if family is None:
                return None
            dist = self.dist(family, fields, where, self.span(fields["dist"][1], node))
            return Factor(name, tuple(parents), dist, None, span, name_span, tuple(parent_spans))
        for extra in ("args", "params"):
            if extra in fields:
                self.report(codes.MISSING_KEY, f"{where} has '{extra}' but no 'dist' (a deterministic node has "
                                           "only 'given' and 'net')", fields[extra][0])
        if "net" not in fields:
            if isinstance(node, MappingNode):
                self.report(codes.MISSING_KEY, f"{where} needs 'dist' (a random variable) or 'net' (a deterministic "
                                           "node)", key)
            return None
        net = self.net(fields["net"][1], f"the network of {where}")
        if net is None:
            return None
        return Factor(name, tuple(parents), None, net, span, name_span, tuple(parent_spans))

    def block(self, block: str, node: Node) -> tuple[Factor, ...]:
        factors = []
        for name, key, value in self.pairs(node, f"the {block}", duplicates_ok=True, refs=True):
            factor = self.factor(block, name, key, value)
            if factor is not None:
                factors.append(factor)
        return tuple(factors)

    # -- objective and train --------------------------------------------------------------
    def call(self, node: Node, where: str) -> Call | None:
        """``enumerate`` or ``{relax: {temperature: 0.66}}``."""
        if isinstance(node, ScalarNode):
            method = self.name(node, where)
            return Call(method, (), self.span(node)) if method else None
        entries = self.pairs(node, where)
        if len(entries) != 1:
            if isinstance(node, MappingNode):
                self.wrong(node, "one method, e.g. enumerate or {relax: {temperature: 0.66}}", where)
            return None
        method, _, options_node = entries[0]
        options = []
        if not (isinstance(options_node, ScalarNode) and self.scalar(options_node, where) is None):
            for name, key, value in self.pairs(options_node, f"the options of '{method}' in {where}"):
                v = self.literal(value, f"option '{name}' in {where}")
                if v is not ...:
                    options.append(Option(name, v, self.span(key, value)))
        return Call(method, tuple(options), self.span(node))

    def objective(self, key: Node, node: Node) -> Objective:
        settings, estimators, betas = [], [], []
        for name, k, value in self.pairs(node, "the objective", OBJECTIVE_KEYS):
            if name == "estimators":
                for var, vk, vv in self.pairs(value, "the estimators", duplicates_ok=True):
                    method = self.call(vv, f"the estimator of '{var}'")
                    if method is not None:
                        estimators.append(Estimator(var, method, self.span(vk, vv)))
            elif name == "beta":
                for var, vk, vv in self.pairs(value, "the KL weights (beta)", duplicates_ok=True):
                    weight = self.number(vv, f"the KL weight of '{var}'")
                    if weight is not None:
                        betas.append(Beta(var, weight, self.span(vk, vv)))
            else:
                v = self.literal(value, f"the objective setting '{name}'")
                if v is not ...:
                    settings.append(Setting(name, v, self.span(k, value)))
        return Objective(tuple(sorted(settings, key=lambda s: s.name)), tuple(sorted(estimators, key=lambda e: e.var)),
                         tuple(sorted(betas, key=lambda b: b.var)), self.span(key))

    def train(self, node: Node) -> tuple[Setting, ...]:
        settings = []
        for name, key, value in self.pairs(node, "the train block", duplicates_ok=True):
            v = self.literal(value, f"the train setting '{name}'")
            if v is not ...:
                settings.append(Setting(name, v, self.span(key, value)))
        return tuple(settings)

    # -- the document ---------------------------------------------------------------------
    def spec(self, root: Node | None, text: str) -> Spec:
        top = {}
        if root is None:
            self.report(codes.MISSING_MODEL, "the spec is empty: it needs at least 'model: NAME'", None)
        else:
            top = {k: (kn, v) for k, kn, v in self.pairs(root, "the spec", TOP_KEYS)}
        name, span = "", None
        if "model" in top:
            key, node = top["model"]
            name = self.name(node, "the model name") or ""
            span = self.span(key, node)
        elif isinstance(root, MappingNode):
            self.report(codes.MISSING_MODEL, "the spec has no 'model: NAME'", root)
        plates = self.plates(top["plates"][1]) if "plates" in top else ()
        variables = []
        if "variables" in top:
            for vname, key, node in self.pairs(top["variables"][1], "the variables", duplicates_ok=True):
                var = self.variable(vname, key, node)
                if var is not None:
                    variables.append(var)
        enc = self.block("encoder", top["encoder"][1]) if "encoder" in top else ()
        dec = self.block("decoder", top["decoder"][1]) if "decoder" in top else ()
        objective = self.objective(*top["objective"]) if "objective" in top else Objective()
        train = self.train(top["train"][1]) if "train" in top else ()
        spans = {k: self.span(top[k][0]) for k in ("encoder", "decoder", "train") if k in top}
        return Spec(name, tuple(variables), enc, dec, objective, train, span, spans.get("encoder"),
                    spans.get("decoder"), spans.get("train"), path=self.path, source=text, plates=plates)


def load_yaml(text: str, path: str = "<string>") -> tuple[Spec | None, list[Diagnostic]]:
    """Read a YAML spec.  Returns ``(spec, diagnostics)``; the spec is None only when the
    text is not YAML (``syntax``: one error, or several documents) or uses a tag other
    than plain values, lists and mappings (``yaml-tag``).  Never raises for bad text."""
    if not isinstance(text, str):
        raise TypeError(f"load_yaml expects text (str), not {type(text).__name__}")
    text = text.removeprefix(BOM)  # as the DSL's parser does (PyYAML would skip it too, counting a column)
    deep = _DEEP.search(text)
    if deep:  # PyYAML would recurse until Python's limit, slowly; a spec nests a few levels
        line = text.count("\n", 0, deep.start()) + 1
        return None, [error(codes.TOO_LARGE, "the YAML document nests too deeply", Span(path, line, 1, line, 1))]
    try:
        roots = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError as exc:
        return None, [syntax_error(exc, path)]
    except RecursionError:  # PyYAML composes nested collections recursively
        return None, [error(codes.TOO_LARGE, "the YAML document nests too deeply", Span(path, 1, 1, 1, 1))]
    except ValueError as exc:  # e.g. control characters the reader rejects
        return None, [error(codes.SYNTAX, f"invalid YAML: {exc}", Span(path, 1, 1, 1, 1))]
    if len(roots) > 1:
        return None, [error(codes.SYNTAX, "a spec file holds one YAML document, found several ('---')",
                            Span(path, roots[1].start_mark.line + 1, 1, roots[1].start_mark.line + 1, 4))]
    root = roots[0] if roots else None
    bad = bad_tags(root, path)
    if bad:
        return None, bad
    if "&" in text and alias_growth(root) > MAX_EXPANDED_NODES:  # no anchor, no alias
        return None, [error(codes.TOO_LARGE, f"the YAML document's aliases expand it by more than "
                            f"{MAX_EXPANDED_NODES:,} nodes", Span(path, 1, 1, 1, 1))]
    walker = SpecReader(path)
    try:
        spec = walker.spec(root, text)
    except RecursionError:
        return None, [error(codes.TOO_LARGE, "the YAML document nests too deeply", Span(path, 1, 1, 1, 1))]
    return spec, list(dict.fromkeys(walker.diags))  # an aliased node is reported once
