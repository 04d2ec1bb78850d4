"""A tabular dataset for the semi-supervised benchmarks: classes a linear classifier separates, a few labelled.

Each example has ``--dims`` real features: the mean of its class (``--classes`` means, well
apart along random directions), plus a continuous factor (a standard normal times a fixed
direction), plus isotropic noise.  A fraction ``--labelled`` of the training examples carry
their class; the others carry -1.  The test split is labelled in full.  Written as an .npz
whose arrays are named after a spec's variables (``x``, ``y``; ``test_x``, ``test_y``), so

    python benchmarks/make_tabular.py --out /tmp/tabular.npz
    graphvae train specs/tabular_m2.gvae --data /tmp/tabular.npz

trains on it (on every label the file gives).  The same seed gives the same file.
"""

from __future__ import annotations

import argparse

import numpy as np


def make(n: int = 2000, n_test: int = 1000, dims: int = 20, classes: int = 4, labelled: float = 0.05,
         separation: float = 4.0, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(classes, dims))
    means *= separation / np.linalg.norm(means, axis=1, keepdims=True)
    factor = rng.normal(size=dims)
    factor *= 2.0 / np.linalg.norm(factor)

    def draw(m: int):
        y = rng.integers(0, classes, m)
        x = means[y] + rng.normal(size=(m, 1)) * factor + 0.5 * rng.normal(size=(m, dims))
        return x.astype(np.float32), y.astype(np.int64)

    x, y = draw(n)
    test_x, test_y = draw(n_test)
    shown = np.full(n, -1, dtype=np.int64)
    keep = rng.choice(n, int(round(labelled * n)), replace=False)
    shown[keep] = y[keep]
    return {"x": x, "y": shown, "test_x": test_x, "test_y": test_y}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--n", type=int, default=2000)
    p.add_argument("--dims", type=int, default=20)
    p.add_argument("--classes", type=int, default=4)
    p.add_argument("--labelled", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    arrays = make(args.n, dims=args.dims, classes=args.classes, labelled=args.labelled, seed=args.seed)
    np.savez(args.out, **arrays)
    print(f"wrote {args.out}: {args.n} training examples ({int((arrays['y'] >= 0).sum())} labelled), "
          f"{len(arrays['test_y'])} test, {args.dims} features, {args.classes} classes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
