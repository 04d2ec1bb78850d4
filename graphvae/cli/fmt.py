"""``graphvae fmt FILE [--to dsl|yaml] [--check] [--in-place]``: canonical layout, or a conversion."""

from __future__ import annotations

import sys

from graphvae.atomic import atomic_write_text
from graphvae.errors import UserError
from graphvae.spec.diagnostics import render, summary
from graphvae.spec.formatter import format_text
from graphvae.spec.loader import language_of


def run(args) -> int:
    path = args.file
    language = language_of(path)
    to = args.to or language
    if (args.check or args.in_place) and to != language:
        flag = "--check" if args.check else "--in-place"
        raise UserError(f"{flag} keeps '{path}' in its own language ({language}); to convert, run "
                        f"'graphvae fmt {path} --to {to}' and redirect the output")
    try:
        with open(path, encoding="utf-8", newline="") as fh:
            text = fh.read()
    except UnicodeDecodeError as exc:
        raise UserError(f"'{path}' is not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise UserError(f"cannot read '{path}': {exc.strerror or exc}") from None
    formatted, diags = format_text(text, path, language, to)
    if formatted is None:
        print(render(diags, {path: text}), file=sys.stderr)
        print(f"graphvae: {summary(diags)}; '{path}' was not formatted", file=sys.stderr)
        return 1
    if args.check:
        if formatted != text:
            print(f"would reformat {path}", file=sys.stderr)
            return 1
        return 0
    if args.in_place:
        if formatted != text:
            try:
                atomic_write_text(path, formatted)
            except OSError as exc:
                raise UserError(f"cannot write '{path}': {exc.strerror or exc}") from None
            print(f"reformatted {path}", file=sys.stderr)
        return 0
    sys.stdout.write(formatted)
    return 0
