"""Which epoch ``best.pt`` keeps: the rules the ``selection`` setting names.

A run's score after each epoch is :func:`selection_score` (lower is better): the mean
validation error of the categorical supervised variables, else of the continuous ones,
else the negative validation ELBO (the training ELBO when there is no validation split).

* ``error_se`` (the default): the **latest** epoch whose score is within one standard error
  of the lowest score so far.  With a handful of labelled validation examples the error is
  noisy; the lowest one is often an early epoch that merely got lucky (on a user's tabular
  data it was epoch 2 of 50, its ELBO -41.7 against -14.7 at the end).  Within the noise
  this rule prefers the model that trained longest.  The standard error of an error rate p
  over n validation examples is sqrt(p (1 - p) / n); a score that is not an error rate
  has none, and the rule is then ``error``'s.
* ``error``: the epoch with the lowest score, the first of equals.
* ``elbo``: the epoch with the highest validation ELBO.
* ``last``: the final epoch.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass


def selection_score(spec, row: dict) -> float:
    """Lower is better: mean validation error of categorical supervised variables, else of the
    continuous ones, else -ELBO (validation, or training when there is no validation split)."""
    for domain_ok in (lambda d: d == "categorical", lambda d: d != "categorical"):
        keys = [f"val/error/{v.name}" for v in spec.supervised if domain_ok(v.domain)]
        vals = [row[k] for k in keys if k in row]
        if vals:
            return sum(vals) / len(vals)
    return _elbo_score(row)


def _elbo_score(row: dict) -> float:
    if "val/elbo" in row:
        return -row["val/elbo"]
    return -row.get("train/elbo", -row.get("train/loss", math.inf))


def standard_error(spec, row: dict) -> float:
    """The standard error of the score when it is a validation error rate, else 0."""
    keys = [f"val/error/{v.name}" for v in spec.supervised if v.domain == "categorical"]
    rates = [row[k] for k in keys if k in row]
    n = row.get("val/examples", 0)
    if not rates or not n:
        return 0.0
    p = sum(rates) / len(rates)
    return math.sqrt(max(p * (1 - p), 0.0) / n)


@dataclass
class Selection:
    """The state of one rule over a run's epochs; saved in every checkpoint."""

    rule: str = "error_se"
    lowest: float = math.inf  # the lowest score so far
    lowest_se: float = 0.0  # its standard error
    lowest_epoch: int = 0
    score: float = math.inf  # the score of the epoch best.pt holds
    epoch: int = 0  # the epoch best.pt holds
    rate: bool = False  # whether the score is an error rate (a categorical variable's)

    def update(self, spec, row: dict) -> bool:
        """Take the metrics row of a finished epoch; True when that epoch becomes best.pt."""
        score = _elbo_score(row) if self.rule == "elbo" else selection_score(spec, row)
        self.rate = self.rule != "elbo" and any(f"val/error/{v.name}" in row for v in spec.supervised
                                                if v.domain == "categorical")
        if score < self.lowest or not math.isfinite(self.lowest):
            self.lowest, self.lowest_epoch = score, row["epoch"]
            self.lowest_se = standard_error(spec, row) if self.rule == "error_se" else 0.0
        if self.rule == "last":
            chosen = True
        elif self.rule == "error_se":
            chosen = score <= self.lowest + self.lowest_se
        else:
            chosen = self.lowest_epoch == row["epoch"]
        if chosen:
            self.score, self.epoch = score, row["epoch"]
        return chosen

    def describe(self) -> str:
        """Why best.pt holds its epoch, in words."""
        if self.rule == "last":
            return f"epoch {self.epoch}, the last (selection = last)"
        if self.rule == "elbo":
            return f"epoch {self.epoch}, the highest validation ELBO ({-self.score:.3f}; selection = elbo)"
        what = f"validation error {100 * self.score:.2f} %" if self.rate else f"score {self.score:.4g}"
        if self.rule == "error" or self.epoch == self.lowest_epoch:
            return f"epoch {self.epoch}, the lowest {what} (selection = {self.rule})"
        return (f"epoch {self.epoch}: {what}, within one standard error ({100 * self.lowest_se:.2f} %) of the "
                f"lowest, {100 * self.lowest:.2f} % at epoch {self.lowest_epoch} (selection = error_se)")

    def state_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_state(cls, state: dict) -> "Selection":
        return cls(**state)
