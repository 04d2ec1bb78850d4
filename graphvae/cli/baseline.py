"""``graphvae baseline RUN``: train the run's spec on its labelled examples alone, beside the run.

The baseline is ``RUN/baseline`` (the same splits, labelled subset, networks, objective and
steps, without the unlabelled examples); it resumes when run again.  Then both are evaluated
on the test set and the gain of the unlabelled data is printed.
"""

from __future__ import annotations

from graphvae.cli.eval import baseline_lines, error_text
from graphvae.train.baseline import train_baseline
from graphvae.train.evaluate import evaluate_run


def report(run, device) -> None:
    res = evaluate_run(run, samples=0, which="best", split="test", device=device)
    errors = [f"{name} {error_text(res[f'error/{name}'], d)}" for name, d in res["supervised"].items()
              if f"error/{name}" in res]
    print(f"test ({res['examples']} examples): semi-supervised {', '.join(errors)} (best.pt, epoch {res['epoch']})")
    for line in baseline_lines(res):
        print(line.strip())


def run(args) -> int:
    result = train_baseline(args.run, progress=not args.no_progress, device=args.device)
    if result.interrupted:
        return 130
    print(f"labelled-only baseline: {result.epoch} epochs ({result.step} steps) into {result.run}; "
          f"best.pt: {result.selected}")
    report(args.run, args.device)
    return 0
