"""Syntax errors of the DSL in words a user understands, and the line-blanking recovery.

lark reports an error as the terminals it expected (``TILDE``, ``_NL``...).
:func:`syntax_diagnostic` turns one into a ``syntax`` diagnostic such as
"expected '~' or '=' after the parents of 'z', found 'Normal'", using the text
before the error on its line and the block the parser is in.  The parser then
calls :func:`blank_line` to keep going and find the next error.
"""

from __future__ import annotations

import re
import unicodedata

from lark import Token
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from graphvae.spec import errorcodes as codes
from graphvae.spec.diagnostics import Diagnostic, did_you_mean, error
from graphvae.spec.ir import Span

__all__ = ["syntax_diagnostic", "blank_line"]

BLOCKS = ("encoder", "decoder", "objective", "train")

_WORDS = {
    "NAME": "a name", "NUMBER": "a number", "STRING": "a value", "WORD": "a value", "TRUE": "a value",
    "FALSE": "a value", "_NL": "the end of the line", "$END": "the end of the file",
    "COLON": "':'", "VBAR": "'|'", "TILDE": "'~'", "EQUAL": "'='", "COMMA": "','", "LPAR": "'('",
    "RPAR": "')'", "LSQB": "'['", "RSQB": "']'", "LBRACE": "'{'", "RBRACE": "'}'",
    "MODEL": "'model'", "ENCODER": "'encoder'", "DECODER": "'decoder'", "OBJECTIVE": "'objective'",
    "TRAIN": "'train'", "BETA": "'beta'", "PLATE": "'plate'", "COUNT": "'count'", "LESSTHAN": "'<'",
    "STAR": "'*'",
}
_STATEMENT_START = {"MODEL", "ENCODER", "DECODER", "OBJECTIVE", "TRAIN", "PLATE"}
_OPENERS = {"ENCODER", "DECODER", "OBJECTIVE", "TRAIN"}


def _one_of(words: list[str]) -> str:
    words = list(dict.fromkeys(words))
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _found(tok: Token | None, char: str | None = None) -> str:
    if char is not None:
        if char.isprintable() and not char.isspace():
            return f"'{char}'"
        # an invisible character is named, else the message would read "found ''"
        return f"U+{ord(char):04X} ({unicodedata.name(char, 'a control character').lower()})"
    if tok is None or tok.type == "$END":
        return "the end of the file"
    if tok.type == "_NL":
        return "the end of the line"
    return f"'{tok.value}'"


def _open_block(exc: UnexpectedInput) -> Token | None:
    """The keyword of the block the parser is inside, if any."""
    parser = getattr(exc, "interactive_parser", None)
    stack = getattr(getattr(parser, "parser_state", None), "value_stack", None) or []
    for value in reversed(stack):
        if isinstance(value, Token) and value.type in _OPENERS:
            return value
    return None


def _message(exc: UnexpectedInput, line_text: str, expected: set[str], found: str) -> str:
    before = line_text[: max(0, exc.column - 1)]
    if "COLON" in expected:  # a declared name may take a plate index (y[k] : ...); ':' is what is missing
        expected = expected - {"LSQB"}
    if expected & _STATEMENT_START and "NAME" in expected and not before.strip():
        return ("expected a statement ('model NAME', a variable 'NAME : ROLE DOMAIN[...]', a plate 'plate k < K', "
                f"or an encoder, decoder, objective or train block), found {found}")
    opener = _open_block(exc)
    block = re.fullmatch(r"\s*(\w+)\s*", before)
    if block and found == "'{'" and "COLON" in expected:
        return f"unknown block '{block.group(1)}' (blocks are encoder, decoder, objective and train)"
    factor = re.fullmatch(r"\s*(\w+)\s*\|\s*[\w\s,]*", before)
    if "TILDE" in expected and factor:
        return f"expected '~' or '=' after the parents of '{factor.group(1)}' (or ',' and another parent), found {found}"
    bare = re.fullmatch(r"\s*(\w+)\s*", before)
    if bare and opener is not None and bare.group(1) in BLOCKS and found == "'{'":
        return (f"expected '}}' to close the '{opener.value}' block opened at line {opener.line} before the "
                f"'{bare.group(1)}' block")
    if "TILDE" in expected and bare:
        return f"expected '|', '~' or '=' after '{bare.group(1)}', found {found}"
    words = [_WORDS.get(t, f"'{t.lower()}'") for t in sorted(expected, key=_expected_order)]
    message = f"expected {_one_of(words)}"
    if "RBRACE" in expected and opener is not None and found in ("the end of the file",) + tuple(
            f"'{k.lower()}'" for k in _STATEMENT_START):
        message = f"expected '}}' to close the '{opener.value}' block opened at line {opener.line}"
    elif before.strip():
        message += f" after '{before.split()[-1]}'"
    return f"{message}, found {found}"


def _expected_order(term: str) -> tuple[int, str]:
    order = ["NAME", "NUMBER", "WORD", "STRING", "TRUE", "FALSE"]
    return (order.index(term) if term in order else len(order) + (term in ("_NL", "$END")), term)


def _expected(exc: UnexpectedInput) -> set[str]:
    """Terminals the parser would really accept here (LALR's merged lookaheads overstate them)."""
    parser = getattr(exc, "interactive_parser", None)
    if parser is not None:
        try:
            return set(parser.accepts())
        except LarkError:
            pass
    return set(getattr(exc, "expected", None) or getattr(exc, "allowed", None) or ())


def syntax_diagnostic(exc: UnexpectedInput, text: str, path: str) -> tuple[Diagnostic, int, bool]:
    """The diagnostic for one lark error, the 1-based line to blank, and whether to stop recovering."""
    lines = text.split("\n")
    line = max(1, min(exc.line, len(lines))) if exc.line and exc.line > 0 else len(lines)
    column = exc.column if exc.column and exc.column > 0 else 1
    line_text = lines[line - 1] if line <= len(lines) else ""
    if isinstance(exc, UnexpectedCharacters):
        char = text[exc.pos_in_stream] if 0 <= exc.pos_in_stream < len(text) else "?"
        expected = _expected(exc)
        found = _found(None, char)
        message = _message(exc, line_text, expected, found) if expected else f"unexpected character {found}"
        span = Span(path, line, column, line, column + 1)
        stop = False
    else:
        tok = exc.token if isinstance(exc, UnexpectedToken) else None
        expected = _expected(exc)
        found = _found(tok)
        message = _message(exc, line_text, expected, found)
        width = len(tok.value) if tok is not None and tok.type not in ("_NL", "$END") else 1
        span = Span(path, line, column, line, column + width)
        stop = tok is None or tok.type in ("$END", "RBRACE", "LBRACE")
    stop = stop or "{" in line_text or "}" in line_text
    hint = None
    if message.startswith("unknown block"):
        hint = did_you_mean(message.split("'")[1], BLOCKS)
    return error(codes.SYNTAX, message, span, hint), line, stop


def blank_line(text: str, line: int) -> str:
    """The text with one line turned to spaces, so every other position stays where it was."""
    lines = text.split("\n")
    if 1 <= line <= len(lines):
        lines[line - 1] = re.sub(r"[^\r]", " ", lines[line - 1])
    return "\n".join(lines)
