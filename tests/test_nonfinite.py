"""Non-finite values anywhere in a model end as one line: the trainer's non-finite stop naming the
term that went bad (at the right step and epoch), or a one-line error of ``eval`` and ``sample``.

A node's weights set to NaN stand for a model that diverged; torch would otherwise raise from
inside a distribution (StudentT's Chi2 argument check, ``torch.bernoulli``, ``torch.multinomial``,
a relaxed Categorical's logits check).
"""

from __future__ import annotations

import pytest
import torch

import graphvae.compile.compiler as compiler
from graphvae.cli import main
from graphvae.compile import distributions as dists
from graphvae.train import reporting
from graphvae.train.checkpoint import load_checkpoint, save_checkpoint

torch.set_num_threads(1)

NAN = float("nan")
ONE_STEP = """
train {
  epochs = 1
  batch_size = 2000
  labels = 20
  labelled_per_batch = 10
}
"""
M2 = """model m2
x : observed binary[64]
y : supervised categorical[10]
z : latent real[2]
encoder {{
  y | x ~ Categorical(mlp(8))
  z | x, y ~ Normal(mlp(8{bn}))
}}
decoder {{
  z ~ Normal(0, 1)
  y ~ Categorical(uniform)
  x | y, z ~ Bernoulli(mlp(8))
}}
objective {{ y = {y} }}
"""
STUDENT = """model st
x : observed real[64]
z : latent real[2]
encoder { z | x ~ StudentT(mlp(8)) }
decoder {
  z ~ Normal(0, 1)
  x | z ~ StudentT(mlp(8))
}
"""
BINARY = """model bits
x : observed binary[64]
b : latent binary[3]
encoder { b | x ~ Bernoulli(mlp(8)) }
decoder {
  b ~ Bernoulli(uniform)
  x | b ~ Bernoulli(mlp(8))
}
objective { b = {est} }
"""
CLASSES = """model classes
x : observed binary[64]
c : latent categorical[4]
encoder { c | x ~ Categorical(mlp(8)) }
decoder {
  c ~ Categorical(uniform)
  x | c ~ Bernoulli(mlp(8))
}
objective { c = {est} }
"""
SIMPLEX = """model mix
x : observed unit[64]
w : latent simplex[3]
g : latent positive[2]
encoder {
  w | x ~ Dirichlet(mlp(8))
  g | x, w ~ Gamma(mlp(8))
}
decoder {
  w ~ Dirichlet(uniform)
  g ~ Gamma(1, 1)
  x | w, g ~ ContinuousBernoulli(mlp(8))
}
"""
STYLE_FIRST = """model sf
x : observed binary[64]
y : supervised categorical[10]
z : latent real[2]
encoder {
  z | x ~ Normal(mlp(8))
  y | x, z ~ Categorical(mlp(8))
}
decoder {
  z ~ Normal(0, 1)
  y ~ Categorical(uniform)
  x | y, z ~ Bernoulli(mlp(8))
}
"""
HIERARCHY = """model h
x : observed binary[64]
z1 : latent real[2]
z2 : latent positive[2]
encoder {
  z1 | x ~ Normal(mlp(8))
  z2 | z1 ~ LogNormal(mlp(8))
}
decoder {
  z1 ~ Laplace(0, 1)
  z2 | z1 ~ LogNormal(mlp(8))
  x | z2 ~ Bernoulli(mlp(8))
}
"""


def _spec(tmp_path, text: str):
    path = tmp_path / "spec.gvae"
    path.write_text(text + ONE_STEP)
    return path


def _poison(model, nodes) -> None:
    for side, name in nodes:
        for p in getattr(model, side)[name].parameters():
            p.data.fill_(NAN)


def _one_line(err: str) -> str:
    assert "Traceback" not in err
    lines = [line for line in err.strip().splitlines() if line.startswith("graphvae:")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize("text, nodes, term", [
    (STUDENT, [("encoder", "z")], "kl/z"),  # torch's Chi2 inside StudentT refused NaN df
    (STUDENT, [("decoder", "x")], "reconstruction"),
    (M2.format(y="enumerate", bn=""), [("encoder", "y")], "classifier/y"),
    (M2.format(y="reinforce", bn=""), [("encoder", "y")], "classifier/y"),  # torch.multinomial refused NaN
    (M2.format(y="relax", bn=""), [("encoder", "z")], "kl/z"),
    (M2.format(y="enumerate", bn=""), [("decoder", "x")], "reconstruction"),
    (BINARY.replace("{est}", "relax"), [("encoder", "b")], "kl/b"),
    (BINARY.replace("{est}", "reinforce"), [("encoder", "b")], "kl/b"),  # torch.bernoulli refused NaN
    (BINARY.replace("{est}", "enumerate"), [("decoder", "x")], "reconstruction"),
    (CLASSES.replace("{est}", "relax"), [("encoder", "c")], "kl/c"),  # ExpRelaxedCategorical's logits check
    (CLASSES.replace("{est}", "reinforce"), [("encoder", "c")], "kl/c"),
    (SIMPLEX, [("encoder", "w")], "kl/w"),
    (SIMPLEX, [("encoder", "g")], "kl/g"),
    (STYLE_FIRST, [("encoder", "z")], "kl/z"),  # y is read after z in q: z is the culprit
    (HIERARCHY, [("decoder", "z2")], "kl/z2"),
    (HIERARCHY, [("encoder", "z1"), ("decoder", "x")], "kl/z1"),
], ids=["studentt_q", "studentt_p", "m2_enumerate_q", "m2_reinforce_q", "m2_relax_z", "m2_p", "bits_relax",
        "bits_reinforce", "bits_enumerate_p", "classes_relax", "classes_reinforce", "dirichlet_q", "gamma_q",
        "style_first", "hierarchy_p", "hierarchy_q_and_p"])
def test_train_stops_at_a_non_finite_value_naming_its_term(tmp_path, monkeypatch, capsys, text, nodes, term):
    original = compiler.compile_spec

    def poisoned(spec, *args, **kwargs):
        model = original(spec, *args, **kwargs)
        _poison(model, nodes)
        return model

    monkeypatch.setattr(compiler, "compile_spec", poisoned)
    code = main(["train", str(_spec(tmp_path, text)), "--out", str(tmp_path / "run"), "--no-progress",
                 "--device", "cpu"])
    line = _one_line(capsys.readouterr().err)
    assert code == 1
    # one step per epoch: the NaN lands on the epoch's last step, which is still epoch 1
    assert f"non-finite loss at step 1 (epoch 1): term '{term}' is nan; no checkpoint was written yet" in line


@pytest.mark.parametrize("bad, order, expected", [
    (["loss", "elbo"], (), "elbo"),
    (["loss"], (), "loss"),
    (["loss", "elbo", "reconstruction", "kl/z"], ("z",), "kl/z"),
    (["loss", "elbo", "reconstruction"], ("z",), "reconstruction"),
    (["loss", "elbo", "kl/y", "kl/z"], ("z", "y"), "kl/z"),
    (["loss", "elbo", "kl/y", "kl/z"], ("y", "z"), "kl/y"),
    (["loss", "elbo", "kl/y", "classifier/y", "ess/y"], ("y", "z"), "classifier/y"),
    (["loss", "elbo", "ess/y"], ("y",), "ess/y"),
])
def test_culprit_is_the_most_specific_term(bad, order, expected):
    assert reporting.culprit_term(bad, order) == expected


def test_step_and_epoch_of_a_later_epoch(tmp_path, capsys):
    """Three steps an epoch, NaN weights from the fifth step: step 5 of epoch 2, after epoch 1's last.pt."""
    from graphvae.compile.model import CompiledModel

    spec = _spec(tmp_path, M2.format(y="enumerate", bn=""))
    calls = {"n": 0}
    original = CompiledModel.loss

    def loss(self, batch, terms=False, layout=None):
        if self.training:
            calls["n"] += 1
            if calls["n"] == 5:
                _poison(self, [("decoder", "x")])
        return original(self, batch, terms=terms, layout=layout)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(CompiledModel, "loss", loss)
        code = main(["train", str(spec), "--out", str(tmp_path / "run"), "--epochs", "3", "--batch-size", "500",
                     "--no-progress", "--device", "cpu"])
    line = _one_line(capsys.readouterr().err)
    assert code == 1
    assert "non-finite loss at step 5 (epoch 2): term 'reconstruction' is nan; the last good checkpoint" in line


def test_non_finite_validation_stops_the_run(tmp_path, monkeypatch, capsys):
    """NaN batch-norm statistics: training (batch statistics) stays finite, validation (running ones) does not."""
    original = compiler.compile_spec

    def poisoned(spec, *args, **kwargs):
        model = original(spec, *args, **kwargs)
        for name, buf in model.encoder["z"].named_buffers():
            if name.endswith("running_var"):
                buf.fill_(NAN)
        return model

    monkeypatch.setattr(compiler, "compile_spec", poisoned)
    code = main(["train", str(_spec(tmp_path, M2.format(y="enumerate", bn=", batchnorm = true"))),
                 "--out", str(tmp_path / "run"), "--no-progress", "--device", "cpu"])
    line = _one_line(capsys.readouterr().err)
    assert code == 1
    assert "non-finite validation metric after epoch 1 (step 1): val/elbo is nan on 144 examples" in line
    assert not (tmp_path / "run" / "last.pt").exists()


@pytest.fixture(scope="module")
def poisoned_run(tmp_path_factory):
    """A trained run whose checkpoints then hold NaN decoder weights (a diverged run)."""
    root = tmp_path_factory.mktemp("nan_run")
    spec = root / "spec.gvae"
    spec.write_text(M2.format(y="reinforce", bn="") + ONE_STEP)
    assert main(["train", str(spec), "--out", str(root / "run"), "--epochs", "1", "--no-progress",
                 "--device", "cpu"]) == 0
    for which in ("last", "best"):
        path = root / "run" / f"{which}.pt"
        state = load_checkpoint(path)
        for key, value in state["model"].items():
            if value.is_floating_point() and (key.startswith("decoder.x") or key.startswith("encoder.y")):
                value.fill_(NAN)
        save_checkpoint(path, state)
    return root / "run"


@pytest.mark.parametrize("argv, message", [
    (["eval", "{run}"], "(best.pt) on the test split: elbo is nan on 360 examples"),
    (["eval", "{run}", "--split", "validation", "-k", "3"], "on the validation split: elbo is nan on 144 examples"),
    (["sample", "{run}", "--out", "{tmp}/figs"], "(best.pt): the model gives non-finite values of x"),
    (["train", "--resume", "{run}", "--epochs", "2"], "non-finite loss at step 2 (epoch 2): term 'classifier/y'"),
])
def test_commands_on_a_diverged_run_say_one_line(poisoned_run, tmp_path, capsys, argv, message):
    argv = [a.format(run=poisoned_run, tmp=tmp_path) for a in argv] + ["--device", "cpu"]
    code = main(argv + (["--no-progress"] if argv[0] == "train" else []))
    line = _one_line(capsys.readouterr().err)
    assert code == 1
    assert message in line


FAMILY_PARAMS = [
    ("Categorical", {"logits": torch.randn(5, 3, 7)}, 1),
    ("Bernoulli", {"logits": torch.randn(5, 4)}, 1),
    ("Normal", {"loc": torch.randn(3, 4), "scale": torch.rand(3, 4) + 0.1}, 1),
    ("StudentT", {"df": torch.rand(3, 4) + 1, "loc": torch.randn(3, 4), "scale": torch.rand(3, 4) + 0.1}, 1),
    ("LogNormal", {"loc": torch.randn(3, 4), "scale": torch.rand(3, 4) + 0.1}, 0),
    ("Dirichlet", {"concentration": torch.rand(3, 4) + 0.1}, 0),
    ("Gamma", {"concentration": torch.rand(3) + 0.1, "rate": torch.rand(3) + 0.1}, 0),
    ("Beta", {"concentration1": torch.rand(3) + 0.1, "concentration0": torch.rand(3) + 0.1}, 0),
]


@pytest.mark.parametrize("family, params, n_event", FAMILY_PARAMS)
@pytest.mark.parametrize("bad", [NAN, float("inf"), -float("inf")])
def test_drawable_draws_what_torch_draws_and_never_raises(family, params, n_event, bad):
    d = dists.build(family, params, n_event)
    target = (2,) + tuple(d.batch_shape)
    torch.manual_seed(1)
    expected = d.expand(target).sample()
    torch.manual_seed(1)
    assert torch.equal(dists.drawable(d).expand(target).sample(), expected)  # valid parameters: the same draws
    broken = {k: v.clone() for k, v in params.items()}
    for v in broken.values():
        v.view(-1)[0] = bad
    d = dists.build(family, broken, n_event)  # no argument check raises (StudentT builds a Chi2 inside)
    value = dists.drawable(d).expand(target).sample()
    assert value.shape == expected.shape
