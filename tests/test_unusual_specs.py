"""Valid-but-unusual specs through every command: check, compile, one step of train, eval, sample
and train --resume, on a tiny synthetic .npz; no traceback, and each command succeeds (sample may
refuse a non-image variable in one line).

The specs come from ``benchmarks/unusual_specs.py`` (which runs many random ones); each row here
forces the feature it covers and leaves the rest to a seeded draw.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import unusual_specs  # noqa: E402

torch.set_num_threads(1)

IMAGE = ("binary", (16,), "Bernoulli")
SAFE_NETS = ["mlp(4)", "linear", "mlp(4, activation = tanh)", "mlp(3, 3)"]
CASES = {
    "deterministic_nodes": dict(observed=[IMAGE], supervised=[("categorical", (3,))],
                                latent=[("real", (2,), "Normal")], q_det=True, p_det=True),
    "three_supervised": dict(observed=[IMAGE], supervised=[("categorical", (3,)), ("categorical", (2,)),
                                                           ("real", (2,), "Normal")], latent=[("real", (2,), "Normal")]),
    "continuous_supervised_only": dict(observed=[("real", (4, 4), "Normal")],
                                       supervised=[("real", (), "Laplace"), ("unit", (2,), "Beta")],
                                       latent=[("real", (1,), "Normal")]),
    "relax_everywhere": dict(observed=[IMAGE], supervised=[("categorical", (3,))],
                             latent=[("binary", (2,)), ("categorical", (3,))], estimator="relax(temperature = 0.5)"),
    "reinforce_leave_one_out_over_samples": dict(observed=[IMAGE], supervised=[("categorical", (3,))],
                                                 latent=[("binary", (2,)), ("real", (2,), "Normal")],
                                                 estimator="reinforce", samples=3),
    "reinforce_one_sample": dict(observed=[IMAGE], supervised=[("binary", (2,))], latent=[("categorical", (5,))],
                                 estimator="reinforce", samples=1),
    "enumerate_jointly": dict(observed=[IMAGE], supervised=[("categorical", (3,))],
                              latent=[("binary", (3,)), ("categorical", (2,))], estimator="enumerate"),
    "observed_grey_levels": dict(observed=[("unit", (4, 4), "ContinuousBernoulli"), ("unit", (3,), "Beta")],
                                 latent=[("real", (2,), "Laplace")]),
    "observed_real_image": dict(observed=[("real", (1, 4, 4), "Laplace"), ("real", (2,), "StudentT")],
                                supervised=[("categorical", (2,))], latent=[("real", (2,), "Normal")]),
    "observed_positive": dict(observed=[("positive", (16,), "Gamma"), ("positive", (2,), "Exponential"),
                                        ("positive", (2,), "LogNormal")], latent=[("real", (2,), "Normal")]),
    "observed_simplex_and_classes": dict(observed=[("simplex", (4,), "Dirichlet"), ("categorical", (5,), "Categorical")],
                                         latent=[("real", (2,), "Normal")]),
    "observed_binary_as_normal": dict(observed=[("binary", (3, 2, 2), "Normal")], latent=[("real", (2,), "Normal")]),
    "latent_domains": dict(observed=[IMAGE], latent=[("positive", (2,), "LogNormal"), ("unit", (2,), "Beta"),
                                                     ("simplex", (3,), "Dirichlet"), ("unit", (1,), "ContinuousBernoulli")]),
    "latent_heavy_tails": dict(observed=[IMAGE], supervised=[], latent=[("real", (2,), "StudentT"),
                                                                         ("real", (), "Laplace")],
                               nets=["mlp(4, activation = tanh)"]),
    "multi_dimensional": dict(observed=[("unit", (3, 2, 2), "ContinuousBernoulli")],
                              supervised=[("real", (2, 2), "Normal")], latent=[("real", (2, 2), "Normal"),
                                                                              ("binary", (2, 1))]),
    "tiny_sizes": dict(observed=[("binary", (1,), "Bernoulli")], supervised=[("categorical", (2,))],
                       latent=[("real", (), "Normal"), ("real", (1,), "Normal"), ("binary", (1,))]),
    "style_first": dict(observed=[IMAGE], supervised=[("categorical", (3,))], latent=[("real", (2,), "Normal")],
                        style_first=True, samples=2),
    "beta_and_weights": dict(observed=[IMAGE], supervised=[("categorical", (3,))], latent=[("real", (2,), "Normal")],
                             beta=True, samples=2),
    "batchnorm_groups_of_one": dict(observed=[IMAGE], supervised=[("categorical", (3,)), ("real", (1,), "Normal")],
                                    latent=[("real", (2,), "Normal")], nets=["mlp(4, batchnorm = true)"]),
    "dropout_and_activations": dict(observed=[IMAGE], supervised=[("categorical", (2,))],
                                    latent=[("real", (2,), "Normal")],
                                    nets=["mlp(4, dropout = 0.2)", "mlp(3, activation = softplus)",
                                          "mlp(2, 2, activation = elu)"]),
    "batches_of_one_without_validation": dict(observed=[IMAGE], supervised=[("categorical", (3,))],
                                              latent=[("real", (2,), "Normal")], nets=["mlp(4, batchnorm = true)"],
                                              train_settings={"batch_size": "1", "labelled_per_batch": "1",
                                                              "validation": "0"}),
    "labelled_only_baseline": dict(observed=[IMAGE], supervised=[("categorical", (3,)), ("real", (1,), "Normal")],
                                   latent=[("real", (2,), "Normal")],
                                   train_settings={"labelled_only": "true", "labelled_per_batch": "-1"}),
    "optimiser_schedule_clipping": dict(observed=[IMAGE], supervised=[("categorical", (2,))],
                                        latent=[("real", (2,), "Normal")],
                                        train_settings={"optimizer": "sgd", "schedule": "cosine", "grad_clip": "1",
                                                        "grad_clip_value": "0.5", "selection": "elbo",
                                                        "binarize": "threshold", "validation": "0.5"}),
}


@pytest.mark.parametrize("name", list(CASES))
def test_unusual_spec_through_every_command(tmp_path, name):
    knobs = dict(CASES[name])
    knobs.setdefault("nets", SAFE_NETS)
    recipe = unusual_specs.random_recipe(np.random.default_rng(list(CASES).index(name)), name.replace("_", ""),
                                         **knobs)
    results = unusual_specs.run_recipe(recipe, tmp_path / "case")
    tracebacks = [f"{command}:\n{tb}" for command, _, _, tb in results if tb]
    assert not tracebacks, recipe.text() + "\n" + "\n".join(tracebacks)
    codes = {command: (code, last) for command, code, last, _ in results}
    assert list(codes) == ["check", "compile", "train", "eval", "sample", "resume"], (recipe.text(), codes)
    for command, (code, last) in codes.items():
        if command == "sample" and code == 1:
            assert last.startswith("graphvae: error: the observed variable x is not image-like"), last
        else:
            assert code == 0, (recipe.text(), command, last)
