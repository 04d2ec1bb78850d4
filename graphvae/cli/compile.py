"""``graphvae compile SPEC``: compile a spec and print its nodes, networks, factorisation and objective.

The classifier weight is resolved against the data of the spec's train block (its training
split and labelled subset), as ``graphvae train`` would resolve it, when that data is at hand.
"""

from __future__ import annotations

import sys
import time

from graphvae.compile.compiler import compile_spec
from graphvae.compile.report import report
from graphvae.errors import UserError


def _tell_data_size(model) -> None:
    from graphvae.data import count_examples, prepare_data
    from graphvae.train import config as trainconfig

    if not model.spec.supervised or model.config.alpha_scaling != "dataset":
        return
    try:
        cfg = trainconfig.resolve(model.spec)
        data = prepare_data(model.spec, data=cfg.data, data_dir=cfg.data_dir or None, validation=cfg.validation,
                            labels=cfg.labels, seed=cfg.seed)
    except UserError:  # no data here (an IDX set not downloaded, say): the report gives the formula
        return
    model.set_data_size(count_examples(data.train), len(data.labelled))


def run(args) -> int:
    t0 = time.perf_counter()
    model = compile_spec(args.spec)
    elapsed = time.perf_counter() - t0
    _tell_data_size(model)
    sys.stdout.write(report(model, elapsed))
    return 0
