r"""Disentanglement measures of a code against known generative factors (numpy; scikit-learn for DCI).

``codes`` is an (N, D) array, one row per example and one column per code dimension (an encoder's
posterior means, say); ``factors`` are the N examples' true factors of variation, as an (N, K)
array or a dict ``{name: array}``.  :func:`factor_columns` reads them: an integer (or boolean)
array is a *categorical* factor, a float array a *continuous* one; an array of shape (N, m) counts
as m factors named ``name[0]``, ``name[1]``... (just ``name`` when m == 1).  A missing value (-1
in an integer array, NaN in a float one) leaves that example out of that factor's computations.

**Entropy and mutual information.**  For a discrete variable with probabilities :math:`p_a`,
:math:`H = -\sum_a p_a \log p_a` (nats here), and for two discrete variables with joint
probabilities :math:`p_{ab}` and marginals :math:`p_a, p_b`,

.. math::  I(a; b) = \sum_{a,b} p_{ab} \log \frac{p_{ab}}{p_a p_b} = H(a) + H(b) - H(a, b),

the plug-in estimate from the table of counts (:func:`mutual_information`).  Continuous codes and
factors are made discrete first (:func:`discretize`): ``bins`` equal-width bins between the
column's minimum and maximum; an integer column keeps its values as its classes.

**MIG** (:func:`mig`; Chen, Li, Grosse and Duvenaud 2018, "Isolating Sources of Disentanglement in
Variational Autoencoders", NeurIPS).  For factor :math:`v_k` let :math:`j^{(1)}` and :math:`j^{(2)}`
be the code dimensions with the largest and second largest :math:`I(z_j; v_k)`; then

.. math::  \mathrm{MIG} = \frac{1}{K} \sum_k \frac{I(z_{j^{(1)}}; v_k) - I(z_{j^{(2)}}; v_k)}{H(v_k)}.

It lies in [0, 1]: 1 when each factor is captured by one code dimension alone.  The histogram
estimator with 20 bins is the one of Locatello et al. 2019 ("Challenging Common Assumptions in the
Unsupervised Learning of Disentangled Representations", ICML); Chen et al. estimate
:math:`I(z_j; v_k)` from q(z|x) itself.  A factor with one value only (:math:`H(v_k) = 0`) has no
gap to normalise: it is *skipped* and the reason recorded in :attr:`MIGResult.skipped` (it would
otherwise be a 0/0); when every factor is skipped, or fewer than 2 code dimensions are given,
:func:`mig` raises.

**DCI** (:func:`dci`; Eastwood and Williams 2018, "A Framework for the Quantitative Evaluation of
Disentangled Representations", ICLR).  A probe predicts each factor :math:`v_j` from the codes; its
importance of code :math:`i` for factor :math:`j` is :math:`R_{ij} \ge 0`, a (D, K) matrix.  With
:math:`P_{ij} = R_{ij} / \sum_k R_{ik}` (code i's importance spread over the factors) and
:math:`\tilde P_{ij} = R_{ij} / \sum_d R_{dj}` (factor j's spread over the codes),

.. math::

   D_i = 1 - H_K(P_{i\cdot}) = 1 + \sum_k P_{ik} \log_K P_{ik}, \qquad
   \rho_i = \frac{\sum_k R_{ik}}{\sum_{d,k} R_{dk}}, \qquad D = \sum_i \rho_i D_i,

   C_j = 1 - H_D(\tilde P_{\cdot j}) = 1 + \sum_d \tilde P_{dj} \log_D \tilde P_{dj}, \qquad
   C = \frac{1}{K} \sum_j C_j,

entropies in base K (over the factors) and base D (over the codes), so that each lies in [0, 1]
(:func:`disentanglement_completeness`; with K = 1, :math:`H_K \equiv 0`, and likewise D = 1).  A
code with no importance at all has :math:`\rho_i = 0` and so no weight in D.  *Informativeness* is
the probe's error on held-out examples (a seeded split, ``test_fraction`` of them): the
classification error for a categorical factor, the normalised RMSE
:math:`\sqrt{\mathrm{mean}(\hat v - v)^2} / \mathrm{std}(v)` for a continuous one (1 is no better
than predicting the mean); :attr:`DCIResult.informativeness` is their mean over factors.

The probe (``probe``): ``"linear"`` (the default) fits, on codes standardised to zero mean and unit
variance, a Lasso regression (``alpha``) to a standardised continuous factor and an L2 logistic
regression to a categorical one, and takes the absolute coefficients as :math:`R` (the mean over
classes for a multi-class factor): Eastwood and Williams' Lasso, fast and deterministic, but it
only sees linear relations.  ``"trees"`` fits scikit-learn's gradient-boosted trees and takes their
``feature_importances_``, as Locatello et al. do: it sees any monotone or non-monotone relation but
is slower (seconds for thousands of examples).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from graphvae.errors import UserError

BINS = 20
PROBES = ("linear", "trees")
CATEGORICAL, CONTINUOUS = "categorical", "continuous"


# -- factors --------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Factor:
    """One factor: its ``name``, its N ``values`` (1-D) and ``kind`` (categorical or continuous);
    ``present`` marks the examples whose value is given (not -1 or NaN)."""

    name: str
    values: np.ndarray = field(repr=False)
    kind: str

    @property
    def present(self) -> np.ndarray:
        if self.kind == CATEGORICAL:
            return self.values != -1
        return np.isfinite(self.values)


def _kind(a: np.ndarray, what: str) -> str:
    if a.dtype.kind in "iub":
        return CATEGORICAL
    if a.dtype.kind == "f":
        return CONTINUOUS
    raise UserError(f"{what} has dtype {a.dtype}; a factor is an integer (categorical) or float (continuous) array")


def factor_columns(factors, n: int | None = None) -> list[Factor]:
    """The factors in ``factors`` (an (N, K) array, or a dict of arrays of N rows, see the module
    docstring) as a list of :class:`Factor`, one per column; ``n`` checks the number of examples."""
    items = factors.items() if isinstance(factors, dict) else [("factor", factors)]
    out = []
    for name, a in items:
        a = np.asarray(a)
        what = f"factor '{name}'"
        if a.ndim == 0:
            raise UserError(f"{what} is a single value, not one value per example")
        if n is not None and len(a) != n:
            raise UserError(f"{what} has {len(a)} examples and the codes {n}")
        kind = _kind(a, what)
        cols = a.reshape(len(a), -1)
        if kind == CATEGORICAL:
            cols = cols.astype(np.int64)
        single = cols.shape[1] == 1
        for m in range(cols.shape[1]):
            out.append(Factor(name if single else f"{name}[{m}]", cols[:, m], kind))
    if not out:
        raise UserError("no factors given")
    return out


def _codes(codes) -> np.ndarray:
    c = np.asarray(codes)
    if c.ndim == 1:
        c = c[:, None]
    if c.ndim != 2:
        raise UserError(f"codes must be an (N, D) array, got shape {c.shape}")
    if len(c) == 0 or c.shape[1] == 0:
        raise UserError(f"codes of shape {c.shape} hold no values")
    if c.dtype.kind == "f" and not np.isfinite(c).all():
        bad = int((~np.isfinite(c)).any(1).sum())
        raise UserError(f"codes are not finite for {bad} of {len(c)} examples")
    if c.dtype.kind not in "iubf":
        raise UserError(f"codes have dtype {c.dtype}; numbers are needed")
    return c


# -- entropy and mutual information ------------------------------------------------------------------
def entropy(p, base: float = math.e) -> float:
    """:math:`-\\sum_a p_a \\log p_a` of probabilities (or counts, normalised first), in ``base``
    (nats by default); 0 log 0 = 0."""
    p = np.asarray(p, dtype=np.float64).ravel()
    total = p.sum()
    if total <= 0 or (p < 0).any():
        raise UserError("entropy needs non-negative counts or probabilities that do not sum to 0")
    p = p[p > 0] / total
    return max(0.0, float(-(p * np.log(p)).sum() / math.log(base)))  # never -0.0


def discretize(x, bins: int = BINS) -> np.ndarray:
    """Class indices 0.. of a column: its distinct values' order for an integer column, else the
    index of its ``bins`` equal-width bins between min(x) and max(x) (one bin when constant)."""
    x = np.asarray(x).ravel()
    if bins < 1:
        raise UserError(f"bins must be at least 1, got {bins}")
    if x.dtype.kind in "iub":
        return np.unique(x, return_inverse=True)[1].ravel()
    lo, hi = float(x.min()), float(x.max())
    if hi <= lo:
        return np.zeros(len(x), dtype=np.int64)
    edges = np.linspace(lo, hi, bins + 1)[1:-1]
    return np.digitize(x, edges).astype(np.int64)  # x == hi falls in the last bin


def joint_counts(a, b) -> np.ndarray:
    """The table of counts of the pairs of class indices (a, b)."""
    a, b = np.asarray(a).ravel(), np.asarray(b).ravel()
    table = np.zeros((int(a.max()) + 1, int(b.max()) + 1))
    np.add.at(table, (a, b), 1)
    return table


def mutual_information(table) -> float:
    """:math:`I(a; b) = \\sum p_{ab} \\log (p_{ab} / p_a p_b)` in nats, from a joint table of counts
    or probabilities."""
    t = np.asarray(table, dtype=np.float64)
    if t.ndim != 2 or t.sum() <= 0 or (t < 0).any():
        raise UserError("mutual information needs a 2-D table of non-negative counts that do not sum to 0")
    p = t / t.sum()
    pa, pb = p.sum(1, keepdims=True), p.sum(0, keepdims=True)
    nz = p > 0
    return max(0.0, float((p[nz] * np.log(p[nz] / (pa @ pb)[nz])).sum()))


# -- MIG --------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class MIGResult:
    """:func:`mig`'s answer: ``score`` (the mean normalised gap over the factors not skipped);
    ``mi`` (D, K), :math:`I(z_j; v_k)` in nats for every factor (NaN in a skipped one's column);
    per factor its ``entropy`` :math:`H(v_k)`, ``gap`` (normalised, NaN when skipped) and ``top``
    code index; ``factors`` their names; ``skipped`` (name, reason) pairs; ``bins``."""

    score: float
    mi: np.ndarray = field(repr=False)
    entropy: np.ndarray = field(repr=False)
    gap: np.ndarray = field(repr=False)
    top: tuple = field(repr=False)
    factors: tuple
    skipped: tuple = ()
    bins: int = BINS


def mig(codes, factors, bins: int = BINS, discrete=None) -> MIGResult:
    """The mutual-information gap of ``codes`` (N, D) for ``factors`` (see the module docstring);
    ``discrete`` (D booleans) marks code columns whose values are classes already (a categorical
    variable's mode stored as floats beside continuous codes), kept as they are rather than binned."""
    c = _codes(codes)
    cols = factor_columns(factors, len(c))
    if c.shape[1] < 2:
        raise UserError(f"MIG compares the two most informative code dimensions and the codes have {c.shape[1]}")
    keep = np.zeros(c.shape[1], bool) if discrete is None else np.asarray(discrete, bool).ravel()
    if len(keep) != c.shape[1]:
        raise UserError(f"discrete marks {len(keep)} code columns and the codes have {c.shape[1]}")
    binned = np.stack([np.unique(c[:, j], return_inverse=True)[1].ravel() if keep[j] else discretize(c[:, j], bins)
                       for j in range(c.shape[1])], 1)
    mi = np.full((c.shape[1], len(cols)), np.nan)
    ent, gap, top, skipped = np.full(len(cols), np.nan), np.full(len(cols), np.nan), [], []
    for k, f in enumerate(cols):
        rows = f.present
        if not rows.any():
            skipped.append((f.name, "no example has a value"))
            top.append(-1)
            continue
        v = discretize(f.values[rows], bins)
        ent[k] = entropy(np.bincount(v))
        if ent[k] == 0:
            skipped.append((f.name, "it takes one value only (entropy 0)"))
            top.append(-1)
            continue
        mi[:, k] = [mutual_information(joint_counts(binned[rows, j], v)) for j in range(c.shape[1])]
        order = np.argsort(-mi[:, k], kind="stable")
        gap[k] = (mi[order[0], k] - mi[order[1], k]) / ent[k]
        top.append(int(order[0]))
    used = ~np.isnan(gap)
    if not used.any():
        raise UserError("MIG has no factor to score: " + "; ".join(f"{n}: {why}" for n, why in skipped))
    return MIGResult(float(gap[used].mean()), mi, ent, gap, tuple(top), tuple(f.name for f in cols),
                     tuple(skipped), bins)


# -- DCI --------------------------------------------------------------------------------------------
def _normalised_entropy(rows: np.ndarray, base: int) -> np.ndarray:
    """Entropy in ``base`` of each row of non-negative weights (normalised per row); 0 for base 1."""
    if base <= 1:
        return np.zeros(len(rows))
    p = rows / rows.sum(1, keepdims=True)
    logs = np.log(np.where(p > 0, p, 1.0))
    return -(p * logs).sum(1) / math.log(base)


@dataclass(frozen=True, eq=False)
class DCIScores:
    """:func:`disentanglement_completeness`'s answer: ``disentanglement`` D and ``completeness`` C,
    and their parts ``per_code`` (D_i), ``code_weight`` (ρ_i) and ``per_factor`` (C_j)."""

    disentanglement: float
    completeness: float
    per_code: np.ndarray = field(repr=False)
    code_weight: np.ndarray = field(repr=False)
    per_factor: np.ndarray = field(repr=False)


def disentanglement_completeness(importance) -> DCIScores:
    """D and C of a (D, K) importance matrix R (see the module docstring): a code with no importance
    has D_i = 0 and weight 0; a factor no code matters for has C_j = 0."""
    r = np.asarray(importance, dtype=np.float64)
    if r.ndim != 2 or 0 in r.shape:
        raise UserError(f"an importance matrix is (codes, factors), got shape {r.shape}")
    if (r < 0).any() or not np.isfinite(r).all():
        raise UserError("an importance matrix holds non-negative finite numbers")
    if r.sum() <= 0:
        raise UserError("every importance is 0: no code dimension predicts any factor")
    d, k = r.shape
    code_sum, factor_sum = r.sum(1), r.sum(0)
    per_code = np.zeros(d)
    live = code_sum > 0
    per_code[live] = 1 - _normalised_entropy(r[live], k)
    per_factor = np.zeros(k)
    seen = factor_sum > 0
    per_factor[seen] = 1 - _normalised_entropy(r[:, seen].T, d)
    weight = code_sum / code_sum.sum()
    return DCIScores(float((weight * per_code).sum()), float(per_factor.mean()), per_code, weight, per_factor)


@dataclass(frozen=True, eq=False)
class DCIResult:
    """:func:`dci`'s answer: ``disentanglement``, ``completeness`` and ``informativeness`` (the mean
    held-out error over the factors), with ``importance`` R (D, K), ``per_code`` D_i,
    ``code_weight`` ρ_i, ``per_factor`` C_j, ``error`` per factor, the factors' names and kinds,
    the ``skipped`` ones' (name, reason) pairs (not in R), and the ``probe``, split and seed used."""

    disentanglement: float
    completeness: float
    informativeness: float
    importance: np.ndarray = field(repr=False)
    per_code: np.ndarray = field(repr=False)
    code_weight: np.ndarray = field(repr=False)
    per_factor: np.ndarray = field(repr=False)
    error: np.ndarray = field(repr=False)
    factors: tuple
    kinds: tuple
    skipped: tuple = ()
    probe: str = "linear"
    test_fraction: float = 0.2
    seed: int = 0


def _standardise(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mu, sd = train.mean(0), train.std(0)
    sd = np.where(sd > 0, sd, 1.0)
    return (train - mu) / sd, (test - mu) / sd


def _fit_probe(probe: str, kind: str, x_train, y_train, seed: int, alpha: float):
    """A fitted scikit-learn model predicting one factor and its importance per code (non-negative)."""
    if kind == CATEGORICAL:
        if probe == "linear":
            from sklearn.linear_model import LogisticRegression

            model = LogisticRegression(max_iter=1000).fit(x_train, y_train)
            return model, np.abs(model.coef_).mean(0)
        from sklearn.ensemble import GradientBoostingClassifier

        model = GradientBoostingClassifier(n_estimators=50, random_state=seed).fit(x_train, y_train)
        return model, model.feature_importances_
    if probe == "linear":
        from sklearn.linear_model import Lasso

        model = Lasso(alpha=alpha, max_iter=10000).fit(x_train, y_train)
        return model, np.abs(model.coef_)
    from sklearn.ensemble import GradientBoostingRegressor

    model = GradientBoostingRegressor(n_estimators=50, random_state=seed).fit(x_train, y_train)
    return model, model.feature_importances_


def _probe_factor(c: np.ndarray, f: Factor, probe: str, test_fraction: float, seed: int,
                  alpha: float) -> tuple[np.ndarray, float] | str:
    """Factor ``f``'s importance per code and held-out error, or the reason it is skipped."""
    rows = np.flatnonzero(f.present)
    if len(rows) < 4:
        return f"{len(rows)} examples have a value; a train and a test split need at least 4"
    perm = np.random.default_rng(seed).permutation(rows)
    n_test = min(len(rows) - 2, max(2, int(round(test_fraction * len(rows)))))
    test, train = perm[:n_test], perm[n_test:]
    x_train, x_test = _standardise(c[train].astype(np.float64), c[test].astype(np.float64))
    y_train, y_test = f.values[train], f.values[test]
    if f.kind == CATEGORICAL:
        if len(np.unique(y_train)) < 2:
            return "its training examples take one value only"
        model, imp = _fit_probe(probe, f.kind, x_train, y_train, seed, alpha)
        return imp, float((model.predict(x_test) != y_test).mean())
    mu, sd = y_train.mean(), y_train.std()
    if sd == 0:
        return "its training examples take one value only"
    model, imp = _fit_probe(probe, f.kind, x_train, (y_train - mu) / sd, seed, alpha)
    pred = model.predict(x_test) * sd + mu
    scale = y_test.std() if y_test.std() > 0 else sd
    return imp, float(np.sqrt(np.mean((pred - y_test) ** 2)) / scale)


def dci(codes, factors, probe: str = "linear", test_fraction: float = 0.2, seed: int = 0,
        alpha: float = 0.01) -> DCIResult:
    """Eastwood and Williams' disentanglement, completeness and informativeness of ``codes`` (N, D)
    for ``factors`` (see the module docstring): one ``probe`` per factor fitted on a seeded split,
    ``test_fraction`` of the examples held out for the error; ``alpha`` is the Lasso's penalty."""
    if probe not in PROBES:
        raise UserError(f"probe must be one of {', '.join(PROBES)}, got {probe!r}")
    if not 0 < test_fraction < 1:
        raise UserError(f"test_fraction must lie strictly between 0 and 1, got {test_fraction}")
    c = _codes(codes)
    cols = factor_columns(factors, len(c))
    imps, errors, kept, skipped = [], [], [], []
    for f in cols:
        got = _probe_factor(c, f, probe, test_fraction, seed, alpha)
        if isinstance(got, str):
            skipped.append((f.name, got))
            continue
        imps.append(got[0])
        errors.append(got[1])
        kept.append(f)
    if not kept:
        raise UserError("DCI has no factor to score: " + "; ".join(f"{n}: {why}" for n, why in skipped))
    r = np.stack(imps, 1)
    s = disentanglement_completeness(r)
    err = np.asarray(errors)
    return DCIResult(s.disentanglement, s.completeness, float(err.mean()), r, s.per_code, s.code_weight,
                     s.per_factor, err, tuple(f.name for f in kept), tuple(f.kind for f in kept),
                     tuple(skipped), probe, test_fraction, seed)
