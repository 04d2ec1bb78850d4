"""Plates: repeated structure in the language, its expansion, diagnostics, compiler, masking and data."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from graphvae.spec.ir import Plate, Slot
from graphvae.spec.loader import check_text
from graphvae.spec.parser import grammar_path, parse_dsl
from graphvae.spec.plates import Ref, expand, parse_ref

ROOT = Path(__file__).resolve().parents[1]

PLATED = """model plates
plate k < 2 count n
x : observed binary[6]
n : supervised categorical[3]
y[k] : supervised categorical[3]
z[k] : latent real[2]
encoder {
  n | x ~ Categorical(mlp(8))
  y[k] | x, z[k-1] ~ Categorical(mlp(8))
  z[k] | x, y[k] ~ Normal(mlp(8))
}
decoder {
  n ~ Categorical(uniform)
  y[k] ~ Categorical(uniform)
  z[k] ~ Normal(0, 1)
  x | y[*], z[0], z[1] ~ Bernoulli(mlp(8))
}
objective {
  n = enumerate
  y = enumerate
  beta z = 2
}
"""


def expanded(text: str = PLATED):
    spec, diags = check_text(text, "p.gvae", "dsl")
    assert not [d for d in diags if d.is_error], diags
    return spec


def test_grammar_is_read_beside_the_source_tree():
    # an editable install maps the package data to another checkout: this tree's grammar wins
    assert grammar_path() == ROOT / "grammar" / "graphvae.lark"


@pytest.mark.parametrize("text, ref", [
    ("x", Ref("x")),
    ("y[k]", Ref("y", "relative", "k", 0)),
    ("z[k-1]", Ref("z", "relative", "k", -1)),
    ("z[k+1]", Ref("z", "relative", "k", 1)),
    ("y[*]", Ref("y", "all")),
    ("y[0]", Ref("y", "fixed", slot=0)),
])
def test_parse_ref(text, ref):
    assert parse_ref(text) == ref


def test_the_dsl_reads_plates_indexed_declarations_and_slot_references():
    spec, diags = parse_dsl(PLATED, "p.gvae")
    assert not diags
    assert spec.plates == (Plate("k", 2, "n"),)
    assert spec.variable("y").indices == ("k",) and spec.variable("n").indices == ()
    y = next(f for f in spec.encoder if f.name == "y[k]")
    assert y.parents == ("x", "z[k-1]")
    assert (y.name_span.line, y.name_span.col, y.parent_spans[1].col) == (9, 3, 13)
    assert next(f for f in spec.decoder if f.name == "x").parents == ("y[*]", "z[0]", "z[1]")


def test_expansion_writes_out_slots_sharing_one_network():
    spec = expanded()
    assert [v.name for v in spec.variables] == ["x", "n", "y_0", "y_1", "z_0", "z_1"]
    assert spec.variable("y_1").slot == Slot("y", "k", 1) and spec.variable("n").slot is None
    enc = {f.name: f for f in spec.encoder}
    assert (enc["y_0"].parents, enc["y_0"].absent) == (("x",), ((1, "z_0"),))  # slot 0 has no z[k-1]
    assert (enc["y_1"].parents, enc["y_1"].absent) == (("x", "z_0"), ())
    assert {enc[n].shared for n in ("y_0", "y_1")} == {"y[k]"} and enc["n"].shared is None
    assert enc["z_1"].parents == ("x", "y_1") and enc["z_1"].slot == Slot("z", "k", 1)
    dec = {f.name: f for f in spec.decoder}
    assert dec["x"].parents == ("y_0", "y_1", "z_0", "z_1")
    assert [e.var for e in spec.objective.estimators] == ["n", "y_0", "y_1"]
    assert [(b.var, b.value) for b in spec.objective.betas] == [("z_0", 2), ("z_1", 2)]
    assert spec.written is not None and spec.written.variable("y").indices == ("k",)
    assert expand(spec) == (spec, [])  # idempotent


def test_expansion_leaves_a_spec_without_plates_alone():
    text = (ROOT / "specs" / "m2.gvae").read_text()
    spec, _ = check_text(text, "m2.gvae", "dsl")
    assert spec.written is None and spec == parse_dsl(text, "m2.gvae")[0]


def test_fmt_prints_the_plate_form_and_is_idempotent():
    from graphvae.spec.formatter import format_text, to_dsl

    once, _ = format_text(PLATED, "p.gvae", "dsl")
    assert "plate k < 2 count n\n" in once and "y[k] : supervised categorical[3]" in once
    assert "  y[k] | x, z[k-1] ~ Categorical(mlp(8))" in once and "y_0" not in once
    assert format_text(once, "p.gvae", "dsl")[0] == once
    assert to_dsl(expanded()) == once  # an expanded spec prints as written
    assert parse_dsl(once)[0] == parse_dsl(PLATED)[0]
