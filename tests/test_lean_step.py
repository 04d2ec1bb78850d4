"""The lean training step: a batch's layout gives the same numbers, and the step compiles whole
(``torch.compile(model.loss, fullgraph=True)``) for every shipped spec.

The trainer calls ``model.loss(batch, terms=True, layout=batch.layout)`` with ``check_inputs = False``
(its data were checked once, when loaded); that call must trace into one graph with no graph
break, which ``torch._dynamo.explain`` tells without generating code.  One small M2 is also
compiled for real (inductor) and must give the eager loss and gradients on the same noise.
"""

from __future__ import annotations

import glob
import math
import os

import pytest
import torch

from graphvae.compile.compiler import compile_spec

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPECS = sorted(glob.glob(os.path.join(ROOT, "specs", "*.gvae")) + glob.glob(os.path.join(ROOT, "specs", "*.yaml")))


def spec_batch(model, n: int = 6):
    """A batch of ``n`` examples of every observed and supervised variable, labelled rows first
    (every supervised variable), with its layout."""
    from test_compiler import random_batch  # tests/ is on sys.path under pytest

    batch = random_batch(model, n)
    supervised = frozenset(v.name for v in model.spec.supervised)
    layout = ((supervised, n // 2), (frozenset(), n - n // 2)) if supervised else ((frozenset(), n),)
    return batch, layout


@pytest.mark.parametrize("path", SPECS, ids=[os.path.basename(p) for p in SPECS])
def test_a_layout_gives_the_numbers_of_the_labels(path):
    """``loss(batch, layout=...)`` (no look at the labels, unchecked) equals ``loss(batch)`` on the same noise:
    the loss, every logged term and every gradient."""
    torch.manual_seed(0)
    model = compile_spec(path, samples=2)
    batch, layout = spec_batch(model, 8)
    results = []
    for check, lay in ((True, None), (False, layout), (True, layout)):
        model.check_inputs = check
        torch.manual_seed(3)
        loss, terms = model.loss(batch, terms=True, layout=lay)
        results.append((loss, terms, torch.autograd.grad(loss, list(model.parameters()), allow_unused=True)))
    (l0, t0, g0), *others = results
    for loss, terms, grads in others:
        assert torch.equal(loss, l0)
        assert terms.keys() == t0.keys() and all(torch.equal(terms[k], t0[k]) for k in t0)
        assert all((a is None and b is None) or torch.equal(a, b) for a, b in zip(grads, g0))


@pytest.mark.parametrize("layout, message", [
    (((frozenset("y"), 3), (frozenset(), 2)), "covers 5 rows but the batch has 6"),
    (((frozenset("q"), 3), (frozenset(), 3)), "a run names supervised variables of the batch"),
    (((frozenset(), 3), (frozenset("y"), 3)), "the layout says 'y' is not labelled in rows where the batch says"),
])
def test_a_wrong_layout_is_refused(layout, message):
    model = compile_spec(os.path.join(ROOT, "specs", "m2.gvae"))
    batch = {"x": torch.bernoulli(torch.full((6, 784), 0.5)), "y": torch.tensor([1, 2, 3, -1, -1, -1])}
    from graphvae.errors import UserError

    with pytest.raises(UserError, match=message):
        model.loss(batch, layout=layout)


def compile_whole(model, batch, layout) -> int:
    """Trace the training step as a user's ``torch.compile(model.loss, fullgraph=True)`` does (with the
    eager backend: no code generated); a graph break raises, naming its cause.  The graphs made."""
    import torch._dynamo as dynamo

    dynamo.reset()
    dynamo.utils.counters.clear()
    torch.compile(model.loss, fullgraph=True, backend="eager")(batch, terms=True, layout=layout)
    return dynamo.utils.counters["stats"]["unique_graphs"]


@pytest.mark.parametrize("path", SPECS, ids=[os.path.basename(p) for p in SPECS])
def test_the_training_step_of_every_shipped_spec_has_no_graph_break(path):
    torch.manual_seed(0)
    model = compile_spec(path)
    model.check_inputs = False
    batch, layout = spec_batch(model)
    assert compile_whole(model, batch, layout) == 1


M2 = """model small_m2
x : observed   binary[20]
y : supervised categorical[4]
z : latent     real[3]
encoder {
  y | x    ~ Categorical(mlp(16))
  z | x, y ~ Normal(mlp(16))
}
decoder {
  z        ~ Normal(0, 1)
  y        ~ Categorical(uniform)
  x | y, z ~ Bernoulli(mlp(16))
}
objective {
  y = enumerate
}
"""


def test_a_mixed_layout_of_two_labels_has_no_graph_break():
    """Three labelled patterns in one batch (both labels, s only in two runs, none): still one graph."""
    torch.manual_seed(0)
    model = compile_spec(os.path.join(ROOT, "specs", "two_labels.gvae"))
    batch = {"x": torch.bernoulli(torch.full((9, 784), 0.5)),
             "y": torch.tensor([1, 2, 3, -1, -1, -1, -1, -1, -1]),
             "s": torch.tensor([0, 1, 0, 1, 1, 0, -1, -1, -1])}
    layout = ((frozenset("ys"), 3), (frozenset("s"), 1), (frozenset("s"), 2), (frozenset(), 3))
    model.loss(batch, layout=layout)  # checked: the layout agrees with the labels
    model.check_inputs = False
    assert compile_whole(model, batch, layout) == 1


def test_compiled_step_equals_the_eager_step(tmp_path):
    """inductor's loss and gradients equal eager ones on the same batch and noise."""
    path = tmp_path / "small_m2.gvae"
    path.write_text(M2)
    torch.manual_seed(0)
    model = compile_spec(path).set_data_size(1000, 100)
    model.check_inputs = False
    batch, layout = spec_batch(model, 12)
    step = torch.compile(model.loss, fullgraph=True)
    results = []
    for fn in (model.loss, step):
        torch.manual_seed(1)
        loss, terms = fn(batch, terms=True, layout=layout)
        grads = torch.autograd.grad(loss, list(model.parameters()))
        results.append((loss.detach(), {k: v.detach() for k, v in terms.items()}, grads))
    (l0, t0, g0), (l1, t1, g1) = results
    torch.testing.assert_close(l1, l0, rtol=1e-5, atol=1e-5)
    assert t1.keys() == t0.keys()
    for k in t0:
        torch.testing.assert_close(t1[k], t0[k], rtol=1e-5, atol=1e-5)
    for a, b in zip(g1, g0):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_one_graph_takes_every_batch_size_under_dynamic_shapes(tmp_path):
    """``dynamic=True``: batches of other sizes (an epoch's short last batch) reuse the graph and give
    the eager numbers."""
    path = tmp_path / "small_m2.gvae"
    path.write_text(M2)
    torch.manual_seed(0)
    model = compile_spec(path).set_data_size(1000, 100)
    model.check_inputs = False
    step = torch.compile(model.loss, fullgraph=True, dynamic=True, backend="eager")
    for n_l, n_u in ((4, 8), (4, 5), (4, 11)):
        batch = {"x": torch.bernoulli(torch.full((n_l + n_u, 20), 0.5)), "y": torch.randint(0, 4, (n_l + n_u,))}
        batch["y"][n_l:] = -1
        layout = ((frozenset("y"), n_l), (frozenset(), n_u))
        torch.manual_seed(2)
        eager = model.loss(batch, terms=True, layout=layout)
        torch.manual_seed(2)
        compiled = step(batch, terms=True, layout=layout)
        torch.testing.assert_close(compiled[0], eager[0])
        assert all(torch.allclose(compiled[1][k], eager[1][k]) for k in eager[1])


@pytest.mark.parametrize("argv, value", [([], None), (["--compile"], "true"), (["--compile", "false"], "false"),
                                         (["--compile", "true"], "true")])
def test_the_compile_flag_alone_means_true(argv, value):
    from graphvae.cli.parser import build_parser

    args = build_parser().parse_args(["train", "spec.gvae", *argv])
    assert args.compile == value


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_training_run_on_cuda_keeps_its_data_there_and_ends_finite(tmp_path):
    """The CUDA path end to end (benchmarks/gpu_check.sh runs it on a lent GPU): the digits arrays
    live on the device, a step never waits for the host, and two epochs end with finite metrics."""
    from graphvae.train.loop import train
    from graphvae.train import config as trainconfig

    cfg = trainconfig.from_spec(compile_spec(os.path.join(ROOT, "specs", "digits_m2.gvae")).spec)
    cfg = trainconfig.check_config(type(cfg)(**{**trainconfig.to_dict(cfg), "device": "cuda", "epochs": 2}))
    result = train(os.path.join(ROOT, "specs", "digits_m2.gvae"), cfg, tmp_path / "run", progress=False,
                   log=lambda *_: None)
    assert result.epoch == 2 and all(math.isfinite(r["train/loss"]) for r in result.metrics)
