"""Load a trained run in Python and use its model: predictions, codes and samples as arrays.

``graphvae.load_run`` checks the run folder (spec hash, checkpoint digest, labelled subset) and
gives the model of ``best.pt`` in eval mode, with the spec, the train config and the labelled
subset it was trained with.  Without a run folder this first trains a short one on the digits
(``graphvae train specs/digits_m2.gvae --epochs N --out RUN``).

    python examples/trained_run.py [--run runs/example] [--epochs 2]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

import graphvae

SPEC = Path(__file__).resolve().parents[1] / "specs" / "digits_m2.gvae"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default=None, help="a run folder (default: train a short one in a temporary folder)")
    parser.add_argument("--epochs", type=int, default=2, help="epochs of the run trained when --run is not given")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        run_dir = args.run or str(Path(tmp) / "run")
        if not Path(run_dir, "config.json").is_file():
            subprocess.run([sys.executable, "-m", "graphvae", "train", str(SPEC), "--epochs", str(args.epochs),
                            "--out", run_dir, "--no-progress"], check=True, stdout=subprocess.DEVNULL)
        run = graphvae.load_run(run_dir, checkpoint="best", device="cpu")
        print(f"{run.checkpoint} (epoch {run.epoch}): model {run.spec.name}, {len(run.labelled)} labelled examples, "
              f"seed {run.config.seed}")

        # the model itself: an nn.Module in eval mode, its evaluation methods without gradients
        data = graphvae.prepare_data(run.spec, data=run.config.data, validation=run.config.validation,
                                     labels=run.config.labels, seed=run.config.seed)
        x, y = torch.from_numpy(data.test["x"]), torch.from_numpy(data.test["y"])
        error = (run.model.predict({"x": x}, "y") != y).float().mean().item()
        print(f"test error of q(y|x): {100 * error:.2f}% on {len(y)} digits")

        # or arrays, as graphvae predict / encode / sample write them
        preds = run.predict(data.test)  # {"y": classes, "y_prob": (N, 10) probabilities}
        codes = run.encode(data.test)  # {"z": means, "z_loc", "z_scale", "y", "y_probs"}
        draws = run.sample(10, given={"y": torch.arange(10)})  # one draw of every digit
        assert (preds["y"] == run.model.predict({"x": x}, "y").numpy()).all()
        print(f"mean top-class probability {preds['y_prob'].max(1).mean():.3f}; z is {codes['z'].shape[1]}-"
              f"dimensional (mean scale {codes['z_scale'].mean():.3f}); sampled x of shape "
              f"{draws['x'].shape}, classes {np.asarray(draws['y']).tolist()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
