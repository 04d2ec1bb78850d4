"""Add a distribution family with one call, then use it in a spec.

``graphvae.register_family`` takes the name a spec writes, the ``torch.distributions``
class and its parameters; constraints and support come from the class itself, so a
network head is mapped onto each parameter with ``transform_to`` like the built-in ones.
Here a Gumbel likelihood, which graphvae does not ship, models real-valued data.

    python examples/custom_family.py [--steps 300]
"""

from __future__ import annotations

import argparse

import torch

import graphvae

SPEC = """
model gumbel_vae

x : observed real[4]
z : latent   real[2]

encoder {
  z | x ~ Normal(mlp(32))
}

decoder {
  z     ~ Normal(0, 1)
  x | z ~ Gumbel(mlp(32))
}
"""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args(argv)

    graphvae.register_family("Gumbel", torch.distributions.Gumbel, params=("loc", "scale"))
    spec, diagnostics = graphvae.check_text(SPEC, "gumbel_vae.gvae", "dsl")
    for d in diagnostics:
        print(d.headline())
    if spec is None or any(d.is_error for d in diagnostics):
        return 1

    torch.manual_seed(0)
    z = torch.randn(512, 2)
    x = torch.cat([z, z.sum(-1, keepdim=True), z[:, :1] - z[:, 1:]], -1) + 0.1 * torch.randn(512, 4)
    model = graphvae.compile_spec(spec)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    for step in range(1, args.steps + 1):
        loss = model.loss({"x": x})
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    iwae = model.log_marginal({"x": x}, samples=20).mean().item()  # evaluation runs without gradients
    print(f"after {args.steps} steps: loss {loss.item():.3f}, IWAE-20 log p(x) {iwae:.3f} nats per example")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
