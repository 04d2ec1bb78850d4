"""A plain, hand-written PyTorch M2 (Kingma et al. 2014) to compare with ``graphvae train specs/m2.gvae``.

Same architecture as specs/m2.gvae: classifier q(y|x) 784-500-10, encoder
q(z|x,y) 784+10-500-(50 loc, 50 log-scale), decoder p(x|y,z) 10+50-500-784
Bernoulli logits, ReLU hidden layers, p(z) = N(0, I), p(y) uniform.  With --spec,
the sizes (x, y, z, the hidden widths of mlp(...) and whether it has batchnorm = true) are
read from that M2-shaped spec.  Same data (graphvae.data: the same validation split, labelled
subset and batches), batch size, labelled examples per batch, optimiser, epochs, alpha and its
scaling (--alpha-scaling dataset: alpha * N / N_labelled of the training set), clipping.

Objective per batch of B examples (a loss to minimise, mean over the batch):

    labelled (x, y):  -[ E_q(z|x,y) log p(x|y,z) p(y) p(z) / q(z|x,y)  +  w * log q(y|x) ]
    unlabelled x:     -[ sum_y q(y|x) E_q(z|x,y) log p(x|y,z) p(y) p(z) / q(z|x,y)  +  H(q(y|x)) ]

with one reparameterised z per (x, y) and y enumerated for unlabelled examples; w is alpha as
scaled (the compiled model's weight).  Labelled and unlabelled rows go through the networks
separately, as the compiled model's groups do (it matters under batch normalisation).

    python benchmarks/handwritten_m2.py --data mnist --labels 100 --epochs 5

prints the test error and seconds per epoch (the lead compares them with the
compiled model's, trained with the same flags).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parents[1]


def _mlp(sizes: list[int], batchnorm: bool) -> nn.Sequential:
    """Affine layers of ``sizes``; each hidden one followed by batch norm (if asked) and a ReLU."""
    layers: list[nn.Module] = []
    for i in range(1, len(sizes)):
        layers.append(nn.Linear(sizes[i - 1], sizes[i]))
        if i < len(sizes) - 1:
            layers += ([nn.BatchNorm1d(sizes[i])] if batchnorm else []) + [nn.ReLU()]
    return nn.Sequential(*layers)


class M2(nn.Module):
    def __init__(self, x_dim=784, y_dim=10, z_dim=50, hidden=(500,), batchnorm=False):
        super().__init__()
        hidden = [hidden] if isinstance(hidden, int) else list(hidden)
        self.y_dim, self.z_dim = y_dim, z_dim
        self.classifier = _mlp([x_dim, *hidden, y_dim], batchnorm)
        self.encoder = _mlp([x_dim + y_dim, *hidden, 2 * z_dim], batchnorm)
        self.decoder = _mlp([y_dim + z_dim, *hidden, x_dim], batchnorm)

    def elbo_given_y(self, x, y_onehot):
        """Single-sample ELBO of log p(x, y) with y given, per row: (N,)."""
        loc, log_scale = self.encoder(torch.cat([x, y_onehot], -1)).chunk(2, -1)
        scale = log_scale.exp()
        z = loc + scale * torch.randn_like(loc)
        logits = self.decoder(torch.cat([y_onehot, z], -1))
        log_px = -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)
        log_pz = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
        log_qz = torch.distributions.Normal(loc, scale).log_prob(z).sum(-1)
        return log_px + log_pz - log_qz - math.log(self.y_dim)

    def loss(self, x, y, alpha):
        """Mean over the batch of the negative objective; y = -1 marks unlabelled rows."""
        labelled = y >= 0
        total = x.new_zeros(())
        if labelled.any():
            xl, yl = x[labelled], y[labelled]
            log_qy = F.log_softmax(self.classifier(xl), -1)
            elbo = self.elbo_given_y(xl, F.one_hot(yl, self.y_dim).to(x.dtype))
            total = total + (elbo + alpha * log_qy.gather(1, yl[:, None]).squeeze(1)).sum()
        if (~labelled).any():
            xu = x[~labelled]
            lq = F.log_softmax(self.classifier(xu), -1)
            n, k = xu.shape[0], self.y_dim
            ys = torch.eye(k, dtype=x.dtype, device=x.device).repeat(n, 1)  # every class for every example
            elbo = self.elbo_given_y(xu.repeat_interleave(k, 0), ys).view(n, k)
            q = lq.exp()
            total = total + ((q * elbo).sum(-1) - (q * lq).sum(-1)).sum()
        return -total / x.shape[0]

    @torch.no_grad()
    def predict(self, x):
        return self.classifier(x).argmax(-1)


def m2_like(spec) -> M2:
    """The hand-written M2 with the sizes of an M2-shaped spec (one observed x, supervised y,
    latent z; the mlp(...) of q(y|x), its widths and batchnorm, for every network)."""
    x, likelihood = spec.observed[0], next(f for f in spec.decoder if f.name == spec.observed[0].name)
    if x.domain != "binary" or likelihood.dist.family != "Bernoulli":
        raise SystemExit(f"the hand-written M2 is a Bernoulli one over binary x; {spec.path} has {x.domain} x "
                         f"under {likelihood.dist.family}")
    net = spec.encoder[0].dist.params[0].value  # mlp(...) of q(y|x)
    return M2(x_dim=spec.observed[0].size, y_dim=spec.supervised[0].classes, z_dim=spec.latent[0].size,
              hidden=tuple(net.hidden), batchnorm=bool(net.option("batchnorm", False)))


def error_rate(model: M2, arrays: dict, x_var: str, y_var: str, chunk: int = 1000) -> float:
    """Fraction of examples whose argmax q(y|x) is not the label."""
    from graphvae.data import to_batch

    n, wrong = len(arrays[x_var]), 0
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()  # batch normalisation uses its running statistics
    for start in range(0, n, chunk):
        b = to_batch(arrays, list(range(start, min(n, start + chunk))), device=device)
        wrong += int((model.predict(b[x_var].reshape(b[x_var].shape[0], -1)) != b[y_var]).sum())
    model.train(was_training)
    return wrong / max(1, n)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--spec", default=str(ROOT / "specs" / "m2.gvae"), help="the spec whose data matching is reused")
    p.add_argument("--data", default="mnist")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--labels", type=int, default=100)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--labelled-per-batch", type=int, default=100)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--alpha", type=float, default=0.1)
    p.add_argument("--alpha-scaling", choices=["dataset", "per_example"], default="dataset")
    p.add_argument("--grad-clip", type=float, default=0.0, help="max gradient norm (0 disables)")
    p.add_argument("--grad-clip-value", type=float, default=0.0, help="max gradient entry (0 disables)")
    p.add_argument("--validation", type=float, default=0.1)
    p.add_argument("--binarize", default="dynamic")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N")
    p.add_argument("--max-steps", type=int, default=0, help="stop early (smoke tests)")
    p.add_argument("--json", default="", help="also write the figures and the validation curve to this file")
    args = p.parse_args(argv)

    from graphvae.data import SemiSupervisedBatches, evaluation_arrays, prepare_data
    from graphvae.spec.loader import load_spec

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    torch.manual_seed(args.seed)
    spec = load_spec(args.spec)
    x_var, y_var = spec.observed[0].name, spec.supervised[0].name
    data = prepare_data(spec, data=args.data, data_dir=args.data_dir, validation=args.validation,
                        labels=args.labels, seed=args.seed)
    device = torch.device(args.device)
    model = m2_like(spec).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    batches = SemiSupervisedBatches(data.train, spec, data.labelled, batch_size=args.batch_size,
                                    labelled_per_batch=args.labelled_per_batch, binarize=args.binarize,
                                    generator=torch.Generator().manual_seed(args.seed))
    weight = args.alpha * len(data.train[x_var]) / max(1, len(data.labelled)) if args.alpha_scaling == "dataset" \
        else args.alpha
    print(f"hand-written M2: {sum(p.numel() for p in model.parameters())} parameters, "
          f"{len(data.labelled)} labelled examples, {len(batches)} steps per epoch", flush=True)
    val = evaluation_arrays(data.val, spec, args.binarize)
    test = evaluation_arrays(data.test, spec, args.binarize)
    step, seconds, curve, best = 0, [], [], (math.inf, None)
    for epoch in range(args.epochs):
        t0 = time.perf_counter()
        total = 0.0
        for batch in batches:
            x = batch[x_var].reshape(batch[x_var].shape[0], -1).to(device)
            loss = model.loss(x, batch[y_var].to(device), weight)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if args.grad_clip_value > 0:
                torch.nn.utils.clip_grad_value_(model.parameters(), args.grad_clip_value)
            if args.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
            opt.step()
            total += float(loss.detach())
            step += 1
            if args.max_steps and step >= args.max_steps:
                break
        seconds.append(time.perf_counter() - t0)
        val_error = error_rate(model, val, x_var, y_var) if len(data.val[x_var]) else math.nan
        curve.append(val_error)
        if val_error < best[0]:  # the trainer's rule: keep the weights with the lowest validation error
            best = (val_error, {k: v.clone() for k, v in model.state_dict().items()})
        print(f"epoch {epoch + 1}: loss {total / max(1, len(batches)):.3f}, val error {100 * val_error:.2f}%, "
              f"{seconds[-1]:.1f} s", flush=True)
        if args.max_steps and step >= args.max_steps:
            break
    final_error = error_rate(model, test, x_var, y_var)
    if best[1] is not None:
        model.load_state_dict(best[1])
    best_error = error_rate(model, test, x_var, y_var)
    n = len(test[x_var])
    print(f"test error {100 * final_error:.2f}% (final), {100 * best_error:.2f}% (best validation epoch) on "
          f"{n} examples; {sum(seconds) / len(seconds):.1f} s per epoch ({args.epochs} epochs, {step} steps)")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "seed": args.seed, "epochs": args.epochs, "steps": step, "test_error_final": final_error,
            "test_error_best": best_error, "val_error": curve, "seconds_per_epoch": seconds}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
