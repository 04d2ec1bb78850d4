"""graphvae plot: curves.png draws each metric beside only those of its scale, one panel each."""

from __future__ import annotations

import pytest

from graphvae.cli import main
from graphvae.train.pictures import Panel, curve_panels
from graphvae.train.runfolder import RunFolder

ROW = {"epoch": 1, "step": 10, "train/loss": 23.1, "train/elbo": -23.0, "train/reconstruction": -20.6,
       "train/kl/z": 0.5, "train/kl/y": 0.1, "train/classifier/y": -1.1, "train/ess/y": 1.0,
       "train/n_labelled/y": 100.0, "lr": 0.003, "val/examples": 24, "val/elbo": -26.7, "val/error/y": 0.12,
       "val/error/r": 0.84, "epoch_seconds": 0.1, "steps_per_s": 120.0, "examples_per_s": 2e4, "selected": True}

LOSS = Panel("loss (nats per example)", ("train/loss",))
ELBO = Panel("ELBO (nats per example)", ("train/elbo", "val/elbo"))
REST = [Panel("reconstruction log-likelihood", ("train/reconstruction",)), Panel("KL terms", ("train/kl/z", "train/kl/y")),
        Panel("classifier terms: log q(label | x)", ("train/classifier/y",))]
SPEED = Panel("throughput (steps/s)", ("steps_per_s",))


@pytest.mark.parametrize("rows, domains, panels", [
    ([ROW], {"y": "categorical", "r": "real"},
     [LOSS, ELBO, Panel("validation error of y", ("val/error/y",), percent=True),
      Panel("validation RMSE of r", ("val/error/r",)), *REST, SPEED]),
    ([ROW], None,  # the spec unread: no units
     [LOSS, ELBO, Panel("validation error of y", ("val/error/y",)), Panel("validation error of r", ("val/error/r",)),
      *REST, SPEED]),
    ([ROW, {**ROW, "epoch": 2, "lr": 0.0015}], {"y": "categorical", "r": "positive"},  # a schedule: its own panel
     [LOSS, ELBO, Panel("validation error of y", ("val/error/y",), percent=True),
      Panel("validation RMSE of r", ("val/error/r",)), *REST, Panel("learning rate", ("lr",)), SPEED]),
    ([{"epoch": 1, "train/loss": 5.0, "train/elbo": -5.0, "train/extra": 1.0}], {},  # no validation split
     [LOSS, Panel("ELBO (nats per example)", ("train/elbo",)), Panel("other train terms", ("train/extra",))]),
])
def test_curve_panels(rows, domains, panels):
    assert curve_panels(rows, domains) == panels


def test_loss_and_elbo_never_share_a_panel():
    for panel in curve_panels([ROW]):
        assert not ({"train/loss"} & set(panel.keys) and {"train/elbo", "val/elbo"} & set(panel.keys))


TINY = """model tiny
x : observed   real[4]
y : supervised categorical[3]
r : supervised real
z : latent     real[2]
encoder {
  y | x       ~ Categorical(mlp(8))
  r | x       ~ Normal(mlp(8))
  z | x, y, r ~ Normal(mlp(8))
}
decoder {
  z           ~ Normal(0, 1)
  y           ~ Categorical(uniform)
  r           ~ Normal(0, 1)
  x | y, z, r ~ Normal(mlp(8))
}
"""


@pytest.mark.parametrize("spec, titles", [
    (TINY, ["validation error of y", "validation RMSE of r"]),  # the units from the run's stored spec
    ("model broken\n", ["validation error of y", "validation error of r"]),  # unreadable: drawn all the same
])
def test_plot_cli_takes_the_units_from_the_run(tmp_path, capsys, monkeypatch, spec, titles):
    import graphvae.cli.plot as plot

    run = RunFolder(tmp_path / "run")
    run.create(spec, ".gvae", {})
    for epoch in (1, 2):
        run.append_metrics({**ROW, "epoch": epoch})
    drawn = {}
    monkeypatch.setattr(plot, "plot_curves", lambda rows, out, title, domains: drawn.update(domains=domains))
    assert main(["plot", str(run.path)]) == 0
    assert capsys.readouterr().out == f"wrote {run.path / 'curves.png'}\n"
    assert [p.title for p in curve_panels(run.read_metrics(), drawn["domains"])][2:4] == titles
