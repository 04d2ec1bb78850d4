"""Labelled-only baselines on the exact labelled subsets ``graphvae train`` uses, over seeds.

A semi-supervised model exists to beat what its labels alone give, so every figure it
reports stands beside these: an RBF SVM and a logistic regression fitted to the labelled
training examples only (the same validation split and labelled subset as a run with the same
spec, data, labels and seed), scored on the same test set.

    python benchmarks/baseline_labelled.py --spec specs/digits_m2.gvae --labels 100 --seeds 0-15

prints the test error per seed and the mean ± standard deviation of each baseline.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from compare_m2 import parse_seeds  # noqa: E402


def baselines(spec_path: str, data: str, labels: int, seed: int, data_dir: str | None = None,
              validation: float = 0.1) -> dict[str, float]:
    """Test error (a fraction) of each labelled-only baseline for one seed."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import SVC

    from graphvae.data import prepare_data
    from graphvae.spec.loader import load_spec

    spec = load_spec(spec_path)
    d = prepare_data(spec, data=data, data_dir=data_dir, validation=validation, labels=labels, seed=seed)
    x, y = d.dataset.observed[0], d.label_var
    if y is None:
        raise SystemExit(f"{spec_path} has no categorical supervised variable to classify")
    train_x = d.train[x][d.labelled].reshape(len(d.labelled), -1)
    train_y = d.train[y][d.labelled]
    test_x, test_y = d.test[x].reshape(len(d.test[x]), -1), d.test[y]
    models = {"svm_rbf": SVC(), "logistic_regression": LogisticRegression(max_iter=2000)}
    return {name: float((m.fit(train_x, train_y).predict(test_x) != test_y).mean()) for name, m in models.items()}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--spec", default=str(ROOT / "specs" / "digits_m2.gvae"))
    p.add_argument("--data", default="digits")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--labels", type=int, default=100)
    p.add_argument("--validation", type=float, default=0.1)
    p.add_argument("--seeds", default="0-15", help="e.g. 0-15 or 0,3,7")
    args = p.parse_args(argv)
    rows = {s: baselines(args.spec, args.data, args.labels, s, args.data_dir, args.validation)
            for s in parse_seeds(args.seeds)}
    names = list(next(iter(rows.values())))
    print(f"labelled-only baselines, {args.data}, {args.labels} labels, test error")
    print("| seed | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for s, row in rows.items():
        print(f"| {s} | " + " | ".join(f"{100 * row[n]:.2f} %" for n in names) + " |")
    for n in names:
        values = [100 * row[n] for row in rows.values()]
        spread = f" ± {statistics.stdev(values):.2f}" if len(values) > 1 else ""
        print(f"{n}: mean {statistics.mean(values):.2f} %{spread} over {len(values)} seed(s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
