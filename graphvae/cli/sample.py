"""``graphvae sample RUN --out DIR``: PNG grids of generation, style transfer, reconstructions, traversals."""

from __future__ import annotations

from graphvae.train.pictures import sample_pictures


def run(args) -> int:
    sample_pictures(args.run, args.out, n=args.n, seed=args.seed, which=args.checkpoint, data=args.data,
                    data_dir=args.data_dir, device=args.device, log=print)
    return 0
