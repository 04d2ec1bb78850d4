"""The reference tables of ``docs/``, generated from the registries so the docs cannot drift (torch-free).

``docs/validation.md`` holds the diagnostic codes (:mod:`graphvae.spec.errorcodes`) and
``docs/language.md`` the objective and train settings (:mod:`graphvae.spec.settings`), each
between the markers ``<!-- generated: NAME -->`` and ``<!-- end generated -->``.
``tests/test_reference.py`` fails when a file differs from what this module generates;
``python -m graphvae.spec.reference`` rewrites the files.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from graphvae.spec.errorcodes import CODES, SECTIONS, WARNING
from graphvae.spec.settings import SETTINGS, Anything

DOCS = Path(__file__).resolve().parents[2] / "docs"
FILES = ("validation.md", "language.md")
_BLOCK = re.compile(r"(<!-- generated: ([a-z ]+) -->\n)(.*?)(<!-- end generated -->)", re.S)


def code_tables() -> str:
    """One table per section of every registered diagnostic code."""
    out = []
    for section in SECTIONS:
        codes = [c for c in CODES.values() if c.section == section]
        out += [f"### {section}", "", "| Code | Rule |", "|---|---|"]
        out += [f"| `{c.code}`{' (warning)' if c.severity == WARNING else ''} | {c.summary} |" for c in codes]
        out.append("")
    return "\n".join(out)


def _default(value) -> str:
    if isinstance(value, bool):
        return f"`{'true' if value else 'false'}`"
    if isinstance(value, str):
        return f"`{value}`" if value else '`""`'
    return str(value)


def settings_table(block: str) -> str:
    """The settings of ``block`` ("objective" or "train"): name, default, help and constraint."""
    out = ["| Setting | Default | Meaning |", "|---|---|---|"]
    for row in SETTINGS[block].values():
        meaning = row.help.replace("|", "\\|")
        if not isinstance(row.constraint, Anything):
            meaning += f"; {row.constraint.math}"
        flag = f" (`--{row.name.replace('_', '-')}`)" if row.flag else ""
        out.append(f"| `{row.name}`{flag} | {_default(row.default)} | {meaning} |")
    return "\n".join(out) + "\n"


GENERATORS = {"codes": code_tables, "settings objective": lambda: settings_table("objective"),
              "settings train": lambda: settings_table("train")}


def regenerate(text: str) -> str:
    """``text`` with every generated block replaced by what its generator makes now."""
    def fill(m: re.Match) -> str:
        name = m.group(2)
        if name not in GENERATORS:
            raise KeyError(f"unknown generated block {name!r}; known: {', '.join(GENERATORS)}")
        return m.group(1) + "\n" + GENERATORS[name]() + "\n" + m.group(4)
    return _BLOCK.sub(fill, text)


def main(argv: list[str] | None = None) -> int:
    """Rewrite the generated blocks of the docs; with ``--check``, only say which are stale (exit 1)."""
    check = "--check" in (argv if argv is not None else sys.argv[1:])
    stale = []
    for name in FILES:
        path = DOCS / name
        text = path.read_text(encoding="utf-8")
        new = regenerate(text)
        if new != text:
            stale.append(name)
            if not check:
                path.write_text(new, encoding="utf-8")
    for name in stale:
        print(f"{'stale' if check else 'rewrote'} docs/{name}")
    return 1 if check and stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
