"""graphvae.train.measures against values computed by hand: entropy, mutual information, MIG and DCI's
importance-matrix scores; MIG and DCI on codes whose disentanglement is known by construction
(a factor grid, so that independence is exact); the probe's seeding; and the error cases."""

from __future__ import annotations

import itertools
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from graphvae.train import measures as M
from graphvae.errors import UserError

LN2 = math.log(2)


def grid(*sizes) -> np.ndarray:
    """Every combination of the factors' values 0..size-1 once: the factors are exactly independent
    (their empirical joint distribution is the product of its marginals)."""
    return np.array(list(itertools.product(*[range(s) for s in sizes])), dtype=np.int64)


def rotation(d: int, seed: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(d, d)))
    return q * np.sign(np.diag(r))  # Haar-distributed


@pytest.mark.parametrize("p, base, expected", [
    ([0.5, 0.5], 2, 1.0),                                # a fair coin: 1 bit
    ([0.25] * 4, 2, 2.0),                                # 4 equal classes: 2 bits
    ([1.0, 0.0], math.e, 0.0),                           # certain: 0 log 0 = 0
    ([3, 1], math.e, -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))),  # counts are normalised: 0.562335 nats
    ([0.5, 0.25, 0.25], 2, 1.5),                         # 0.5*1 + 2*0.25*2 = 1.5 bits
    ([0.2] * 5, 5, 1.0),                                 # uniform in its own base: 1
])
def test_entropy(p, base, expected):
    assert M.entropy(p, base) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("table, expected", [
    # p = [[.4, .1], [.1, .4]], marginals (.5, .5): 2 * .4 * ln(.4 / .25) + 2 * .1 * ln(.1 / .25)
    # = .8 ln 1.6 + .2 ln .4 = .8 * .470004 - .2 * .916291 = .376003 - .183258 = 0.192745 nats
    ([[0.4, 0.1], [0.1, 0.4]], 0.8 * math.log(1.6) + 0.2 * math.log(0.4)),
    ([[40, 10], [10, 40]], 0.8 * math.log(1.6) + 0.2 * math.log(0.4)),  # counts: the same table
    ([[0.5, 0.0], [0.0, 0.5]], LN2),                  # a copy of a fair coin: H = ln 2 = 0.693147
    ([[0.25, 0.25], [0.25, 0.25]], 0.0),              # independent
    ([[0.3, 0.3], [0.2, 0.2]], 0.0),                  # independent, unequal marginals
    # p = [[.5, .25], [0, .25]], marginals a (.75, .25), b (.5, .5):
    # .5 ln(.5/.375) + .25 ln(.25/.375) + .25 ln(.25/.125) = .143841 - .101366 + .173287 = 0.215762
    ([[0.5, 0.25], [0.0, 0.25]], 0.5 * math.log(4 / 3) + 0.25 * math.log(2 / 3) + 0.25 * LN2),
])
def test_mutual_information_of_a_table(table, expected):
    assert M.mutual_information(table) == pytest.approx(expected, abs=1e-12)


def test_mutual_information_is_the_entropy_identity():
    rng = np.random.default_rng(0)
    t = rng.integers(0, 9, size=(3, 4)).astype(float)
    h = M.entropy(t.sum(1)) + M.entropy(t.sum(0)) - M.entropy(t)
    assert M.mutual_information(t) == pytest.approx(h, abs=1e-12)  # I(a;b) = H(a) + H(b) - H(a,b)


@pytest.mark.parametrize("x, bins, expected", [
    (np.array([0.0, 0.49, 0.5, 1.0]), 2, [0, 0, 1, 1]),          # edges 0, .5, 1; the maximum in the last bin
    (np.array([0.0, 0.24, 0.26, 0.74, 1.0]), 4, [0, 0, 1, 2, 3]),
    (np.array([2.5, 2.5, 2.5]), 20, [0, 0, 0]),                   # constant: one bin
    (np.array([7, 3, 7, 9]), 2, [1, 0, 1, 2]),                    # integers keep their classes, whatever bins
])
def test_discretize(x, bins, expected):
    assert M.discretize(x, bins).tolist() == expected


@pytest.mark.parametrize("transform", [
    lambda v: 3.0 * v + 1.0,                    # affine
    lambda v: v + 0.1 * v ** 2,                 # monotone, not linear (values stay in distinct bins)
    lambda v: -2.0 * v,                         # decreasing
])
def test_mig_is_one_for_a_disentangled_code(transform):
    v = grid(5, 4, 3)
    res = M.mig(transform(v.astype(float)), v)
    # code j determines factor j, so I(z_j; v_j) = H(v_j), and the grid makes I(z_i; v_j) = 0 for i != j
    assert res.score == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(np.diag(res.mi), [math.log(5), math.log(4), math.log(3)], atol=1e-12)
    np.testing.assert_allclose(res.mi - np.diag(np.diag(res.mi)), 0, atol=1e-12)
    assert res.top == (0, 1, 2) and res.factors == ("factor[0]", "factor[1]", "factor[2]")


@pytest.mark.parametrize("discrete, expected", [
    ([True, False], math.log(30)),          # the 30 classes kept: I(z_0; v) = H(v) = ln 30 = 3.401197
    ([False, False], None),                 # 20 equal-width bins merge some of the 30 classes: less
])
def test_discrete_code_columns_keep_their_classes(discrete, expected):
    v = grid(30, 2)
    code = v.astype(float)                  # column 0 holds 30 class indices as floats
    res = M.mig(code, v[:, 0], discrete=discrete)
    if expected is None:
        assert res.mi[0, 0] < math.log(30) - 0.1
    else:
        assert res.mi[0, 0] == pytest.approx(expected, abs=1e-12) and res.score == pytest.approx(1.0, abs=1e-12)


def test_mig_is_zero_for_a_code_independent_of_the_factors():
    g = grid(4, 3, 5, 5)
    res = M.mig(g[:, 2:].astype(float), g[:, :2])  # the codes are the grid's other two axes
    assert res.score == pytest.approx(0.0, abs=1e-12)
    np.testing.assert_allclose(res.mi, 0, atol=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_a_random_rotation_is_entangled(seed):
    """The identity code of 5 uniform factors scores MIG above 0.9 and DCI D = 1 on the same data;
    a random rotation spreads each factor over several codes.  Over seeds 0-7 it scored MIG at most
    0.09 and D at most 0.21, so the threshold 0.3 is below a third of the disentangled scores and
    above every rotation's with a margin."""
    rng = np.random.default_rng(seed)
    v = rng.uniform(size=(1000, 5))
    code = v @ rotation(5, seed)
    assert M.mig(v, v).score > 0.9 and M.dci(v, v).disentanglement > 0.99
    assert M.mig(code, v).score < 0.3
    assert M.dci(code, v).disentanglement < 0.3


def test_a_45_degree_rotation_of_a_symmetric_grid_has_no_gap():
    # z1 = (a + b)/sqrt 2 and z2 = (a - b)/sqrt 2; b -> 5 - b maps the grid onto itself and z2 onto z1
    # shifted, so z1 and z2 are equally informative about a (and b): every gap is 0
    g = grid(6, 6).astype(float)
    code = np.stack([g[:, 0] + g[:, 1], g[:, 0] - g[:, 1]], 1) / math.sqrt(2)
    assert M.mig(code, g, bins=21).score == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize("r, d, c, per_code, per_factor", [
    (np.eye(3), 1.0, 1.0, [1, 1, 1], [1, 1, 1]),                         # diagonal: each code one factor
    (np.diag([5.0, 0.5]), 1.0, 1.0, [1, 1], [1, 1]),                     # scale does not matter
    # code 0 -> factor 0 only (D_0 = 1); code 1 split evenly (H_2 = 1, D_1 = 0); rho = (1/3, 2/3)
    # D = 1/3 * 1 + 2/3 * 0 = 1/3; factor 0 split over both codes (C_0 = 0), factor 1 only code 1 (C_1 = 1)
    ([[1.0, 0.0], [1.0, 1.0]], 1 / 3, 0.5, [1, 0], [0, 1]),
    # one code for every factor: D_0 = 1 - log_2 2 = 0; C_j = 1 (one code, base 1: H = 0)
    ([[2.0, 2.0]], 0.0, 1.0, [0], [1, 1]),
    # code 1 unused: rho = (1, 0), D = D_0 = 1 - H_2(.75, .25) = 1 - .811278 = .188722
    # C_0 = C_1 = 1 (each factor on code 0 only)
    ([[3.0, 1.0], [0.0, 0.0]], 1 + 0.75 * math.log2(0.75) + 0.25 * math.log2(0.25), 1.0, [0.188722, 0], [1, 1]),
    # factor 1 unused by any code: C_1 = 0, C_0 = 1 - H_2(.5, .5) = 0; D_i = 1 (each code factor 0 only)
    ([[1.0, 0.0], [1.0, 0.0]], 1.0, 0.0, [1, 1], [0, 0]),
])
def test_disentanglement_completeness_of_an_importance_matrix(r, d, c, per_code, per_factor):
    s = M.disentanglement_completeness(r)
    assert s.disentanglement == pytest.approx(d, abs=1e-12)
    assert s.completeness == pytest.approx(c, abs=1e-12)
    np.testing.assert_allclose(s.per_code, per_code, atol=1e-6)
    np.testing.assert_allclose(s.per_factor, per_factor, atol=1e-6)


@pytest.mark.parametrize("probe", ["linear", "trees"])
def test_dci_of_a_disentangled_code(probe):
    rng = np.random.default_rng(0)
    v = {"a": rng.uniform(size=600), "b": rng.integers(0, 3, 600)}
    code = np.stack([2 * v["a"] - 1, v["b"] + 0.01 * rng.normal(size=600)], 1)
    res = M.dci(code, v, probe=probe)
    assert res.factors == ("a", "b") and res.kinds == ("continuous", "categorical")
    assert res.disentanglement > 0.95 and res.completeness > 0.95
    assert res.error[0] < 0.05 and res.error[1] == 0.0  # NRMSE of a; classification error of b
    assert res.importance.shape == (2, 2) and res.importance[0, 0] > res.importance[1, 0]


@pytest.mark.parametrize("probe", ["linear", "trees"])
def test_dci_is_seeded(probe):
    rng = np.random.default_rng(1)
    v = rng.uniform(size=(300, 2))
    code = v @ rotation(2, 1) + 0.3 * rng.normal(size=(300, 2))
    one, again, other = (M.dci(code, v, probe=probe, seed=s) for s in (0, 0, 1))
    np.testing.assert_array_equal(one.importance, again.importance)
    np.testing.assert_array_equal(one.error, again.error)
    assert not np.array_equal(one.error, other.error)  # another split, another held-out error


def test_missing_values_leave_rows_out_per_factor():
    v = grid(5, 4)
    code = v.astype(float)
    a = v[:, 0].copy()
    a[:6] = -1                                 # 6 rows with no a
    b = v[:, 1].astype(float)
    b[-3:] = np.nan                            # 3 rows with no b
    res = M.mig(code, {"a": a, "b": b})
    assert res.factors == ("a", "b") and res.mi.shape == (2, 2)
    assert res.mi[0, 0] == pytest.approx(M.entropy(np.bincount(a[a >= 0])), abs=1e-12)
    assert M.dci(code, {"a": a, "b": b}).error.shape == (2,)


def test_a_constant_factor_is_skipped_with_its_reason():
    v = grid(5, 4)
    factors = {"a": v[:, 0], "same": np.zeros(len(v), np.int64), "b": v[:, 1]}
    res = M.mig(v.astype(float), factors)
    assert res.score == pytest.approx(1.0) and res.skipped == (("same", "it takes one value only (entropy 0)"),)
    assert math.isnan(res.gap[1]) and res.top[1] == -1
    d = M.dci(v.astype(float), factors)
    assert d.factors == ("a", "b") and d.skipped[0][0] == "same"


def test_factor_columns_names_and_kinds():
    cols = M.factor_columns({"pos": np.zeros((4, 2)), "shape": np.array([0, 1, 2, 1]), "s": np.ones((4, 1))})
    assert [(c.name, c.kind) for c in cols] == [("pos[0]", "continuous"), ("pos[1]", "continuous"),
                                                ("shape", "categorical"), ("s", "continuous")]


@pytest.mark.parametrize("call, message", [
    (lambda: M.mig(np.zeros((5, 2)), np.zeros(4, np.int64)), "has 4 examples and the codes 5"),
    (lambda: M.mig(np.zeros((5, 1)), np.arange(5)), "codes have 1"),
    (lambda: M.mig(np.ones((5, 2)), {"c": np.zeros(5, np.int64)}), "'c' is a single value|c: it takes one value only"),
    (lambda: M.mig(np.full((3, 2), np.nan), np.arange(3)), "not finite for 3 of 3"),
    (lambda: M.mig(np.zeros((3, 2)), {"t": np.array(["a", "b", "c"])}), "dtype <U1"),
    (lambda: M.mig(np.zeros((3, 2)), np.arange(3), bins=0), "bins must be at least 1"),
    (lambda: M.mig(np.zeros((3, 2)), np.arange(3), discrete=[True]), "discrete marks 1 code columns"),
    (lambda: M.dci(np.zeros((9, 2)), np.arange(9), probe="svm"), "probe must be one of linear, trees"),
    (lambda: M.dci(np.zeros((9, 2)), np.arange(9), test_fraction=1.0), "strictly between 0 and 1"),
    (lambda: M.dci(np.zeros((9, 2)), {"f": np.full(9, -1)}), "f: 0 examples have a value"),
    (lambda: M.disentanglement_completeness(np.zeros((2, 2))), "every importance is 0"),
    (lambda: M.disentanglement_completeness([[-1.0, 1.0]]), "non-negative"),
    (lambda: M.mutual_information([1.0, 2.0]), "2-D table"),
])
def test_errors_are_one_line(call, message):
    import re

    with pytest.raises(UserError) as info:
        call()
    text = str(info.value)
    assert "\n" not in text and re.search(message, text), text


def test_the_measures_import_neither_torch_nor_scikit_learn():
    code = "import sys, graphvae.train.measures; print(sorted({'torch', 'sklearn'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parent.parent).stdout
    assert out.strip() == "[]"  # scikit-learn only once dci() fits a probe
