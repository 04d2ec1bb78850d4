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


def test_grammar_is_read_from_the_package_data_outside_a_source_tree(tmp_path, monkeypatch):
    import graphvae.spec.parser as parser

    installed = tmp_path / "site-packages" / "graphvae" / "spec" / "parser.py"  # no grammar/ nor pyproject beside
    monkeypatch.setattr(parser, "__file__", str(installed))
    path = parser.grammar_path()
    assert path.name == "graphvae.lark" and path.is_file() and "site-packages" not in str(path)
    (tmp_path / "site-packages" / "grammar").mkdir(parents=True)
    (tmp_path / "site-packages" / "grammar" / "graphvae.lark").write_text("")  # a stray folder, not a checkout
    assert parser.grammar_path() == path


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


# -- the compiler: one network per plate factor, absent parents, data ---------------------------

torch = pytest.importorskip("torch")

SHARED = """model shared
plate k < 2
x : observed binary[6]
y[k] : supervised categorical[3]
z[k] : latent real[2]
encoder {
  y[k] | x, z[k-1] ~ Categorical(mlp(8))
  z[k] | x, y[k] ~ Normal(mlp(8))
}
decoder {
  y[k] ~ Categorical(uniform)
  z[k] | z[k-1] ~ Normal(linear)
  x | y[*], z[*] ~ Bernoulli(mlp(8))
}
objective {
  y = enumerate
}
"""

# The same model written out by hand, with ordinary variables.
HAND = """model hand
x : observed binary[6]
y_0 : supervised categorical[3]
y_1 : supervised categorical[3]
z_0 : latent real[2]
z_1 : latent real[2]
encoder {
  y_0 | x ~ Categorical(mlp(8))
  z_0 | x, y_0 ~ Normal(mlp(8))
  y_1 | x, z_0 ~ Categorical(mlp(8))
  z_1 | x, y_1 ~ Normal(mlp(8))
}
decoder {
  y_0 ~ Categorical(uniform)
  y_1 ~ Categorical(uniform)
  z_0 ~ Normal(0, 1)
  z_1 | z_0 ~ Normal(linear)
  x | y_0, y_1, z_0, z_1 ~ Bernoulli(mlp(8))
}
objective {
  y_0 = enumerate
  y_1 = enumerate
}
"""


def compiled(text: str, **overrides):
    import graphvae

    return graphvae.compile_spec(expanded(text), **overrides)


def tie(hand, plated, columns: dict[str, list[int]] | None = None) -> None:
    """Copy the plate model's weights into the hand-written one; ``columns`` picks the input
    columns of a first layer the hand-written factor keeps (a slot lacking a parent)."""
    columns = columns or {}
    own = plated.state_dict()
    with torch.no_grad():
        for key, t in hand.state_dict().items():
            source = own[key] if key in own else None
            if source is None or source.shape != t.shape:
                node = key.split(".")[1]
                source = source if source is not None else own[key]
                source = source[:, columns[node]] if source.dim() == 2 else source
            if source.shape != t.shape:  # a slot without the parent of the shared network
                raise AssertionError((key, tuple(source.shape), tuple(t.shape)))
            t.copy_(source)


def batch(seed: int = 0, n: int = 7):
    g = torch.Generator().manual_seed(seed)
    x = torch.bernoulli(torch.full((n, 6), 0.5), generator=g)
    y0 = torch.randint(-1, 3, (n,), generator=g)
    y1 = torch.randint(-1, 3, (n,), generator=g)
    return {"x": x, "y_0": y0, "y_1": y1}


def test_plate_copies_share_one_network_and_a_slot_without_a_parent_reads_zero():
    model = compiled(SHARED)
    assert model.encoder["y_0"] is model.encoder["y_1"] and model.decoder["z_0"] is model.decoder["z_1"]
    first = model.encoder["y_0"].nets["logits"].first
    assert first.in_features == 6 + 2  # x and z[k-1]: slot 0 reads zeros for the z it lacks
    hand = compiled(HAND)
    n_plate = sum(p.numel() for p in model.parameters())
    n_hand = sum(p.numel() for p in hand.parameters())
    # the hand model's copies are separate (and its slot-0 networks narrower): the plate holds one of each
    assert n_plate < n_hand


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_plate_loss_equals_a_hand_written_model_with_tied_weights(seed):
    torch.manual_seed(seed)
    plated = compiled(SHARED)
    hand = compiled(HAND)
    with torch.no_grad():  # p(z_0) of the hand model is N(0, 1): the shared p(z[k] | z[k-1]) with nothing to read
        plated.decoder["z_0"].nets["loc+scale"].first.bias.zero_()
    prior = plated.decoder["z_0"].dist([None])  # slot 0: the absent z[k-1] reads zero, the bias alone
    assert prior.base_dist.loc.tolist() == [0.0, 0.0] and prior.base_dist.scale.tolist() == [1.0, 1.0]
    x_cols = list(range(6))  # y_0 | x reads x alone: the shared network's columns of x
    tie(hand, plated, {"y_0": x_cols})
    b = batch(seed)
    torch.manual_seed(10 + seed)
    want = hand.loss(b)
    torch.manual_seed(10 + seed)
    got = plated.loss(b)
    assert abs(got.item() - want.item()) < 1e-6
    plated.loss(b).backward()  # one gradient for the shared weights, summed over the slots
    assert plated.encoder["y_1"].nets["logits"].first.weight.grad is not None


def write_npz(path, n=40, k=2, seed=0, **extra):
    import numpy as np

    rng = np.random.default_rng(seed)
    arrays = {"x": (rng.random((n, 6)) > 0.5).astype("float32"), "y": rng.integers(-1, 3, (n, k))}
    arrays.update(extra)
    np.savez(path, **arrays)
    return arrays


def test_an_npz_array_of_shape_n_by_k_feeds_the_slots(tmp_path):
    import numpy as np
    from graphvae.data.datasets import load_dataset

    arrays = write_npz(tmp_path / "d.npz")
    ds = load_dataset(str(tmp_path / "d.npz"), expanded(SHARED))
    everything = np.concatenate([ds.train["y_0"], ds.test["y_0"]])
    assert sorted(everything.tolist()) == sorted(arrays["y"][:, 0].tolist())
    both = {tuple(r) for r in np.stack([ds.train["y_0"], ds.train["y_1"]], 1).tolist()}
    assert both <= {tuple(r) for r in arrays["y"].tolist()}  # the slots of one example stay together


@pytest.mark.parametrize("k", [1, 3])
def test_an_npz_array_with_the_wrong_number_of_slots_is_one_line(tmp_path, k):
    from graphvae.data.datasets import load_dataset
    from graphvae.errors import UserError

    write_npz(tmp_path / "d.npz", k=k)
    with pytest.raises(UserError, match=r"array 'y' of .* has shape \(40, %d\); for the 2 slots of plate k it needs "
                       r"\(N, 2, ...\)" % k):
        load_dataset(str(tmp_path / "d.npz"), expanded(SHARED))


# -- count masking ------------------------------------------------------------------------------

COUNTED = """model counted
plate k < 2 count n
x : observed binary[6]
n : supervised categorical[3]
z[k] : latent real[2]
encoder {
  n | x ~ Categorical(mlp(8))
  z[k] | x, z[k-1] ~ Normal(mlp(8))
}
decoder {
  n ~ Categorical(uniform)
  z[k] ~ Normal(0, 1)
  x | z[*] ~ Bernoulli(mlp(8))
}
objective {
  alpha = 0.0
  alpha_scaling = per_example
  n = enumerate
}
"""

# COUNTED with only its first slot: what COUNTED must compute when n = 1.
ONE_SLOT = """model one
x : observed binary[6]
n : supervised categorical[3]
z_0 : latent real[2]
encoder {
  n | x ~ Categorical(mlp(8))
  z_0 | x ~ Normal(mlp(8))
}
decoder {
  n ~ Categorical(uniform)
  z_0 ~ Normal(0, 1)
  x | z_0 ~ Bernoulli(mlp(8))
}
objective {
  alpha = 0.0
  alpha_scaling = per_example
  n = enumerate
}
"""


@pytest.mark.parametrize("count, slot, want", [
    (torch.tensor([0, 1, 2]), 0, [0.0, 1.0, 1.0]),
    (torch.tensor([0, 1, 2]), 1, [0.0, 0.0, 1.0]),
    (torch.tensor([[0.2, 0.3, 0.5]]), 0, [0.8]),  # a relaxed count: the probability that it exceeds the slot
    (torch.tensor([[0.2, 0.3, 0.5]]), 1, [0.5]),
])
def test_slot_mask(count, slot, want):
    from graphvae.compile.objective import slot_mask

    assert slot_mask(count, slot, torch.float32).tolist() == pytest.approx(want)


def test_with_the_count_given_the_loss_is_that_of_the_model_with_only_the_present_slots():
    torch.manual_seed(0)
    plated, one = compiled(COUNTED), compiled(ONE_SLOT)
    tie(one, plated, {"z_0": list(range(6)), "x": [0, 1]})  # z_0 | x alone; x | z_0 of the columns of z_0
    b = batch(3, n=5)
    b = {"x": b["x"], "n": torch.ones(5, dtype=torch.long)}
    torch.manual_seed(1)
    want = one.loss(b)
    torch.manual_seed(1)  # z_0 is drawn first in both, z_1 after it (and masked out)
    got, terms = plated.loss(b, terms=True)
    assert abs(got.item() - want.item()) < 1e-6
    assert terms["kl/z_1"].item() == 0.0 and terms["kl/z_0"].item() != 0.0
    b["n"] = torch.full((5,), 2)
    torch.manual_seed(1)
    assert abs(plated.loss(b).item() - want.item()) > 1e-3  # both slots present: z_1 counts


def test_a_slot_past_the_count_enters_networks_outside_the_plate_as_zeros():
    torch.manual_seed(0)
    model = compiled(COUNTED)
    b = {"x": batch(4, n=5)["x"], "n": torch.ones(5, dtype=torch.long)}
    torch.manual_seed(2)
    before = model.loss(b).item()
    with torch.no_grad():  # x | z[*]: the columns reading z_1
        model.decoder["x"].nets["logits"].first.weight[:, 2:4].add_(5.0)
    torch.manual_seed(2)
    assert model.loss(b).item() == pytest.approx(before, abs=1e-6)
    b["n"] = torch.full((5,), 2)
    torch.manual_seed(2)
    after = model.loss(b).item()
    torch.manual_seed(2)
    with torch.no_grad():
        model.decoder["x"].nets["logits"].first.weight[:, 2:4].sub_(5.0)
    assert abs(model.loss(b).item() - after) > 1e-3


def test_an_enumerated_count_sums_the_counted_objectives_under_q():
    """Unlabelled, with n enumerated: U(x) = sum_m q(m|x) L(x, m) + H(q(n|x)) when alpha = 0 (L the
    labelled objective with n = m, the same draws of z)."""
    torch.manual_seed(0)
    model = compiled(COUNTED)
    x = batch(5, n=1)["x"]
    torch.manual_seed(3)
    unlabelled = -model.loss({"x": x, "n": torch.tensor([-1])}).item()
    labelled = []
    for m in range(3):
        torch.manual_seed(3)
        labelled.append(-model.loss({"x": x, "n": torch.tensor([m])}).item())
    q = model.encoder["n"].dist([x]).probs[0].detach()
    want = float((q * torch.tensor(labelled)).sum() - (q * q.log()).sum())
    assert unlabelled == pytest.approx(want, abs=1e-5)
    assert max(labelled) - min(labelled) > 1e-3  # the count changes what is scored


def test_an_enumerated_count_gives_a_finite_iwae_bound_that_does_not_count_absent_slots():
    torch.manual_seed(0)
    model = compiled(COUNTED).eval()
    x = batch(6, n=4)["x"]
    torch.manual_seed(0)
    bound = model.log_marginal({"x": x}, samples=3)
    assert bound.shape == (4,) and torch.isfinite(bound).all()
    assert (bound < 0).all()


# -- YAML ---------------------------------------------------------------------------------------

PLATED_YAML = """model: plates
plates:
  k: {size: 2, count: n}
variables:
  x: {role: observed, domain: binary, shape: [6]}
  n: {role: supervised, domain: categorical, classes: 3}
  y: {role: supervised, domain: categorical, classes: 3, plate: k}
  z: {role: latent, domain: real, shape: [2], plate: k}
encoder:
  n: {given: [x], dist: Categorical, net: {mlp: [8]}}
  y[k]: {given: [x, "z[k - 1]"], dist: Categorical, net: {mlp: [8]}}
  z[k]: {given: [x, "y[k]"], dist: Normal, net: {mlp: [8]}}
decoder:
  n: {dist: Categorical, params: uniform}
  y[k]: {dist: Categorical, params: uniform}
  z[k]: {dist: Normal, params: [0, 1]}
  x: {given: ["y[*]", "z[0]", "z[+1]"], dist: Bernoulli, net: {mlp: [8]}}
objective:
  estimators: {n: enumerate, y: enumerate}
  beta: {z: 2}
"""


def test_yaml_and_the_dsl_give_the_same_ir_as_written_and_expanded():
    from graphvae.spec.yaml_loader import load_yaml

    written, diags = load_yaml(PLATED_YAML, "p.yaml")
    assert not diags and written == parse_dsl(PLATED)[0]
    spec, diags = check_text(PLATED_YAML, "p.yaml", "yaml")
    assert not [d for d in diags if d.is_error] and spec == expanded()


def test_yaml_round_trips_plates_through_fmt():
    from graphvae.spec.formatter import format_text

    as_yaml, _ = format_text(PLATED, "p.gvae", "dsl", to="yaml")
    assert "plates:\n  k: {size: 2, count: n}\n" in as_yaml and "plate: k}" in as_yaml
    assert format_text(as_yaml, "p.yaml", "yaml")[0] == as_yaml
    back, _ = format_text(as_yaml, "p.yaml", "yaml", to="dsl")
    assert parse_dsl(back)[0] == parse_dsl(PLATED)[0]


@pytest.mark.parametrize("given, message", [
    ('"z[k-"', "expected a name or a plate slot (y[k], z[k-1], y[*], y[0]), found 'z[k-'"),
    ('"z[]"', "expected a name or a plate slot"),
])
def test_a_yaml_slot_that_does_not_read_is_a_positioned_wrong_type(given, message):
    text = PLATED_YAML.replace('"y[k]"], dist: Normal', given + "], dist: Normal")
    _, diags = check_text(text, "p.yaml", "yaml")
    assert [(d.code, d.span.line) for d in diags if d.is_error] == [("wrong-type", 12)]
    assert message in diags[0].message


# -- render and LaTeX ---------------------------------------------------------------------------

def test_the_diagram_draws_each_plate_as_a_box_of_folded_nodes():
    from graphvae.render.diagram import describe, to_graphviz

    d = describe(expanded())
    q, p = d.cluster("encoder"), d.cluster("decoder")
    assert q.plates == [("q_plate_k", "k = 1..2 (the first n)", ["q_y", "q_z"])]
    assert [n.lines[0] for n in q.nodes] == ["x : binary [6]", "n ~ Categorical(mlp(8)) [3]",
                                            "y[k] ~ Categorical(mlp(8)) [3]", "z[k] ~ Normal(mlp(8)) [2]"]
    assert {(e.tail, e.head, e.label) for e in q.edges} == {
        ("q_x", "q_n", ""), ("q_x", "q_y", ""), ("q_x", "q_z", ""), ("q_y", "q_z", ""), ("q_z", "q_y", "k-1")}
    assert {(e.tail, e.head) for e in p.edges} == {("p_y", "p_x"), ("p_z", "p_x")}
    assert q.label == "encoder  q(n, y[k], z[k] | x)" and "beta z = 2" in d.label
    source = to_graphviz(d).source
    assert "subgraph cluster_q_plate_k" in source and 'label="k = 1..2 (the first n)"' in source
    assert "q_z -> q_y [label=\"k-1\"" in source


def test_latex_writes_a_plates_factors_once_under_a_product():
    from graphvae.render.latex import factorisation

    spec = expanded()
    assert factorisation(spec, "encoder") == (
        "q(n, y_{0}, y_{1}, z_{0}, z_{1} \\mid x) = q(n \\mid x)\\, \\prod_{k=0}^{1} "
        "\\big[q({y}_{k} \\mid x, {z}_{k-1})\\, q({z}_{k} \\mid x, {y}_{k})\\big]^{[k < n]}")
    assert factorisation(spec, "decoder").endswith(
        "\\prod_{k=0}^{1} \\big[p({y}_{k})\\, p({z}_{k})\\big]^{[k < n]}\\, p(x \\mid y_{0}, y_{1}, z_{0}, z_{1})")
    shared = factorisation(expanded(SHARED), "decoder")
    assert "\\prod_{k=0}^{1} \\big[p({y}_{k})\\, p({z}_{k} \\mid {z}_{k-1})\\big]" in shared


# -- the demo spec ------------------------------------------------------------------------------

DEMO = ROOT / "specs" / "plates_demo.gvae"


def demo_data(path, n=60, seed=0):
    """Images of 16 pixels holding 0-2 objects: each object of class c lights pixels 4c..4c+3 of
    its half; -1 marks the class of an absent object."""
    import numpy as np

    rng = np.random.default_rng(seed)
    count = rng.integers(0, 3, n)
    y = np.where(np.arange(2)[None, :] < count[:, None], rng.integers(0, 3, (n, 2)), -1)
    x = (rng.random((n, 16)) < 0.05).astype("float32")
    for i in range(n):
        for k in range(count[i]):
            x[i, 8 * k + 2 * y[i, k]: 8 * k + 2 * y[i, k] + 2] = 1.0
    np.savez(path, x=x, n=count, y=y)


def test_the_demo_spec_checks_clean_and_is_canonical():
    from graphvae.spec.formatter import format_text
    from graphvae.spec.loader import check_file

    spec, diags = check_file(DEMO)
    assert diags == [] and spec.plates[0].count == "n"
    assert format_text(DEMO.read_text(), str(DEMO), "dsl")[0] == DEMO.read_text()


def test_the_demo_spec_trains_an_epoch_and_evaluates(tmp_path, capsys):
    import json

    from graphvae.cli.main import main

    demo_data(tmp_path / "d.npz")
    torch.set_num_threads(1)
    assert main(["train", str(DEMO), "--data", str(tmp_path / "d.npz"), "--out", str(tmp_path / "run"),
                 "--no-progress", "--device", "cpu"]) == 0
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    epoch = [r for r in rows if r.get("epoch") == 1]
    assert epoch and all(v == v for r in epoch for v in r.values() if isinstance(v, float))  # no NaN
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "run"), "--data", str(tmp_path / "d.npz"), "--device", "cpu",
                 "-k", "4"]) == 0
    out = capsys.readouterr().out
    assert "n" in out and "y_0" in out and "y_1" in out


@pytest.mark.parametrize("parents, slot, want_parents, want_absent", [
    ("x, z[k-2]", 0, ("x",), ((1, "z_0"),)),
    ("x, z[k-2]", 1, ("x",), ((1, "z_0"),)),
    ("x, z[k-2]", 2, ("x", "z_0"), ()),
    ("z[k-1], x, z[k-2]", 1, ("z_0", "x"), ((2, "z_0"),)),
    ("z[k-1], x, z[k-2]", 0, ("x",), ((0, "z_0"), (2, "z_0"))),
    ("x, w[*]", 1, ("x", "w_0", "w_1", "w_2"), ()),
    ("x, w[2]", 0, ("x", "w_2"), ()),
])
def test_each_slot_reads_its_earlier_slots_and_lacks_those_before_slot_0(parents, slot, want_parents, want_absent):
    text = f"""model m
plate k < 3
x : observed real[2]
w[k] : latent real[1]
y[k] : latent real[1]
z[k] : latent real[1]
encoder {{
  w[k] | x ~ Normal(mlp(4))
  z[k] | x ~ Normal(mlp(4))
  y[k] | {parents} ~ Normal(mlp(4))
}}
decoder {{
  w[k] ~ Normal(0, 1)
  y[k] ~ Normal(0, 1)
  z[k] ~ Normal(0, 1)
  x | w[*], y[*], z[*] ~ Normal(mlp(4))
}}
"""
    spec = expanded(text)
    f = next(f for f in spec.encoder if f.name == f"y_{slot}")
    assert (f.parents, f.absent) == (want_parents, want_absent)


@pytest.mark.parametrize("golden, code", [
    ("plate_size.gvae", "bad-plate-size"), ("later_slot.yaml", "later-slot"), ("bad_count.gvae", "bad-count"),
])
def test_check_reports_plate_mistakes_as_positioned_lines_and_exits_1(golden, code, capsys):
    from graphvae.cli.main import main

    path = ROOT / "tests" / "golden" / golden
    assert main(["check", str(path)]) == 1
    out = capsys.readouterr()
    text = out.out + out.err
    assert "Traceback" not in text
    first = text.splitlines()[0]
    assert first.startswith(f"{path}:") and first.endswith(f"[{code}]") and ": error: " in first
    assert text.splitlines()[2].strip().startswith("^")


def test_multi_mnist_spec_trains_an_epoch_on_a_small_generated_set(tmp_path, capsys):
    """specs/multi_mnist.gvae on `graphvae data make multi-mnist --max-digits 3` arrays (made here from
    random 28x28 "digits", since MNIST is not downloaded in tests): count, digits (N, 3) with -1 where
    absent, positions; one epoch, then eval reports the count's and each slot's error."""
    import json

    import numpy as np

    from graphvae.cli.main import main
    from graphvae.data.synthetic import make_multi_digits, npz_bytes

    rng = np.random.default_rng(0)
    images = (rng.random((30, 28, 28)) < 0.2).astype("float32")
    arrays = make_multi_digits(images, rng.integers(0, 10, 30), 40, 3, 50, seed=0)
    assert arrays["digits"].shape == (40, 3) and (arrays["digits"] == -1).any()
    (tmp_path / "multi.npz").write_bytes(npz_bytes(arrays))
    torch.set_num_threads(1)
    spec = ROOT / "specs" / "multi_mnist.gvae"
    assert main(["check", str(spec)]) == 0
    assert main(["train", str(spec), "--data", str(tmp_path / "multi.npz"), "--epochs", "1", "--batch-size", "20",
                 "--out", str(tmp_path / "run"), "--no-progress", "--device", "cpu"]) == 0
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert any(r.get("epoch") == 1 for r in rows)
    capsys.readouterr()
    assert main(["eval", str(tmp_path / "run"), "--data", str(tmp_path / "multi.npz"), "--device", "cpu",
                 "-k", "2"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("count", "digits_0", "digits_1", "digits_2"))


@pytest.mark.parametrize("count_estimator, slot_estimator", [
    ("enumerate", "enumerate"), ("relax(temperature = 0.5)", "relax(temperature = 0.5)"), ("reinforce", "reinforce"),
    ("enumerate", "relax(temperature = 0.5)"),
])
def test_every_estimator_of_the_count_and_the_slots_gives_a_finite_loss_and_gradients(count_estimator, slot_estimator):
    text = PLATED.replace("n = enumerate", f"n = {count_estimator}").replace("y = enumerate", f"y = {slot_estimator}")
    text = text.replace("n : supervised", "n : latent")
    torch.manual_seed(0)
    model = compiled(text)
    b = batch(7)
    loss, terms = model.loss(b, terms=True)
    loss.backward()
    assert torch.isfinite(loss) and all(torch.isfinite(t) for t in terms.values())
    assert all(p.grad is not None for p in model.encoder["n"].parameters())


def test_a_plate_run_resumes(tmp_path):
    from graphvae.cli.main import main

    demo_data(tmp_path / "d.npz")
    torch.set_num_threads(1)
    flags = ["--no-progress", "--device", "cpu"]
    assert main(["train", str(DEMO), "--data", str(tmp_path / "d.npz"), "--out", str(tmp_path / "run")] + flags) == 0
    assert main(["train", "--resume", str(tmp_path / "run"), "--epochs", "2"] + flags) == 0
    import graphvae

    run = graphvae.load_run(str(tmp_path / "run"), checkpoint="last", device="cpu")
    assert run.epoch == 2 and run.model.encoder["y_0"] is run.model.encoder["y_1"]


def test_a_mistake_in_a_plate_factor_is_reported_once_not_once_per_slot():
    text = PLATED.replace("y[k] | x, z[k-1] ~ Categorical", "y[k] | x, z[k-1] ~ Categorial")
    _, diags = check_text(text, "p.gvae", "dsl")
    found = [(d.code, d.span.line, d.span.col) for d in diags if d.is_error]
    assert found == [("unknown-family", 9, 22)]
    assert diags[0].message.endswith("(in each of its 2 slots)") and diags[0].hint == "did you mean 'Categorical'?"


def test_a_declared_variable_with_the_name_of_a_slot_is_a_duplicate():
    text = PLATED.replace("x : observed binary[6]\n", "x : observed binary[6]\ny_1 : latent real[2]\n")
    _, diags = check_text(text, "p.gvae", "dsl")
    assert [(d.code, d.span.line) for d in diags] == [("duplicate", 4)]
    assert diags[0].message == "'y_1' is the name of a slot of the plate variable 'y[k]' (line 6); rename one of them"


def test_compile_spec_writes_out_a_plate_spec_given_as_written():
    import graphvae

    spec, _ = parse_dsl(PLATED, "p.gvae")
    model = graphvae.compile_spec(spec)
    assert model.encoder["y_0"] is model.encoder["y_1"]
    assert graphvae.load_spec(spec).written == spec


def test_latex_folds_a_plates_deterministic_nodes_and_defines_them_once():
    from graphvae.render.latex import to_latex
    from graphvae.spec.loader import load_spec

    text = to_latex(load_spec(DEMO))
    assert "\\prod_{k=0}^{1} \\big[q({y}_{k} \\mid x, {z}_{k-1})\\, q({z}_{k} \\mid x, {z}_{k-1}, {y}_{k})\\big]" \
           "^{[k < n]}" in text
    assert "where ${h}_{k} = \\mathrm{mlp}(x, {z}_{k-1})$ is deterministic." in text


@pytest.mark.parametrize("written, canonical", [
    ("z[k-1]", "z[k-1]"), ("z[k - 1]", "z[k-1]"), ("z[k -1]", "z[k-1]"), ("z[k- 1]", "z[k-1]"),
    ("z[k + 2]", "z[k+2]"), ("z[k+0]", "z[k]"), ("z[ k ]", "z[k]"), ("z[*]", "z[*]"), ("z[ 1 ]", "z[1]"),
])
def test_the_dsl_reads_a_slot_with_or_without_spaces_as_one_canonical_text(written, canonical):
    spec, diags = parse_dsl(f"model m\nencoder {{\n  y | x, {written} ~ Normal(mlp(4))\n}}\n")
    assert not diags and spec.encoder[0].parents == ("x", canonical)


def test_the_demo_spec_in_yaml_loads_to_the_same_ir():
    from graphvae.spec.loader import load_spec

    assert load_spec(DEMO.with_suffix(".yaml")) == load_spec(DEMO)


# COUNTED with both slots written out: what COUNTED computes when n = 2.
TWO_SLOTS = ONE_SLOT.replace("z_0 : latent real[2]", "z_0 : latent real[2]\nz_1 : latent real[2]").replace(
    "  z_0 | x ~ Normal(mlp(8))", "  z_0 | x ~ Normal(mlp(8))\n  z_1 | x, z_0 ~ Normal(mlp(8))").replace(
    "  z_0 ~ Normal(0, 1)", "  z_0 ~ Normal(0, 1)\n  z_1 ~ Normal(0, 1)").replace("x | z_0 ~", "x | z_0, z_1 ~")


@pytest.mark.parametrize("count, hand, columns", [
    (1, ONE_SLOT, {"z_0": list(range(6)), "x": [0, 1]}),
    (2, TWO_SLOTS, {"z_0": list(range(6))}),
])
def test_the_counted_loss_equals_the_hand_written_model_of_its_present_slots(count, hand, columns):
    torch.manual_seed(5)
    plated, written = compiled(COUNTED), compiled(hand)
    tie(written, plated, columns)
    b = {"x": batch(8, n=6)["x"], "n": torch.full((6,), count)}
    torch.manual_seed(6)
    want = written.loss(b)
    torch.manual_seed(6)
    assert abs(plated.loss(b).item() - want.item()) < 1e-6


COUNTED_Y = """model counted_y
plate k < 2 count n
x : observed binary[6]
n : supervised categorical[3]
y[k] : latent categorical[3]
z[k] : latent real[2]
encoder {
  n | x ~ Categorical(mlp(8))
  y[k] | x ~ Categorical(mlp(8))
  z[k] | x, y[k] ~ Normal(mlp(8))
}
decoder {
  n ~ Categorical(uniform)
  y[k] ~ Categorical(uniform)
  z[k] ~ Normal(0, 1)
  x | y[*], z[*] ~ Bernoulli(mlp(8))
}
objective {
  n = enumerate
  y = enumerate
}
"""

ONE_SLOT_Y = """model one_y
x : observed binary[6]
n : supervised categorical[3]
y_0 : latent categorical[3]
z_0 : latent real[2]
encoder {
  n | x ~ Categorical(mlp(8))
  y_0 | x ~ Categorical(mlp(8))
  z_0 | x, y_0 ~ Normal(mlp(8))
}
decoder {
  n ~ Categorical(uniform)
  y_0 ~ Categorical(uniform)
  z_0 ~ Normal(0, 1)
  x | y_0, z_0 ~ Bernoulli(mlp(8))
}
objective {
  n = enumerate
  y_0 = enumerate
}
"""


@pytest.mark.parametrize("samples", [1, 4])
def test_the_iwae_bound_with_the_count_given_is_that_of_the_present_slots(samples):
    """An absent slot's sampled terms drop out of the importance weights, and its enumerated
    variable's p sums to one over its values: log p(x, n = 1) of the plate is the one-slot model's."""
    torch.manual_seed(7)
    plated, one = compiled(COUNTED_Y).eval(), compiled(ONE_SLOT_Y).eval()
    tie(one, plated, {"x": [0, 1, 2, 6, 7]})  # x | y_0, z_0: the columns of y_0 and z_0 in x | y[*], z[*]
    b = {"x": batch(9, n=5)["x"], "n": torch.ones(5, dtype=torch.long)}
    torch.manual_seed(8)
    want = one.log_marginal(b, samples=samples)
    torch.manual_seed(8)
    got = plated.log_marginal(b, samples=samples)
    assert torch.allclose(got, want, atol=1e-5), (got, want)


def test_an_absent_slots_enumerated_variable_leaves_the_training_loss_as_the_present_slots():
    torch.manual_seed(7)
    plated, one = compiled(COUNTED_Y), compiled(ONE_SLOT_Y)
    tie(one, plated, {"x": [0, 1, 2, 6, 7]})
    b = {"x": batch(10, n=5)["x"], "n": torch.ones(5, dtype=torch.long)}
    torch.manual_seed(9)
    want = one.loss(b)
    torch.manual_seed(9)
    assert abs(plated.loss(b).item() - want.item()) < 1e-6


def test_a_deterministic_node_in_an_undeclared_plate_is_reported():
    text = (DEMO.read_text().replace("h[k] | x, z[k-1]", "h[j] | x, z[k-1]"))
    _, diags = check_text(text, "d.gvae", "dsl")
    assert [(d.code, d.span.line, d.span.col) for d in diags if d.is_error][0] == ("undefined-plate", 15, 3)


def test_sample_draws_per_slot_reconstructions_whose_absent_slots_change_nothing(tmp_path, capsys):
    """`graphvae sample` of a counted plate writes slots_<plate>.png; decoded with the count clamped
    to j, the slots from j on do not reach the image (their codes can be anything)."""
    from graphvae.cli.main import main
    from graphvae.train.runs import load_run

    demo_data(tmp_path / "d.npz")
    torch.set_num_threads(1)
    assert main(["train", str(DEMO), "--data", str(tmp_path / "d.npz"), "--out", str(tmp_path / "run"),
                 "--no-progress", "--device", "cpu"]) == 0
    assert main(["sample", str(tmp_path / "run"), "--out", str(tmp_path / "figs"), "--device", "cpu"]) == 0
    assert "slots_k.png" in capsys.readouterr().out and (tmp_path / "figs" / "slots_k.png").stat().st_size > 0
    model = load_run(tmp_path / "run", "best", "cpu").model
    torch.manual_seed(0)
    a = {"y_0": torch.tensor([0, 1]), "y_1": torch.tensor([2, 0]), "z_0": torch.randn(2, 2), "z_1": torch.randn(2, 2)}
    b = {"y_0": a["y_0"], "y_1": torch.tensor([1, 2]), "z_0": a["z_0"], "z_1": torch.randn(2, 2) * 3}
    one = {"n": torch.tensor([1, 1])}
    assert torch.allclose(model.sample(2, given={**a, **one})["x"], model.sample(2, given={**b, **one})["x"])
    two = {"n": torch.tensor([2, 2])}
    assert not torch.allclose(model.sample(2, given={**a, **two})["x"], model.sample(2, given={**b, **two})["x"])
