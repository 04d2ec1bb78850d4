"""Train a compiled spec with your own PyTorch loop instead of ``graphvae train``.

The compiled model is an ordinary ``nn.Module``: any optimiser, schedule or logging works.
This trains ``specs/digits_m2.gvae`` on scikit-learn's bundled digits with 100 labels and
prints the test error of q(y|x).

    python examples/own_training_loop.py [--steps 2000]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

import graphvae

SPEC = Path(__file__).resolve().parents[1] / "specs" / "digits_m2.gvae"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    torch.manual_seed(args.seed)
    spec = graphvae.load_spec(SPEC)
    model = graphvae.compile_spec(spec)
    data = graphvae.prepare_data(spec, data="digits", labels=100, seed=args.seed)  # numpy arrays, split and labelled
    model.set_data_size(len(data.train["x"]), data.n_labelled)  # the classifier weight alpha * N / N_labelled
    batches = graphvae.SemiSupervisedBatches(data.train, spec, data.labelled, batch_size=100, labelled_per_batch=100,
                                    generator=torch.Generator().manual_seed(args.seed))
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)

    step = 0
    while step < args.steps:
        for batch in batches:  # one epoch; labels outside the labelled subset are -1
            loss, terms = model.loss(batch, terms=True)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            step += 1
            if step % 500 == 0:
                print(f"step {step}: loss {loss.item():.2f}, ELBO {terms['elbo'].item():.2f}")
            if step >= args.steps:
                break

    x, labels = torch.from_numpy(data.test["x"]), torch.from_numpy(data.test["y"])  # x: unit grey levels
    model.eval()  # batch normalisation uses its running statistics; predict runs without gradients
    error = (model.predict({"x": x}, "y") != labels).float().mean().item()
    print(f"test error after {step} steps: {100 * error:.2f}% on {len(labels)} digits ({data.n_labelled} labels)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
