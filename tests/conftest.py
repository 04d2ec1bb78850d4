"""Shared test fixtures: the tiny digits-sized M2 that the training, evaluation and picture tests train."""

from __future__ import annotations


def tiny_m2(z: int = 2, objective: str = "y = enumerate", train: str = "") -> str:
    """An M2 spec for 8x8 digits with 16 hidden units: a few steps train it in well under a second."""
    return f"""model tiny

x : observed   binary[64]
y : supervised categorical[10]
z : latent     real[{z}]

encoder {{
  y | x    ~ Categorical(mlp(16))
  z | x, y ~ Normal(mlp(16))
}}

decoder {{
  z        ~ Normal(0, 1)
  y        ~ Categorical(uniform)
  x | y, z ~ Bernoulli(mlp(16))
}}

objective {{
  {objective}
}}

train {{
{train}
}}
"""
