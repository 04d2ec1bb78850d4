"""The layout of a training batch (graphvae.data.Batch): runs of rows sharing a labelled pattern,
contiguous and in row order, that agree with the batch's own values; and where the arrays live."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from graphvae.data import Batch, SemiSupervisedBatches
from graphvae.data.batches import fits_on_device, free_device_bytes, labelled_rows
from graphvae.spec.ir import Spec, Variable

torch.set_num_threads(1)
N = 40
Y, R = frozenset({"y"}), frozenset({"r"})
YR, NONE = frozenset({"y", "r"}), frozenset()


def _spec(supervised):
    variables = [Variable("x", "observed", "unit", (1,)), Variable("b", "observed", "binary", (3,)),
                 Variable("z", "latent", "real", (2,))]
    variables += [Variable(name, "supervised", domain, shape) for name, domain, shape in supervised]
    return Spec("t", variables=tuple(variables))


def _x():
    """x encodes the example; b holds grey levels, so that dynamic binarization draws noise on it."""
    return {"x": (np.arange(N) / N).astype(np.float32)[:, None], "b": np.full((N, 3), 0.5, dtype=np.float32)}


def one_variable():
    return _spec([("y", "categorical", (4,))]), {**_x(), "y": (np.arange(N) % 4).astype(np.int64)}


def two_variables():
    """y given on even examples, r on multiples of three: patterns {y, r}, {y}, {r} and none."""
    y = np.where(np.arange(N) % 2 == 0, np.arange(N) % 4, -1).astype(np.int64)
    r = np.where((np.arange(N) % 3 == 0)[:, None], np.arange(N)[:, None] / N + np.zeros((1, 2)), np.nan)
    return _spec([("y", "categorical", (4,)), ("r", "real", (2,))]), {**_x(), "y": y, "r": r.astype(np.float32)}


# (name, data, labelled indices, settings, the layout of the first batch)
CASES = [
    ("one_variable", one_variable, range(0, N, 3), dict(batch_size=8, labelled_per_batch=5),
     ((Y, 5), (NONE, 8))),
    ("one_variable_all_labelled_each_step", one_variable, range(10), dict(batch_size=16, labelled_per_batch=-1),
     ((Y, 10), (NONE, 16))),
    ("two_variables", two_variables, range(0, 24), dict(batch_size=8, labelled_per_batch=24), None),
    ("labelled_only", one_variable, range(0, N, 2), dict(batch_size=8, labelled_per_batch=6, labelled_only=True),
     ((Y, 6),)),
    ("no_labelled_examples", one_variable, [], dict(batch_size=8, labelled_per_batch=5), ((NONE, 8),)),
    ("two_variables_labelled_only", two_variables, range(0, 24, 2), dict(batch_size=8, labelled_per_batch=7,
                                                                        labelled_only=True), None),
]


def _agrees(batch: Batch, spec: Spec) -> None:
    """The runs are contiguous, cover the batch, differ from their neighbours, and say exactly which
    supervised values of their rows are given."""
    size = len(batch["x"])
    assert sum(n for _, n in batch.layout) == size and all(n > 0 for _, n in batch.layout)
    assert all(a[0] != b[0] for a, b in zip(batch.layout, batch.layout[1:]))
    start = 0
    for pattern, count in batch.layout:
        for v in spec.supervised:
            given = labelled_rows(batch[v.name][start:start + count], v.domain)
            assert bool(given.all()) if v.name in pattern else not bool(given.any()), (v.name, pattern)
        start += count


@pytest.mark.parametrize("make, labelled, settings, first", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
@pytest.mark.parametrize("binarize", ["dynamic", "threshold"])
def test_layout_agrees_with_the_batch(make, labelled, settings, first, binarize):
    spec, arrays = make()
    batches = SemiSupervisedBatches(arrays, spec, np.array(list(labelled), dtype=np.int64), binarize=binarize,
                                    generator=torch.Generator().manual_seed(5), **settings)
    layouts = []
    for batch in batches:
        assert isinstance(batch, Batch) and isinstance(batch.layout, tuple)
        _agrees(batch, spec)
        layouts.append(batch.layout)
    assert len(layouts) == len(batches)
    if first is not None:
        assert layouts[0] == first
    if settings.get("labelled_only"):  # labelled rows only: one run per pattern, none unlabelled
        assert all(NONE not in dict(layout) for layout in layouts)
    if not len(labelled):
        assert all(len(layout) == 1 for layout in layouts)


def test_mixed_patterns_are_grouped_stably_with_the_same_examples_and_noise():
    """With several patterns the labelled rows are reordered by pattern ({y}, {r}, {y, r}: their bits in
    spec order; the empty one last, beside the unlabelled rows), stable within one: the same examples,
    each with the noise it had in the seeded order."""
    spec, arrays = two_variables()
    kw = dict(batch_size=8, labelled_per_batch=24, binarize="dynamic")
    sorted_ = SemiSupervisedBatches(arrays, spec, np.arange(24), generator=torch.Generator().manual_seed(1), **kw)
    plain = SemiSupervisedBatches(arrays, spec, np.arange(24), generator=torch.Generator().manual_seed(1), **kw)
    plain._patterns, plain._rank = [NONE], None  # the seeded order as it comes
    a, b = next(iter(sorted_)), next(iter(plain))
    assert [p for p, _ in a.layout] == [Y, R, YR, NONE]  # by their bits in spec order, no label last
    idx = lambda t: torch.round(t["x"][:, 0] * N).long().tolist()  # noqa: E731
    rows_a, rows_b = idx(a), idx(b)
    assert sorted(rows_a[:24]) == sorted(rows_b[:24]) and rows_a[24:] == rows_b[24:]

    def pattern(i):
        return (arrays["y"][i] >= 0, not np.isnan(arrays["r"][i]).any())

    rank = {(True, False): 0, (False, True): 1, (True, True): 2, (False, False): 3}
    assert rows_a[:24] == sorted(rows_b[:24], key=lambda i: rank[pattern(i)])  # stable: sorted() is
    where = {e: k for k, e in enumerate(rows_b[:24])}  # the labelled examples are distinct
    perm = [where[e] for e in rows_a[:24]] + list(range(24, len(rows_b)))
    for key in a:  # every value of each example, its binarization noise included, moved with it
        torch.testing.assert_close(a[key], b[key][perm], rtol=0, atol=0, equal_nan=True, msg=key)


def test_layout_of_a_resumed_batcher_is_the_same():
    spec, arrays = two_variables()
    kw = dict(batch_size=8, labelled_per_batch=5, generator=torch.Generator().manual_seed(2))
    whole = [b.layout for b in SemiSupervisedBatches(arrays, spec, np.arange(24), **kw)]
    first = SemiSupervisedBatches(arrays, spec, np.arange(24), **dict(kw, generator=torch.Generator().manual_seed(2)))
    it = iter(first)
    head = [next(it).layout for _ in range(2)]
    again = SemiSupervisedBatches(arrays, spec, np.arange(24), **dict(kw, generator=torch.Generator().manual_seed(9)))
    again.load_state_dict(first.state_dict())
    assert head + [b.layout for b in again] == whole


def test_peek_leaves_the_batcher_as_it_was():
    spec, arrays = one_variable()
    b = SemiSupervisedBatches(arrays, spec, np.arange(0, N, 3), batch_size=8, labelled_per_batch=5,
                              generator=torch.Generator().manual_seed(3))
    state = b.state_dict()
    peeked = b.peek()
    assert torch.equal(b.state_dict()["generator"], state["generator"]) and b.step == 0
    first = next(iter(b))
    assert first.layout == peeked.layout and all(torch.equal(first[k], peeked[k]) for k in first)


def test_a_plain_dict_of_a_batch_drops_the_layout():
    batch = Batch({"x": torch.zeros(2, 3)}, ((NONE, 2),))
    assert batch.layout == ((NONE, 2),) and not hasattr(dict(batch), "layout") and "layout" in repr(batch)


@pytest.mark.parametrize("nbytes, free, fits", [
    (100, 1000, True), (499, 1000, True), (500, 1000, False), (10, None, False), (0, 0, False),
    (4 * 2**30, 80 * 2**30, True), (60 * 2**30, 80 * 2**30, False),
])
def test_fits_on_device(nbytes, free, fits):
    assert fits_on_device(nbytes, free) is fits


def test_the_cpu_keeps_its_arrays_and_reports_no_free_memory():
    spec, arrays = one_variable()
    b = SemiSupervisedBatches(arrays, spec, np.arange(0, N, 3), batch_size=8, labelled_per_batch=5)
    assert b.on_device is False and free_device_bytes(torch.device("cpu")) is None
    assert next(iter(b))["x"].device.type == "cpu"


@pytest.mark.parametrize("make", [one_variable, two_variables], ids=["one_variable", "two_variables"])
def test_the_resident_path_gathers_the_same_batches(make):
    """The arrays-on-the-device path (each step's row indices sent, then split into the labelled picks
    and the unlabelled rows) run on the CPU: the same batches and layouts as the plain path."""
    spec, arrays = make()
    kw = dict(batch_size=8, labelled_per_batch=5, binarize="dynamic")
    plain = SemiSupervisedBatches(arrays, spec, np.arange(24), generator=torch.Generator().manual_seed(4), **kw)
    resident = SemiSupervisedBatches(arrays, spec, np.arange(24), generator=torch.Generator().manual_seed(4), **kw)
    resident.on_device = True
    for a, b in zip(plain, resident):
        assert a.layout == b.layout
        for key in a:
            torch.testing.assert_close(a[key], b[key], rtol=0, atol=0, equal_nan=True, msg=key)
