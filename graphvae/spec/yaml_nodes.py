"""Reading PyYAML's node tree with positions: typed values, mappings, lists, tags, syntax errors (torch-free).

PyYAML marks are 0-based; they become 1-based :class:`~graphvae.spec.ir.Span` objects here, at
the boundary.  Scalars are converted by PyYAML's ``SafeConstructor``, one node at a time, and
only the plain YAML scalar, sequence and mapping tags are accepted, so no tag can build a
Python object.
"""

from __future__ import annotations

import math
import re

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from graphvae.spec import errorcodes as codes
from graphvae.spec.diagnostics import Diagnostic, did_you_mean, error
from graphvae.spec.ir import Span

TAG = "tag:yaml.org,2002:"
_SCALAR_TAGS = {TAG + t for t in ("str", "int", "float", "bool", "null", "timestamp")}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_REF = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\[(\*|[+-]?\d+|[A-Za-z_][A-Za-z0-9_]*([+-]\d+)?)\]")
_WHAT = {ScalarNode: "a single value", SequenceNode: "a list", MappingNode: "a mapping"}
_EXPLICIT_INF = re.compile(r"[-+]?\.(inf|Inf|INF)")  # YAML's own infinity, left to the constraints
MAX_WHOLE = 2**63 - 1  # as the DSL's (graphvae.spec.parser.MAX_WHOLE)
MAX_NUMBER_TEXT = 400  # a number written longer is out of range, whatever its digits
MAX_EXPANDED_NODES = 100_000  # nodes a document may reach through its aliases ("billion laughs")


def _shown(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else f"{text[:20]}...{text[-10:]}"


def number_too_large(text: str) -> str:
    """The message for a YAML number out of range (worded as the DSL's)."""
    shown = text if len(text) <= 24 else f"{text[:10]}...{text[-10:]} ({len(text):,} characters)"
    if _INT.fullmatch(text):
        return f"the whole number {shown} is too large: whole numbers are at most 2^63 - 1 ({MAX_WHOLE})"
    return f"the number {shown} is too large: numbers are at most about 1.8e308"


_INT = re.compile(r"[-+]?[0-9_:]+|[-+]?0x[0-9a-fA-F_]+|[-+]?0b[0-1_]+")


class NodeReader:
    """Reads values out of PyYAML nodes with their positions, collecting a diagnostic for each
    value of the wrong kind (the spec's schema is :class:`graphvae.spec.yaml_loader.SpecReader`'s)."""

    def __init__(self, path: str):
        self.path = path
        self.diags: list[Diagnostic] = []
        self.constructor = yaml.constructor.SafeConstructor()

    # -- positions and reporting ----------------------------------------------------------
    def span(self, node: Node, end: Node | None = None) -> Span:
        last = end or node
        return Span(self.path, node.start_mark.line + 1, node.start_mark.column + 1,
                    last.end_mark.line + 1, last.end_mark.column + 1)

    def report(self, code: str, message: str, node: Node | None, hint: str | None = None) -> None:
        span = self.span(node) if node is not None else Span(self.path, 1, 1, 1, 1)
        self.diags.append(error(code, message, span, hint))

    def wrong(self, node: Node, expected: str, where: str) -> None:
        found = _WHAT.get(type(node), "something else")
        if isinstance(node, ScalarNode):
            found = f"'{_shown(node.value)}'" if node.value else "nothing"
        self.report(codes.WRONG_TYPE, f"{where}: expected {expected}, found {found}", node)

    # -- typed readers --------------------------------------------------------------------
    def scalar(self, node: Node, where: str):
        """A plain value: str, int, float, bool or None; reports and returns ``...`` otherwise."""
        if not isinstance(node, ScalarNode):
            self.wrong(node, "a single value", where)
            return ...
        if node.tag == TAG + "timestamp":
            return node.value
        if node.tag in (TAG + "int", TAG + "float") and len(node.value) > MAX_NUMBER_TEXT:
            # read by its length alone: PyYAML's sexagesimal ints (1:30:00) cost quadratic time
            self.report(codes.NUMBER_RANGE, f"{where}: {number_too_large(node.value)}", node)
            return ...
        try:
            value = self.constructor.construct_object(node, deep=True)
        except Exception as exc:  # noqa: BLE001 - e.g. `!!bool 50` is a KeyError in PyYAML: any failure reads as one
            exc = exc if str(exc) and not isinstance(exc, KeyError) else f"not a {node.tag.replace(TAG, '')}"
            self.report(codes.WRONG_TYPE, f"{where}: cannot read '{_shown(node.value)}': {exc}", node)
            return ...
        if node.tag == TAG + "int" and isinstance(value, int) and abs(value) > MAX_WHOLE:
            self.report(codes.NUMBER_RANGE, f"{where}: {number_too_large(node.value)}", node)
            return ...
        if (node.tag == TAG + "float" and isinstance(value, float) and math.isinf(value)
                and not _EXPLICIT_INF.fullmatch(node.value)):
            self.report(codes.NUMBER_RANGE, f"{where}: {number_too_large(node.value)}", node)
            return ...
        return value

    def name(self, node: Node, where: str) -> str | None:
        """An identifier.  Keys read as written, so ``on`` or ``null`` are names here, not truth values."""
        if not isinstance(node, ScalarNode):
            self.wrong(node, "a name", where)
            return None
        if not _NAME.fullmatch(node.value):
            self.report(codes.WRONG_TYPE, f"{where}: expected a name (a letter or '_', then letters, digits or '_'),"
                                      f" found '{_shown(node.value)}'", node)
            return None
        return node.value

    def ref(self, node: Node, where: str) -> str | None:
        """A name, or a slot of a plate variable: ``y[k]``, ``z[k-1]``, ``y[*]``, ``y[0]`` (spaces
        inside the brackets dropped, so the text is the DSL's)."""
        if isinstance(node, ScalarNode) and "[" in node.value:
            text = re.sub(r"\s+", "", node.value)
            m = _REF.fullmatch(text)
            if m is None:
                self.report(codes.WRONG_TYPE, f"{where}: expected a name or a plate slot (y[k], z[k-1], y[*], y[0]),"
                                          f" found '{_shown(node.value)}'", node)
                return None
            if m.group(3) in ("+0", "-0"):
                text = f"{m.group(1)}[{m.group(2)[:-2]}]"
            elif m.group(2).startswith("+") or m.group(2) == "-0":
                text = f"{m.group(1)}[{int(m.group(2))}]"
            return text
        return self.name(node, where)

    def number(self, node: Node, where: str, whole: bool = False):
        value = self.scalar(node, where)
        if value is ...:
            return None
        ok = isinstance(value, int) if whole else isinstance(value, (int, float))
        if not ok or isinstance(value, bool):
            self.wrong(node, "a whole number" if whole else "a number", where)
            return None
        return value

    def literal(self, node: Node, where: str):
        """A setting or option value: number, truth value or string."""
        value = self.scalar(node, where)
        if value is None:
            self.wrong(node, "a value", where)
            return ...
        return value

    def pairs(self, node: Node, where: str, allowed: tuple[str, ...] | None = None,
              duplicates_ok: bool = False, refs: bool = False) -> list[tuple[str, Node, Node]]:
        """The ``(key, key node, value node)`` entries of a mapping, in order.

        With ``allowed``, unknown keys are reported (with "did you mean") and left
        out; a key given twice is reported unless ``duplicates_ok`` (then validation
        sees both, e.g. two factors of one variable)."""
        if not isinstance(node, MappingNode):
            self.wrong(node, "a mapping", where)
            return []
        out, seen = [], {}
        for key_node, value_node in node.value:
            key = self.ref(key_node, where) if refs else self.name(key_node, where)
            if key is None:
                continue
            if allowed is not None and key not in allowed:
                self.report(codes.UNKNOWN_KEY, f"{where}: unknown key '{key}' (expected one of {', '.join(allowed)})",
                            key_node, did_you_mean(key, allowed))
                continue
            if key in seen and not duplicates_ok:
                self.report(codes.DUPLICATE_KEY, f"{where}: the key '{key}' is given twice (first at line "
                                             f"{seen[key].start_mark.line + 1})", key_node)
                continue
            seen.setdefault(key, key_node)
            out.append((key, key_node, value_node))
        return out

    def items(self, node: Node, where: str) -> list[Node]:
        """The items of a list; a single value stands for a list of one."""
        if isinstance(node, ScalarNode):
            return [node]
        if not isinstance(node, SequenceNode):
            self.wrong(node, "a list", where)
            return []
        return list(node.value)


def bad_tags(root: Node | None, path: str) -> list[Diagnostic]:
    """Every node whose tag is not a plain YAML scalar, list or mapping tag.

    Each node is looked at once (aliases share nodes), so anchors cannot blow the walk up."""
    allowed = {ScalarNode: _SCALAR_TAGS, SequenceNode: {TAG + "seq"}, MappingNode: {TAG + "map"}}
    diags, seen, todo = [], set(), [root] if root is not None else []
    while todo:
        node = todo.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if node.tag not in allowed.get(type(node), ()):
            mark = node.start_mark
            tag = node.tag.replace(TAG, "!!", 1) if node.tag.startswith(TAG) else node.tag
            diags.append(error(codes.YAML_TAG, f"the tag '{tag}' is not allowed: a spec holds plain values, "
                                           "lists and mappings only",
                               Span(path, mark.line + 1, mark.column + 1, mark.line + 1, mark.column + 2)))
        if isinstance(node, SequenceNode):
            todo.extend(node.value)
        elif isinstance(node, MappingNode):
            todo.extend(n for pair in node.value for n in pair)
    return sorted(diags, key=lambda d: (d.span.line, d.span.col))


def alias_growth(root: Node | None, limit: int = MAX_EXPANDED_NODES) -> int:
    """How many more nodes reading ``root`` visits than it holds, counting a node once per alias
    to it (capped just above ``limit``).  Counted over the shared node graph with each node's size
    memoised, so a "billion laughs" of nested aliases costs time linear in the file, not in its
    expansion."""
    if root is None:
        return 0
    limit += _count(root)
    size: dict[int, int] = {}
    entered: set[int] = set()
    todo: list[tuple[Node, bool]] = [(root, False)]
    while todo:
        node, children_done = todo.pop()
        if id(node) in size:
            continue
        if not children_done and id(node) in entered:
            return limit  # a node inside itself (`&a [*a]`): it expands without end
        entered.add(id(node))
        kids = (node.value if isinstance(node, SequenceNode) else
                [n for pair in node.value for n in pair] if isinstance(node, MappingNode) else [])
        if children_done:
            size[id(node)] = min(limit + 1, 1 + sum(size.get(id(k), 0) for k in kids))
            continue
        todo.append((node, True))
        todo.extend((k, False) for k in kids if id(k) not in size)
    return size[id(root)] - len(size)


def _count(root: Node) -> int:
    """The number of distinct nodes under ``root``."""
    seen, todo = set(), [root]
    while todo:
        node = todo.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, SequenceNode):
            todo.extend(node.value)
        elif isinstance(node, MappingNode):
            todo.extend(n for pair in node.value for n in pair)
    return len(seen)


def syntax_error(exc: yaml.YAMLError, path: str) -> Diagnostic:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    message = f"invalid YAML: {problem}" + (f" ({context})" if context else "")
    span = Span(path, mark.line + 1, mark.column + 1, mark.line + 1, mark.column + 2) if mark else None
    return error(codes.SYNTAX, message, span or Span(path, 1, 1, 1, 1))
