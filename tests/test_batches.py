"""Validation split, labelled subset, binarizing and the resumable semi-supervised batches."""

from __future__ import annotations

import io
import json
import math
import os

import numpy as np
import pytest
import torch

from graphvae.data.batches import SemiSupervisedBatches, binarize, binarize_arrays, evaluation_arrays, split_validation, to_batch
from graphvae.data.labels import choose_labelled, labelled_counts, load_labelled, mask_unlabelled, save_labelled
from graphvae.errors import UserError
from graphvae.spec.ir import Spec, Variable

torch.set_num_threads(1)


def make_spec(x_domain="unit", x_shape=(3,), y=("categorical", (4,))):
    variables = [Variable("x", "observed", x_domain, x_shape), Variable("z", "latent", "real", (2,))]
    if y:
        variables.append(Variable("y", "supervised", y[0], y[1]))
    return Spec("t", variables=tuple(variables))


def make_arrays(n=50, classes=4):
    """x[:, 0] encodes the example index, so batches can be traced back to examples."""
    x = np.stack([np.arange(n) / n, np.full(n, 0.25), np.full(n, 0.75)], axis=1).astype(np.float32)
    return {"x": x, "y": (np.arange(n) % classes).astype(np.int64)}


def indices_of(batch, n=50):
    return torch.round(batch["x"][:, 0] * n).long().tolist()


# -- validation split --------------------------------------------------------------------------

@pytest.mark.parametrize("n, fraction, n_val", [(50, 0.1, 5), (50, 0.0, 0), (7, 0.5, 4), (1000, 0.25, 250)])
def test_split_validation(n, fraction, n_val):
    arrays = make_arrays(n)
    train, val = split_validation(arrays, fraction, seed=3)
    assert len(val["x"]) == n_val and len(train["x"]) == n - n_val
    t, v = set(indices_of(to_batch(train, range(n - n_val)), n)), set(indices_of(to_batch(val, range(n_val)), n))
    assert not t & v and t | v == set(range(n))
    assert np.all(np.diff(train["x"][:, 0]) > 0)  # original order kept
    np.testing.assert_array_equal(split_validation(arrays, fraction, seed=3)[1]["y"], val["y"])
    if 0 < n_val < n - 1:
        assert not np.array_equal(split_validation(arrays, fraction, seed=4)[1]["x"], val["x"])


@pytest.mark.parametrize("fraction, fragment", [(-0.1, r"\[0, 1\)"), (1.0, r"\[0, 1\)"), (0.99, "leaves none")])
def test_split_validation_errors(fraction, fragment):
    with pytest.raises(UserError, match=fragment):
        split_validation(make_arrays(10), fraction, seed=0)


# -- the labelled subset ----------------------------------------------------------------------

@pytest.mark.parametrize("counts, n, expected", [
    ([50] * 10, 100, [10] * 10),
    ([50] * 10, 105, [11] * 5 + [10] * 5),
    ([50] * 10, 7, [1] * 7 + [0] * 3),
    ([2, 50, 50], 30, [2, 14, 14]),
    ([3, 4, 50], 20, [3, 4, 13]),
    ([5, 5], 10, [5, 5]),
    ([5, 5], 0, [0, 0]),
])
def test_balanced_subset(counts, n, expected):
    labels = np.concatenate([np.full(c, k) for k, c in enumerate(counts)])
    labels = np.random.default_rng(0).permutation(labels)
    idx = choose_labelled(labels, n, seed=1)
    assert len(idx) == n == len(set(idx.tolist())) and np.all(np.diff(idx) > 0)
    assert np.bincount(labels[idx], minlength=len(counts)).tolist() == expected
    np.testing.assert_array_equal(choose_labelled(labels, n, seed=1), idx)


def test_subset_depends_on_seed_and_skips_missing():
    labels = np.arange(200) % 10
    labels[::7] = -1
    subsets = [choose_labelled(labels, 20, seed=s) for s in range(3)]
    assert all(np.all(labels[s] >= 0) for s in subsets)
    assert not np.array_equal(subsets[0], subsets[1])
    np.testing.assert_array_equal(choose_labelled(labels, -1, seed=0), np.flatnonzero(labels >= 0))


def test_subset_of_continuous_labels():
    labels = np.linspace(0, 1, 30).astype(np.float32)
    labels[:10] = np.nan
    idx = choose_labelled(labels, 8, seed=0)
    assert len(idx) == 8 and not np.isnan(labels[idx]).any()


@pytest.mark.parametrize("n, fragment", [(11, "only 10 with a label"), (-2, "or -1 for all")])
def test_subset_errors(n, fragment):
    labels = np.array([0, 1] * 5 + [-1] * 5)
    with pytest.raises(UserError, match=fragment):
        choose_labelled(labels, n, seed=0)


def test_save_and_load_labelled(tmp_path):
    idx = choose_labelled(np.arange(100) % 10, 20, seed=0)
    path = save_labelled(tmp_path, idx)
    assert path == tmp_path / "labelled.json" and os.listdir(tmp_path) == ["labelled.json"]
    assert json.loads(path.read_text())["count"] == 20
    np.testing.assert_array_equal(load_labelled(tmp_path, n_examples=100), idx)
    np.testing.assert_array_equal(load_labelled(path), idx)


@pytest.mark.parametrize("content, fragment", [
    (None, "not found"),
    ("{not json", "not a valid labelled-subset file"),
    ('{"count": 1}', "not a valid labelled-subset file"),
    ('{"count": 2, "indices": [1, "2"]}', "not a list of integers"),
    ('{"count": 3, "indices": [1, 2]}', "'count' says 3"),
    ('{"count": 2, "indices": [1, 1]}', "distinct"),
    ('{"count": 2, "indices": [1, 100]}', r"within 0\.\.99"),
])
def test_load_labelled_errors(tmp_path, content, fragment):
    if content is not None:
        (tmp_path / "labelled.json").write_text(content)
    with pytest.raises(UserError, match=fragment):
        load_labelled(tmp_path, n_examples=100)


@pytest.mark.parametrize("y, missing", [(("categorical", (4,)), -1), (("real", ()), np.nan)])
def test_mask_unlabelled(y, missing):
    arrays = make_arrays(10)
    if y[0] == "real":
        arrays["y"] = arrays["y"].astype(np.float32)
    spec = make_spec(y=y)
    masked = mask_unlabelled(arrays, spec, [2, 5])
    keep = np.isin(np.arange(10), [2, 5])
    np.testing.assert_array_equal(masked["y"][keep], arrays["y"][keep])
    assert np.all(np.isnan(masked["y"][~keep]) if y[0] == "real" else masked["y"][~keep] == missing)
    assert masked["x"] is arrays["x"] and (arrays["y"] != missing).all()  # the input is untouched
    assert labelled_counts(masked, spec) == {"y": 2}


# -- binarizing --------------------------------------------------------------------------------

def test_binarize_modes():
    x = torch.rand(200, 50, generator=torch.Generator().manual_seed(0))
    assert torch.equal(binarize(x, "threshold"), (x > 0.5).float())
    a = binarize(x, "dynamic", torch.Generator().manual_seed(1))
    b = binarize(x, "dynamic", torch.Generator().manual_seed(1))
    c = binarize(x, "dynamic", torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert set(a.unique().tolist()) <= {0.0, 1.0} and abs(a.mean() - x.mean()) < 0.02
    assert torch.equal(binarize(x, "static"), binarize(x, "static"))
    with pytest.raises(UserError, match="did you mean 'static'"):
        binarize(x, "statc")


@pytest.mark.parametrize("mode", ["dynamic", "static", "threshold"])
def test_binarize_arrays(mode):
    spec = make_spec(x_domain="binary")
    arrays = {"x": np.random.default_rng(0).random((100, 3)).astype(np.float32)}
    once = binarize_arrays(arrays, spec, mode)
    if mode == "dynamic":
        assert once["x"] is arrays["x"]
    else:
        assert set(np.unique(once["x"]).tolist()) <= {0.0, 1.0}
        np.testing.assert_array_equal(binarize_arrays(arrays, spec, mode)["x"], once["x"])
    fixed = evaluation_arrays(arrays, spec, mode)
    assert set(np.unique(fixed["x"]).tolist()) <= {0.0, 1.0}
    assert binarize_arrays(arrays, make_spec(x_domain="unit"), mode)["x"] is arrays["x"]


def test_to_batch_types_and_private_keys():
    arrays = dict(make_arrays(10), _class=np.arange(10))
    batch = to_batch(arrays, [3, 1])
    assert set(batch) == {"x", "y"} and batch["x"].dtype == torch.float32 and batch["y"].dtype == torch.int64
    assert batch["y"].tolist() == [3 % 4, 1]


# -- batches -----------------------------------------------------------------------------------

def make_batches(n=50, labelled=(0, 5, 10, 15, 20), batch_size=10, lpb=3, seed=0, **kw):
    spec = kw.pop("spec", make_spec())
    return SemiSupervisedBatches(make_arrays(n), spec, np.array(labelled), batch_size=batch_size,
                                 labelled_per_batch=lpb, generator=torch.Generator().manual_seed(seed), **kw)


@pytest.mark.parametrize("n, batch_size, lpb", [(50, 10, 3), (50, 10, 0), (50, 7, 6), (23, 10, 2), (50, 10, 12),
                                              (50, 10, -1)])
def test_batch_composition(n, batch_size, lpb):
    """batch_size unlabelled examples per step (one pass over all n an epoch), lpb labelled ones beside them."""
    labelled = [0, 5, 10, 15, 20]
    batches = make_batches(n, labelled, batch_size, lpb)
    l = len(labelled) if lpb == -1 else lpb
    assert len(batches) == math.ceil(n / batch_size) and batches.labelled_per_batch == l
    seen = []
    for batch in batches:
        rows = indices_of(batch, n)
        y = batch["y"].tolist()
        assert all(r in labelled and y[i] == r % 4 for i, r in enumerate(rows[:l]))
        assert all(label == -1 for label in y[l:])
        assert len(rows) == l + min(batch_size, n - len(seen))
        if lpb == -1:
            assert sorted(rows[:l]) == labelled  # every labelled example, every step
        seen += rows[l:]
    assert sorted(seen) == list(range(n)) and batches.epoch == 1 and batches.step == 0


def test_labelled_only_keeps_the_steps_and_the_labelled_stream():
    """The labelled-only baseline takes the same steps and the same labelled examples, without the unlabelled."""
    both, alone = make_batches(lpb=3), make_batches(lpb=3, labelled_only=True)
    pairs = list(zip(both, alone))
    assert len(pairs) == len(both) == len(alone) == 5
    for b, a in pairs:
        assert indices_of(a) == indices_of(b)[:3] and (a["y"] >= 0).all()
    with pytest.raises(UserError, match="labelled_per_batch cannot be 0"):
        make_batches(lpb=0, labelled_only=True)
    with pytest.raises(UserError, match="needs labelled examples"):
        make_batches(labelled=(), labelled_only=True)


@pytest.mark.parametrize("kw, lpb", [({"labelled": ()}, 0), ({"spec": make_spec(y=None)}, 0), ({}, 3)])
def test_no_labels_means_all_unlabelled(kw, lpb):
    batches = make_batches(**kw)
    assert batches.labelled_per_batch == lpb
    assert len(next(iter(batches))["x"]) == 10 + lpb


def test_batches_reproducible_by_seed():
    def run(seed):
        batches = make_batches(seed=seed)
        return [indices_of(b) for _ in range(2) for b in batches]
    first = run(0)
    assert first == run(0) and first != run(1)
    assert first[:5] != first[len(first) // 2:][:5]  # epochs differ


def _drain(batches, epochs):
    out = []
    while batches.epoch < epochs:
        out += [{k: v.clone() for k, v in b.items()} for b in batches]
    return out


@pytest.mark.parametrize("stop", [0, 1, 4, 7, 8, 12])
@pytest.mark.parametrize("domain", ["unit", "binary"])
def test_resume_gives_identical_batches(stop, domain):
    spec = make_spec(x_domain=domain)
    whole = _drain(make_batches(spec=spec), epochs=3)
    first = make_batches(spec=spec)
    taken = []
    stream = iter(first)
    while len(taken) < stop:
        try:
            taken.append(next(stream))
        except StopIteration:
            stream = iter(first)
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)
    resumed = make_batches(spec=spec, seed=123)  # a different seed: the state must override it
    resumed.load_state_dict(state)
    rest = _drain(resumed, epochs=3)
    assert len(taken) + len(rest) == len(whole)
    for a, b in zip(taken + rest, whole):
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    if domain == "binary":
        assert set(torch.cat([b["x"] for b in whole]).unique().tolist()) <= {0.0, 1.0}


@pytest.mark.parametrize("kw, fragment", [
    ({"batch_size": 0}, "batch_size must be at least 1"),
    ({"lpb": -2}, "labelled_per_batch must be a count, or -1 for all"),
    ({"labelled": (0, 50)}, r"labelled indices must lie in 0\.\.49"),
    ({"binarize": "dynamc"}, "did you mean 'dynamic'"),
])
def test_batch_errors(kw, fragment):
    with pytest.raises(UserError, match=fragment):
        make_batches(**kw)


def test_state_from_other_data_is_refused():
    state = make_batches(n=40).state_dict()
    with pytest.raises(UserError, match="data or batch settings changed"):
        make_batches(n=50).load_state_dict(state)
