"""Evaluation: ``graphvae eval RUN`` and the metrics the trainer validates with.

For a split of the data (test by default) it reports, with every label hidden from the model:

- ``error/<y>`` for each supervised variable: the classification error of
  ``model.predict`` for a categorical one, the root-mean-square error for a continuous one
  (over the examples that have a label);
- ``rmse/<r>[i]`` (with ``components=True``, as ``graphvae eval`` asks) for each value ``i`` of a
  continuous supervised variable that has several (``real[2]``: ``rmse/r[0]``, ``rmse/r[1]``; a
  variable of several dimensions is counted in its flattened, row-major order): the root-mean-square
  error of that value alone, over the same examples as ``error/<r>``, so that ``error/<r>`` is the
  square root of the mean of their squares.  Every RMSE is in the variable's own units, those of the
  data's labels (degrees for the light of ``graphvae data make shaded-shapes``): nothing is rescaled;
- ``elbo``: the mean evidence lower bound on log p(x) per example (nats);
- ``iwae``: the mean importance-weighted bound with K samples (``-k K``), tighter than the ELBO;
- ``examples``: how many examples were evaluated.

Which epoch best.pt keeps is :mod:`graphvae.train.selection`'s.
"""

from __future__ import annotations

import math

import torch

from graphvae.errors import UserError
from graphvae.train.runfolder import RunFolder

EVAL_BATCH = 250


class NonFiniteMetric(UserError):
    """A metric came out NaN or infinite: the model's weights (or batch-norm statistics) are not finite."""

    def __init__(self, name: str, value: float, n: int):
        super().__init__(f"{name} is {value} on {n} examples: the model's weights or batch-norm statistics are "
                         "not finite, or its computation overflows")
        self.name, self.value = name, value


def _n_examples(arrays: dict) -> int:
    for key, value in arrays.items():
        if not key.startswith("_"):
            return len(value)
    return 0


@torch.no_grad()
def evaluate_arrays(model, spec, arrays: dict, device="cpu", iwae_samples: int = 0,
                    batch_size: int = EVAL_BATCH, components: bool = False) -> dict:
    """Metrics of ``model`` on ``arrays`` (graphvae.data's dict of numpy arrays, fixed binarization);
    ``components`` adds the RMSE of each value of a continuous supervised variable with several."""
    from graphvae.data.batches import hide_labels, to_batch

    n = _n_examples(arrays)
    if n == 0:
        raise UserError("no examples to evaluate")
    was_training = model.training
    model.eval()
    sums = {"elbo": 0.0, "iwae": 0.0}
    errors: dict[str, list[float]] = {v.name: [0.0, 0.0] for v in spec.supervised}  # [sum, count]
    parts: dict[str, torch.Tensor] = {}  # continuous variable -> per-value sums of squared errors
    try:
        for start in range(0, n, batch_size):
            idx = list(range(start, min(n, start + batch_size)))
            batch = {k: v.to(device) for k, v in to_batch(arrays, idx, device="cpu").items()}
            hidden = hide_labels(batch, spec)
            _, terms = model.loss(hidden, terms=True)
            sums["elbo"] += float(terms["elbo"]) * len(idx)
            if iwae_samples > 0:
                sums["iwae"] += float(model.log_marginal(hidden, samples=iwae_samples).sum())
            for v in spec.supervised:
                if v.name not in batch:
                    continue
                truth, pred = batch[v.name], model.predict(hidden, v.name)
                if v.domain == "categorical":
                    known = truth >= 0
                    errors[v.name][0] += float((pred[known] != truth[known]).sum())
                    errors[v.name][1] += float(known.sum())
                else:
                    known = ~torch.isnan(truth).reshape(len(idx), -1).any(dim=1)
                    diff = (pred[known] - truth[known]).reshape(int(known.sum()), truth[0].numel())
                    errors[v.name][0] += float((diff ** 2).mean(dim=1).sum()) if diff.numel() else 0.0
                    errors[v.name][1] += float(known.sum())
                    if components and diff.shape[1] > 1:
                        sq = (diff.double() ** 2).sum(dim=0).cpu()
                        parts[v.name] = parts[v.name] + sq if v.name in parts else sq
    finally:
        model.train(was_training)
    out: dict = {"examples": n, "elbo": sums["elbo"] / n}
    if iwae_samples > 0:
        out["iwae"] = sums["iwae"] / n
        out["iwae_samples"] = iwae_samples
    for v in spec.supervised:
        total, count = errors[v.name]
        if count:
            err = total / count
            out[f"error/{v.name}"] = err if v.domain == "categorical" else math.sqrt(err)
            for i, sq in enumerate(parts.get(v.name, torch.zeros(0)).tolist()):
                out[f"rmse/{v.name}[{i}]"] = math.sqrt(sq / count)
    for key, value in out.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise NonFiniteMetric(key, value, n)
    return out


def validate(model, spec, arrays: dict, device="cpu") -> dict:
    """The trainer's per-epoch validation: error per supervised variable and the ELBO (no IWAE)."""
    return evaluate_arrays(model, spec, arrays, device=device)


def evaluate_run(run_path, data: str | None = None, data_dir: str | None = None, samples: int | None = None,
                 which: str = "best", split: str = "test", device: str | None = None) -> dict:
    """Load a run and evaluate it on a split of its data (or of ``data``); IWAE with K = ``samples``
    (default: the run's eval_samples; 0 skips it)."""
    from graphvae.data import evaluation_arrays, load_labelled, prepare_data
    from graphvae.train.runs import load_run

    run = load_run(run_path, which, device or "auto")
    spec, cfg, model, state = run.spec, run.config, run.model, run.state
    k = cfg.eval_samples if samples is None else samples
    if k < 0:
        raise UserError(f"-k must be at least 1 (0 skips IWAE), got {k}")
    data_obj = prepare_data(spec, data=data or cfg.data, data_dir=data_dir or cfg.data_dir or None,
                            validation=cfg.validation, labels=cfg.labels, seed=cfg.seed)
    arrays = evaluation_arrays(data_obj.test if split == "test" else data_obj.val, spec, cfg.binarize)
    if split != "test" and not _n_examples(arrays):
        raise UserError(f"{run_path} holds out no validation examples (validation = {cfg.validation:g}); "
                        "evaluate the test split instead")
    torch.manual_seed(cfg.seed)
    out = {"run": str(run_path), "checkpoint": which, "split": split, "data": data or cfg.data,
           "epoch": int(state.get("epoch", 0)), "step": int(state.get("step", 0))}
    try:
        out.update(evaluate_arrays(model, spec, arrays, device=next(model.parameters()).device, iwae_samples=k,
                                   components=True))
    except NonFiniteMetric as e:
        raise UserError(f"{run_path} ({which}.pt) on the {split} split: {e}") from None
    if RunFolder(run_path).labelled_path.exists():
        out["labelled_examples"] = int(len(load_labelled(run_path)))
    out["supervised"] = {v.name: v.domain for v in spec.supervised}
    base = RunFolder(run_path).baseline
    if base.has_checkpoint() and which == "best":  # the labelled-only baseline, beside the run
        res = evaluate_run(base.path, data, data_dir, 0, which, split, device)
        out["baseline"] = {k: v for k, v in res.items() if k.startswith(("error/", "rmse/"))}
        out["baseline"].update(epoch=res["epoch"], step=res["step"])
    return out
