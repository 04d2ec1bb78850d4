"""The docs' reference tables are what the registries generate, and every code is documented once."""

from __future__ import annotations

import re

import pytest

from graphvae.spec import reference
from graphvae.spec.errorcodes import CODES, SECTIONS
from graphvae.spec.settings import SETTINGS


@pytest.mark.parametrize("name", reference.FILES)
def test_generated_tables_are_current(name):
    text = (reference.DOCS / name).read_text(encoding="utf-8")
    assert "<!-- generated:" in text
    assert reference.regenerate(text) == text, f"docs/{name} is stale: run python -m graphvae.spec.reference"


def test_every_code_is_documented_once_in_validation_md():
    text = (reference.DOCS / "validation.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([a-z-]+)`", text, re.M)
    assert sorted(rows) == sorted(CODES) and len(rows) == len(set(rows))


def test_every_code_has_a_section_and_a_summary():
    for code in CODES.values():
        assert code.section in SECTIONS and code.summary and code.code == str(code)


def test_every_setting_is_in_language_md():
    text = (reference.DOCS / "language.md").read_text(encoding="utf-8")
    for block in SETTINGS.values():
        for name in block:
            assert f"| `{name}`" in text, name


def test_an_unknown_generated_block_is_refused():
    with pytest.raises(KeyError, match="unknown generated block"):
        reference.regenerate("<!-- generated: nonesuch -->\n<!-- end generated -->")
