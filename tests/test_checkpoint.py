"""Checkpoints: atomic writes, weights_only loading, corrupt files, RNG states, spec differences."""

from __future__ import annotations

import os
import random

import numpy as np
import pytest
import torch

from graphvae.errors import UserError
from graphvae.spec.ir import Dist, Factor, Net, Param, Spec, Variable
from graphvae.train import checkpoint
from graphvae.train.checkpoint import capture_rng, load_checkpoint, restore_rng, save_checkpoint
from graphvae.train.checkpoint_checks import spec_differences, state_dict_differences

torch.set_num_threads(1)


def _state(value: float) -> dict:
    return {"model": {"w": torch.full((2, 3), value)}, "optimizer": {"state": {}, "param_groups": []},
            "step": 3, "epoch": 1, "rng": capture_rng(), "config": {"lr": 0.001}, "spec": "model m\n",
            "extra": {"best": 0.5, "sums": {"loss": 1.5}}}


def test_round_trip_with_weights_only(tmp_path):
    path = tmp_path / "last.pt"
    save_checkpoint(path, _state(2.0))
    back = load_checkpoint(path)
    assert torch.equal(back["model"]["w"], torch.full((2, 3), 2.0))
    assert back["step"] == 3 and back["config"] == {"lr": 0.001} and back["spec"] == "model m\n"
    assert back["format"] == checkpoint.CHECKPOINT_FORMAT
    torch.load(path, weights_only=True)  # loads under the safe unpickler


def test_failing_write_leaves_old_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint(path, _state(1.0))
    before = path.read_bytes()

    def broken_fsync(fd):
        raise OSError("no space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(UserError, match="no space left on device; the previous file is kept"):
        save_checkpoint(path, _state(9.0))
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "missing", "not_a_dict"])
def test_corrupt_checkpoint_is_one_line_user_error(tmp_path, damage):
    path = tmp_path / "last.pt"
    save_checkpoint(path, _state(1.0))
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        path.write_bytes(b"\x00not a zip file at all" * 10)
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "missing":
        path.unlink()
    else:
        torch.save([1, 2, 3], path)
    with pytest.raises(UserError) as exc:
        load_checkpoint(path)
    assert str(path) in str(exc.value) and "\n" not in str(exc.value)


def test_rng_round_trip(tmp_path):
    torch.manual_seed(1)
    np.random.seed(2)
    random.seed(3)
    state = capture_rng()
    first = (torch.rand(4), np.random.rand(3), [random.random() for _ in range(3)])
    path = tmp_path / "rng.pt"
    save_checkpoint(path, {"model": {}, "spec": "", "rng": state})
    torch.rand(10), np.random.rand(10), random.random()  # move every generator on
    restore_rng(load_checkpoint(path)["rng"])
    again = (torch.rand(4), np.random.rand(3), [random.random() for _ in range(3)])
    assert torch.equal(first[0], again[0])
    assert np.array_equal(first[1], again[1])
    assert first[2] == again[2]


def _m2(z: int = 50, hidden: int = 500, y_classes: int = 10, extra: bool = False) -> Spec:
    variables = [Variable("x", "observed", "binary", (784,)), Variable("y", "supervised", "categorical", (y_classes,)),
                 Variable("z", "latent", "real", (z,))]
    if extra:
        variables.append(Variable("w", "latent", "real", (2,)))
    enc = (Factor("y", ("x",), Dist("Categorical", (Param(None, Net("mlp", (hidden,))),))),
           Factor("z", ("x", "y"), Dist("Normal", (Param(None, Net("mlp", (hidden,))),))))
    dec = (Factor("x", ("y", "z"), Dist("Bernoulli", (Param(None, Net("mlp", (hidden,))),))),)
    return Spec("m2", tuple(variables), enc, dec)


@pytest.mark.parametrize("other, phrases", [
    (_m2(), []),
    (_m2(z=20), ["z: latent real[50] in the run, latent real[20] in the spec"]),
    (_m2(y_classes=5), ["y: supervised categorical[10] in the run, supervised categorical[5] in the spec"]),
    (_m2(extra=True), ["variable w (latent real[2]) is in the spec, not in the run"]),
    (_m2(hidden=256), ["encoder: 'y | x ~ Categorical(mlp(500))' in the run, 'y | x ~ Categorical(mlp(256))' in the spec"]),
])
def test_spec_differences(other, phrases):
    diffs = spec_differences(_m2(), other)
    for phrase in phrases:
        assert phrase in diffs
    assert bool(diffs) == bool(phrases)


@pytest.mark.parametrize("saved, current, phrase", [
    ({"a": torch.zeros(2)}, {"a": torch.zeros(3)}, "a: shape (2,) in the checkpoint, (3,) in the model"),
    ({"a": torch.zeros(2)}, {}, "parameter a is in the checkpoint, not in the model"),
    ({}, {"b": torch.zeros(1)}, "parameter b is in the model, not in the checkpoint"),
])
def test_state_dict_differences(saved, current, phrase):
    assert state_dict_differences(saved, current) == [phrase]


@pytest.mark.parametrize("a, b", [
    ({"x": 1}, {"x": 1.0}), ({"x": 1}, {"x": "1"}), ({"x": [1]}, {"x": (1,)}), ({"x": 1, "y": 2}, {"y": 2, "x": 1}),
    ({"w": torch.zeros(2)}, {"w": torch.zeros(2, dtype=torch.float64)}), ({"w": torch.zeros(4)}, {"w": torch.zeros(2, 2)}),
    ({"w": torch.zeros(3)}, {"w": torch.tensor([0.0, 0.0, 1e-45])}),
])
def test_digest_tells_types_shapes_order_and_values_apart(a, b):
    assert checkpoint.payload_digest(a) != checkpoint.payload_digest(b)
    assert checkpoint.payload_digest(a) == checkpoint.payload_digest(dict(a, digest="ignored"))


def test_digest_is_stored_and_checked(tmp_path):
    path = tmp_path / "last.pt"
    save_checkpoint(path, _state(1.0))
    state = torch.load(path, weights_only=True)
    assert state["format"] == 3 and state["digest"] == checkpoint.payload_digest(state)
    state["step"] = 4  # a changed value under the old digest
    torch.save(state, path)
    with pytest.raises(UserError, match="corrupt checkpoint"):
        load_checkpoint(path)
