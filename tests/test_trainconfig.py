"""Resolving TrainConfig: defaults < spec train block < flags and --set; type and range errors."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

from graphvae.errors import UserError
from graphvae.spec.ir import Setting, Spec
from graphvae.spec.settings import TrainConfig
from graphvae.train import config as trainconfig


def _spec(**train) -> Spec:
    return Spec("m", train=tuple(Setting(k, v) for k, v in train.items()), path="m.gvae")


def _args(**kw):
    base = {name: None for name in trainconfig.FLAG_FIELDS}
    base["set"] = []
    base.update(kw)
    return SimpleNamespace(**base)


@pytest.mark.parametrize("train, overrides, field, expected", [
    ({}, {}, "epochs", TrainConfig().epochs),
    ({"epochs": 7}, {}, "epochs", 7),
    ({"epochs": 7}, {"epochs": 3}, "epochs", 3),
    ({"lr": 0.01}, {"lr": "3e-4"}, "lr", 3e-4),
    ({"lr": 1}, {}, "lr", 1.0),  # an int literal is a fine float
    ({"data": "mnist"}, {}, "data", "mnist"),
    ({}, {"flush_denormal": "false"}, "flush_denormal", False),
    ({"flush_denormal": True}, {"flush_denormal": "no"}, "flush_denormal", False),
    ({}, {"data": "my/own.npz"}, "data", "my/own.npz"),
    ({}, {"device": "cuda:1"}, "device", "cuda:1"),
    ({}, {"labels": "-1"}, "labels", -1),
    # an .npz file's own labels: all of them unless the spec or the command line says how many
    ({}, {}, "labels", 100),
    ({"data": "mnist"}, {}, "labels", 100),
    ({"data": "own.npz"}, {}, "labels", -1),
    ({}, {"data": "own.npz"}, "labels", -1),
    ({"data": "own.npz", "labels": 100}, {}, "labels", 100),
    ({"data": "own.npz"}, {"labels": "20"}, "labels", 20),
    ({"labels": 30}, {"data": "own.npz"}, "labels", 30),
])
def test_resolve_layers(train, overrides, field, expected):
    cfg = trainconfig.resolve(_spec(**train), overrides)
    assert getattr(cfg, field) == expected
    assert type(getattr(cfg, field)) is type(expected)


@pytest.mark.parametrize("train, overrides, message", [
    ({"epochs": "many"}, {}, "epochs must be an integer"),
    ({}, {"epochs": "2.5"}, "epochs must be an integer"),
    ({}, {"lr": "fast"}, "lr must be a number"),
    ({}, {"lr": "0"}, "lr must be positive"),
    ({}, {"optimizer": "adma"}, "did you mean 'adam'"),
    ({}, {"schedule": "linear"}, "schedule must be one of"),
    ({}, {"data": "minst"}, "did you mean 'mnist'"),
    ({}, {"device": "gpu"}, "device must be"),
    ({}, {"labelled_per_batch": "-3"}, "labelled_per_batch must be a count, or -1 for all"),
    ({"labelled_only": True}, {"labelled_per_batch": "0"}, "labelled_per_batch cannot be 0"),
    ({}, {"validation": "1.5"}, "validation must be a fraction"),
    ({"epoch": 3}, {}, "did you mean 'epochs'"),
    ({}, {"flush_denormal": "maybe"}, "flush_denormal must be true or false"),
    ({}, {"labels": "-5"}, "labels must be"),
    ({}, {"epochs": "0"}, "epochs must be at least 1"),
    ({}, {"batch_size": True}, "batch_size must be an integer"),
])
def test_bad_values_are_one_line_user_errors(train, overrides, message):
    with pytest.raises(UserError) as exc:
        trainconfig.resolve(_spec(**train), overrides)
    assert message in str(exc.value)
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize("items, expected", [
    (["lr=3e-4"], {"lr": "3e-4"}),
    (["epochs = 5", "batch-size=32"], {"epochs": "5", "batch_size": "32"}),
    (["data=a=b.npz"], {"data": "a=b.npz"}),
])
def test_parse_set(items, expected):
    assert trainconfig.parse_set(items) == expected


@pytest.mark.parametrize("items, message", [
    (["lr"], "--set expects KEY=VALUE"),
    (["=3"], "--set expects KEY=VALUE"),
    (["learning_rate=3"], "unknown train setting 'learning_rate'"),
])
def test_parse_set_errors(items, message):
    with pytest.raises(UserError, match=message):
        trainconfig.parse_set(items)


@pytest.mark.parametrize("flags, field, expected", [
    ({"epochs": 4}, "epochs", 4),
    ({"epochs": 4, "set": ["epochs=6"]}, "epochs", 6),  # --set wins over a named flag
    ({"data_dir": "/data"}, "data_dir", "/data"),
    ({"binarize": "threshold"}, "binarize", "threshold"),
])
def test_flag_overrides(flags, field, expected):
    cfg = trainconfig.resolve(_spec(epochs=2), trainconfig.flag_overrides(_args(**flags)))
    assert getattr(cfg, field) == expected


def test_dict_round_trip():
    cfg = trainconfig.resolve(_spec(epochs=3, data="mnist"), {"lr": "0.002"})
    assert trainconfig.from_dict(trainconfig.to_dict(cfg)) == cfg


@pytest.mark.parametrize("overrides, ok", [
    ({"epochs": 9}, True),
    ({"device": "cpu"}, True),
    ({"seed": 0}, True),  # unchanged values are fine
    ({"seed": 5}, False),
    ({"batch_size": 10}, False),
])
def test_resume_overrides(overrides, ok):
    saved = TrainConfig(epochs=2)
    if ok:
        cfg = trainconfig.resume_overrides(saved, overrides)
        for k, v in overrides.items():
            assert getattr(cfg, k) == v
    else:
        with pytest.raises(UserError, match="cannot change"):
            trainconfig.resume_overrides(saved, overrides)


@pytest.mark.parametrize("spec_path, written, flag, expected", [
    ("specs/m.gvae", "mix.npz", None, os.path.abspath("specs/mix.npz")),  # the spec's folder, not the cwd
    ("/home/u/m.gvae", "../data/mix.npz", None, "/home/data/mix.npz"),
    ("m.gvae", "/abs/mix.npz", None, "/abs/mix.npz"),
    ("specs/m.gvae", "mnist", None, "mnist"),  # a dataset name is no path
    ("specs/m.gvae", "mix.npz", "other.npz", "other.npz"),  # a flag is the shell's: relative to the cwd
])
def test_a_relative_data_file_in_a_spec_is_read_from_the_spec_folder(spec_path, written, flag, expected):
    spec = Spec("m", train=(Setting("data", written),), path=spec_path)
    cfg = trainconfig.resolve(spec, {"data": flag} if flag else None)
    assert cfg.data == expected


def test_a_missing_data_file_shows_the_path_tried(tmp_path, monkeypatch):
    from graphvae.data import load_dataset

    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match=f"data file mix.npz not found \\(looked for {tmp_path}/mix.npz\\)"):
        load_dataset("mix.npz", Spec("m"))
