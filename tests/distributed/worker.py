"""A training process for tests/test_distributed.py, started by torchrun:
``worker.py SPEC OUT REPORT.json KEY=VALUE...`` trains SPEC into OUT with the settings given
(``max_steps=N`` stops after N steps) and, after every optimiser step, gathers a checksum of
every process's parameters and of its floating-point buffers (batch-norm statistics); each rank
writes REPORT.json.RANK with the largest differences from rank 0's it saw, and the steps it
checked."""

from __future__ import annotations

import dataclasses
import json
import sys

import torch
import torch.distributed as dist

from graphvae.spec.loader import load_spec_file
from graphvae.train import config as trainconfig
from graphvae.train.distributed import from_env
from graphvae.train.loop import train


def main() -> int:
    spec_path, out, report, *settings = sys.argv[1:]
    values = dict(s.split("=", 1) for s in settings)
    max_steps = int(values.pop("max_steps")) if "max_steps" in values else None
    spec, _, _ = load_spec_file(spec_path)
    cfg = trainconfig.resolve(spec, values)
    world = from_env()
    seen = {"steps": [], "parameters": 0.0, "buffers": 0.0}

    def largest_difference(tensors) -> float:
        flat = torch.cat([t.detach().double().reshape(-1) for t in tensors] or [torch.zeros(1, dtype=torch.double)])
        parts = [torch.empty_like(flat) for _ in range(world.size)]
        dist.all_gather(parts, flat)
        return max(float((p - parts[0]).abs().max()) for p in parts)

    def on_step(model, step):
        seen["steps"].append(step)
        seen["parameters"] = max(seen["parameters"], largest_difference(list(model.parameters())))
        seen["buffers"] = max(seen["buffers"], largest_difference([b for b in model.buffers() if b.is_floating_point()]))

    result = train(spec_path, dataclasses.replace(cfg), out, progress=False, max_steps=max_steps,
                   log=lambda *a: None, on_step=on_step)
    with open(f"{report}.{world.rank}", "w") as fh:
        json.dump({**seen, "rank": world.rank, "world": world.size, "step": result.step}, fh)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
