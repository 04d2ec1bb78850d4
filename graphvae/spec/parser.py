"""The DSL front end: ``.gvae`` text -> :class:`graphvae.spec.ir.Spec` plus diagnostics.

The grammar lives in ``grammar/graphvae.lark`` (installed as the package data
``graphvae.grammar/graphvae.lark``) and is parsed with lark's LALR parser.  A
:class:`lark.Transformer` maps the tree to the IR, giving every node a 1-based
:class:`~graphvae.spec.ir.Span`.

:func:`parse_dsl` never raises on bad text.  A syntax error becomes a
diagnostic with code ``syntax`` that says, in words, what was expected.  To
report more than the first one, the parser blanks the offending line (keeping
every position) and parses again, until the text parses or an error touches a
brace, whose structure the following lines depend on.
"""

from __future__ import annotations

import ast
import functools
import importlib.resources
import math
import re
from pathlib import Path

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import LarkError, UnexpectedInput

from graphvae.spec import errorcodes as codes
from graphvae.spec.binding import canonical_params
from graphvae.spec.diagnostics import Diagnostic, error
from graphvae.spec.ir import (Beta, Call, Dist, Estimator, Factor, Net, Objective, Option, Param, Plate, Setting, Span,
                              Spec, Uniform, Variable)
from graphvae.spec.settings import SETTINGS
from graphvae.spec.syntax_errors import blank_line, syntax_diagnostic

__all__ = ["parse_dsl", "grammar_path", "OBJECTIVE_SETTINGS", "MAX_SYNTAX_ERRORS"]

# Names in an objective block that are settings; any other ``NAME = method`` is an estimator.
OBJECTIVE_SETTINGS = frozenset(SETTINGS["objective"])
MAX_SYNTAX_ERRORS = 20
# Each syntax error found costs a parse from the top; a long text gets fewer, so that the
# recovery reads at most about this many characters in all (four parses of a 1 MB file).
PARSE_BUDGET = 4_000_000
BLOCKS = ("encoder", "decoder", "objective", "train")


def grammar_path() -> Path:
    """Where the grammar is read from: the grammar beside the source tree when this module runs
    from a source checkout (an editable install maps the package data to *its* checkout, which
    may be another worktree), else the installed package data."""
    root = Path(__file__).resolve().parents[2]
    beside = root / "grammar" / "graphvae.lark"
    if beside.is_file() and (root / "pyproject.toml").is_file():
        return beside
    try:
        resource = importlib.resources.files("graphvae.grammar") / "graphvae.lark"
        if resource.is_file():
            return Path(str(resource))
    except ModuleNotFoundError:
        pass
    return Path(__file__).resolve().parents[2] / "grammar" / "graphvae.lark"


@functools.lru_cache(maxsize=1)
def _lark() -> Lark:
    return Lark(grammar_path().read_text(encoding="utf-8"), parser="lalr", propagate_positions=True)




# -- the tree -> IR transformer ---------------------------------------------------------------

MAX_WHOLE = 2**63 - 1  # the largest whole-number literal: it fits a 64-bit integer (and a float)
BOM = "\ufeff"


def _number(text: str) -> int | float:
    """A numeric literal as written: ``1`` is an int, ``1.0`` and ``1e-3`` are floats.  Raises
    OverflowError for a whole number beyond :data:`MAX_WHOLE` or a decimal beyond a float's
    range (``1e999``); the digits are counted before converting, so any length is cheap."""
    if re.fullmatch(r"[+-]?\d+", text):
        digits = text.lstrip("+-").lstrip("0") or "0"
        if len(digits) > len(str(MAX_WHOLE)) or int(digits) > MAX_WHOLE:
            raise OverflowError(text)
        return -int(digits) if text.startswith("-") else int(digits)
    value = float(text)
    if math.isinf(value):
        raise OverflowError(text)
    return value


def number_too_large(text: str) -> str:
    """The message for a literal :func:`_number` refuses; a long one is shown by its ends."""
    shown = text if len(text) <= 24 else f"{text[:10]}...{text[-10:]} ({len(text):,} characters)"
    if re.fullmatch(r"[+-]?\d+", text):
        return f"the whole number {shown} is too large: whole numbers are at most 2^63 - 1 ({MAX_WHOLE})"
    return f"the number {shown} is too large: numbers are at most about 1.8e308"


class _ToIR(Transformer):
    """Builds IR nodes bottom-up; statements come out as ``(kind, payload, span)`` triples."""

    def __init__(self, path: str):
        super().__init__()
        self.path = path
        self.diagnostics: list[Diagnostic] = []
        self._value_spans: dict[int, Span] = {}

    def _span(self, meta) -> Span | None:
        if getattr(meta, "empty", True):
            return None
        return Span(self.path, meta.line, meta.column, meta.end_line, meta.end_column)

    def _tok(self, tok: Token) -> Span:
        return Span(self.path, tok.line, tok.column, tok.end_line, tok.end_column)

    def _num(self, tok: Token) -> int | float:
        """The number a NUMBER token holds; one out of range is a diagnostic (and reads as 0)."""
        try:
            return _number(tok.value)
        except OverflowError:
            self.diagnostics.append(error(codes.NUMBER_RANGE, number_too_large(tok.value), self._tok(tok)))
            return 0

    def _whole(self, tok: Token, what: str) -> int:
        value = self._num(tok)
        if isinstance(value, int):
            return value
        self.diagnostics.append(error(codes.SYNTAX, f"expected a whole number for {what}, found '{tok.value}'",
                                      self._tok(tok)))
        return 0

    # -- literals (number, string, true, false, word) stay trees until their statement reads them
    def _literal(self, tree) -> int | float | str | bool:
        tok = tree.children[0] if tree.children else None
        kind = tree.data
        if kind == "true":
            return True
        if kind == "false":
            return False
        if kind == "number":
            return self._num(tok)
        if kind == "string":
            try:
                return str(ast.literal_eval(tok.value))
            except (ValueError, SyntaxError):
                self.diagnostics.append(error(codes.SYNTAX, f"invalid escape in the string {tok.value}", self._tok(tok)))
                return tok.value[1:-1]
        return tok.value

    def _literal_span(self, tree) -> Span | None:
        return self._span(tree.meta)

    # -- declarations
    @v_args(meta=True)
    def model_decl(self, meta, children):
        return ("model", children[0].value, self._span(meta))

    def shape(self, children):
        return tuple(self._whole(tok, "a shape dimension") for tok in children)

    @v_args(meta=True)
    def plate_decl(self, meta, children):
        name = children[1]
        size = size_span = count = count_span = None
        rest = list(children[2:])
        if rest and rest[0].type != "COUNT":
            tok = rest.pop(0)
            size = self._num(tok) if tok.type == "NUMBER" else tok.value
            size_span = self._tok(tok)
        if rest:
            count, count_span = rest[1].value, self._tok(rest[1])
        return ("plate", Plate(name.value, size, count, self._span(meta), size_span, count_span), None)

    def plate_indices(self, children):
        return tuple(tok.value for tok in children)

    @v_args(meta=True)
    def var_decl(self, meta, children):
        indices = ()
        if len(children) > 1 and isinstance(children[1], tuple):
            indices = children.pop(1)
        name, role, domain = (tok.value for tok in children[:3])
        shape = children[3] if len(children) > 3 else ()
        return ("variable", Variable(name, role, domain, shape, self._span(meta),
                                     self._tok(children[1]), self._tok(children[2]), indices), None)

    # -- names and slots: a ref is (text, span), the text canonical: y, y[k], z[k-1], y[*], y[0]
    def index_relative(self, children):
        if len(children) == 1:
            return children[0].value
        offset = self._num(children[1])
        if offset == 0:
            return children[0].value
        return f"{children[0].value}{'+' if offset >= 0 else '-'}{abs(offset)}"

    def index_spaced(self, children):  # z[k - 1]: the sign apart from the number
        offset = self._num(children[2])
        if children[1].value == "-":
            offset = -offset
        if offset == 0:
            return children[0].value
        return f"{children[0].value}{'+' if offset >= 0 else '-'}{abs(offset)}"

    def index_fixed(self, children):
        return str(self._num(children[0]))

    def index_all(self, children):
        return "*"

    @v_args(meta=True)
    def ref(self, meta, children):
        text = children[0].value if len(children) == 1 else f"{children[0].value}[{children[1]}]"
        return (text, self._span(meta))

    # -- networks and families
    @v_args(meta=True)
    def option(self, meta, children):
        return Option(children[0].value, self._literal(children[1]), self._span(meta))

    def width(self, children):
        return children[0]

    @v_args(meta=True)
    def net_bare(self, meta, children):
        name = children[0].value
        if name == "uniform":
            return Uniform(self._span(meta))
        return Net(name, (), (), self._span(meta))

    @v_args(meta=True)
    def net_call(self, meta, children):
        name = children[0].value
        items = [c for c in children[1:] if c is not None]
        if name == "uniform" and not items:
            return Uniform(self._span(meta))
        hidden = tuple(self._whole(c, f"a layer width of '{name}'") for c in items if isinstance(c, Token))
        options = tuple(c for c in items if isinstance(c, Option))
        return Net(name, hidden, options, self._span(meta))

    def _arg_value(self, value):
        return self._num(value) if isinstance(value, Token) else value

    @v_args(meta=True)
    def positional(self, meta, children):
        return Param(None, self._arg_value(children[0]), self._span(meta))

    @v_args(meta=True)
    def named(self, meta, children):
        return Param(children[0].value, self._arg_value(children[1]), self._span(meta))

    @v_args(meta=True)
    def dist(self, meta, children):
        params = tuple(c for c in children[1:] if c is not None)
        return Dist(children[0].value, canonical_params(children[0].value, params), self._span(meta))

    def parents(self, children):
        return children

    def _factor(self, meta, children, dist=None, net=None):
        name = children[0]
        parents = children[1] if len(children) > 2 else []
        return Factor(name[0], tuple(p[0] for p in parents), dist, net, self._span(meta), name[1],
                      tuple(p[1] for p in parents))

    @v_args(meta=True)
    def stochastic(self, meta, children):
        return self._factor(meta, children, dist=children[-1])

    @v_args(meta=True)
    def deterministic(self, meta, children):
        net = children[-1]
        if isinstance(net, Uniform):  # `h = uniform` is no network; carry it for validation to name
            net = Net("uniform", (), (), net.span)
        return self._factor(meta, children, net=net)

    @v_args(meta=True)
    def encoder_block(self, meta, children):
        return ("encoder", tuple(children[1:]), self._tok(children[0]))

    @v_args(meta=True)
    def decoder_block(self, meta, children):
        return ("decoder", tuple(children[1:]), self._tok(children[0]))

    # -- objective and train
    @v_args(meta=True)
    def setting(self, meta, children):
        setting = Setting(children[0].value, self._literal(children[1]), self._span(meta))
        self._value_spans[id(setting)] = self._literal_span(children[1])
        return setting

    @v_args(meta=True)
    def call_setting(self, meta, children):
        name, method = children[0], children[1]
        options = tuple(c for c in children[2:] if c is not None)
        call_span = Span(self.path, method.line, method.column, meta.end_line, meta.end_column)
        if name.value in OBJECTIVE_SETTINGS:
            self.diagnostics.append(error(codes.SYNTAX, f"expected a value for '{name.value}', found a call "
                                          f"'{method.value}(...)'", call_span))
        return Estimator(name.value, Call(method.value, options, call_span), self._span(meta))

    @v_args(meta=True)
    def beta(self, meta, children):
        return Beta(children[0].value, self._num(children[1]), self._span(meta))

    @v_args(meta=True)
    def objective_block(self, meta, children):
        # `NAME = value`: a setting when NAME is an objective setting or the value is a literal
        # number or truth value; otherwise an estimator for the variable NAME (`y = enumerate`).
        items = []
        for item in children[1:]:
            if isinstance(item, Setting) and isinstance(item.value, str) and item.name not in OBJECTIVE_SETTINGS:
                call = Call(item.value, (), self._value_spans.get(id(item)))
                item = Estimator(item.name, call, item.span)
            items.append(item)
        return ("objective", tuple(items), self._tok(children[0]))

    @v_args(meta=True)
    def train_block(self, meta, children):
        return ("train", tuple(children[1:]), self._tok(children[0]))


# -- assembling a Spec ------------------------------------------------------------------------

def _assemble(statements, path: str, text: str) -> tuple[Spec, list[Diagnostic]]:
    diags: list[Diagnostic] = []
    name, span = None, None
    variables: list[Variable] = []
    plates: list[Plate] = []
    blocks: dict[str, list] = {b: [] for b in BLOCKS}
    block_spans: dict[str, Span] = {}
    for kind, payload, stmt_span in statements:
        if kind == "model":
            if name is None:
                name, span = payload, stmt_span
            else:
                diags.append(error(codes.DUPLICATE_MODEL, f"a second 'model' line (the model is already named "
                                   f"'{name}' at line {span.line})", stmt_span))
        elif kind == "variable":
            variables.append(payload)
        elif kind == "plate":
            plates.append(payload)
        else:
            if kind in block_spans:
                diags.append(error(codes.DUPLICATE_BLOCK, f"a second '{kind}' block (the first is at line "
                                   f"{block_spans[kind].line}); write all its items in one block", stmt_span))
            else:
                block_spans[kind] = stmt_span
            blocks[kind].extend(payload)
    if name is None:
        diags.append(error(codes.MISSING_MODEL, "the spec has no 'model NAME' line", Span(path, 1, 1, 1, 1)))
    items = blocks["objective"]
    objective = Objective(
        settings=tuple(sorted((s for s in items if isinstance(s, Setting)), key=lambda s: s.name)),
        estimators=tuple(sorted((e for e in items if isinstance(e, Estimator)), key=lambda e: e.var)),
        betas=tuple(sorted((b for b in items if isinstance(b, Beta)), key=lambda b: b.var)),
        span=block_spans.get("objective"),
    )
    spec = Spec(name=name or "", variables=tuple(variables), encoder=tuple(blocks["encoder"]),
                decoder=tuple(blocks["decoder"]), objective=objective, train=tuple(blocks["train"]), span=span,
                encoder_span=block_spans.get("encoder"), decoder_span=block_spans.get("decoder"),
                train_span=block_spans.get("train"), path=path, source=text, plates=tuple(plates))
    return spec, diags


# -- the public entry point -------------------------------------------------------------------

def parse_dsl(text: str, path: str = "<string>") -> tuple[Spec | None, list[Diagnostic]]:
    """Parse DSL text into a Spec.

    Returns ``(spec, diagnostics)``.  With syntax errors the spec is None and the
    diagnostics (code ``syntax``) say what was expected where.  Otherwise the spec
    is returned, possibly with front-end errors that do not stop validation
    (``missing-model``, ``duplicate-model``, ``duplicate-block``).  Never raises
    for bad text.
    """
    if not isinstance(text, str):
        raise TypeError(f"parse_dsl expects text (str), not {type(text).__name__}")
    text = text.removeprefix(BOM)  # a byte-order mark some editors write is no part of the spec
    source = text.replace("\r\n", "\n") if "\r\n" in text else text
    work = source if source.endswith("\n") else source + "\n"
    diags: list[Diagnostic] = []
    tree = None
    seen_lines: set[int] = set()
    most = max(2, min(MAX_SYNTAX_ERRORS, PARSE_BUDGET // len(work)))
    while len(diags) < most:
        try:
            tree = _lark().parse(work)
            break
        except UnexpectedInput as exc:
            diag, line, stop = syntax_diagnostic(exc, work, path)
            if line in seen_lines:
                break
            seen_lines.add(line)
            diags.append(diag)
            blanked = blank_line(work, line)
            if stop or blanked == work:
                break
            work = blanked
        except LarkError as exc:  # any other lark failure is still a diagnostic, never a traceback
            diags.append(error(codes.SYNTAX, f"could not parse the spec: {exc}", Span(path, 1, 1, 1, 1)))
            break
    if diags:
        return None, diags
    builder = _ToIR(path)
    statements = builder.transform(tree).children
    if builder.diagnostics:
        return None, builder.diagnostics
    spec, more = _assemble(statements, path, text)
    return spec, more
