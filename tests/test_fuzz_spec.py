"""The spec front end under fuzzing (benchmarks/fuzz_spec.py): generated and mutated specs in both
languages through ``graphvae check`` in-process, with no traceback and no pathologically slow case.
The time limits are loose (10 s a case, where a case takes milliseconds): they catch a parse that
blows up, not a slow machine; ``benchmarks/fuzz_spec.py`` reports the times."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import fuzz_spec  # noqa: E402

from graphvae.spec.errorcodes import CODES, FRONT_END, YAML  # noqa: E402
from graphvae.spec.loader import check_text  # noqa: E402

FRONT = (FRONT_END, YAML)

CASES = 2000
MAX_BYTES = 64_000  # CI keeps inputs small; the script runs them up to 1 MB
SLOW = 10.0  # seconds: a blow-up, not the noise of a loaded machine (a 2 s limit failed now and then under load)


def test_no_traceback_and_no_slow_case():
    report = fuzz_spec.fuzz(CASES, seed=11, max_bytes=MAX_BYTES, slow=SLOW)
    failures = [(case.index, case.mutations, outcome.detail.strip().splitlines()[-1:])
                for case, outcome in report.failures]
    assert failures == []
    assert report.slow == []
    assert sum(report.counts.values()) == CASES
    assert report.counts["ok"] > CASES // 20 and report.counts["diagnosed"] > CASES // 2  # both kinds are drawn
    assert report.seconds < 600


def test_cases_are_reproducible_by_number():
    assert fuzz_spec.make_case(3, 17) == fuzz_spec.make_case(3, 17)
    assert fuzz_spec.make_case(3, 17) != fuzz_spec.make_case(3, 18)


@pytest.mark.parametrize("mutator", fuzz_spec.TEXT_MUTATORS + fuzz_spec.YAML_MUTATORS,
                         ids=lambda m: m.__name__.lstrip("_"))
def test_every_mutator_keeps_check_from_raising(mutator, tmp_path):
    for i in range(30):
        rng = random.Random(i)
        model = fuzz_spec.generate(rng)
        language = "yaml" if mutator in fuzz_spec.YAML_MUTATORS or i % 2 else "dsl"
        text = fuzz_spec.to_dsl(model) if language == "dsl" else fuzz_spec.to_yaml(model, rng)
        data = mutator(rng, text).encode("utf-8")[:MAX_BYTES]
        outcome = fuzz_spec.run_case(fuzz_spec.Case(i, language, data, (mutator.__name__,)), str(tmp_path))
        assert outcome.kind in ("ok", "diagnosed"), outcome.detail
        assert outcome.seconds < SLOW


def test_coherent_specs_read_the_same_in_both_languages():
    """An unmutated generated spec gives the same codes written in the DSL and in YAML."""
    agree = 0
    for i in range(200):
        rng = random.Random(i)
        model = fuzz_spec._coherent(rng)
        _, dsl = check_text(fuzz_spec.to_dsl(model), "c.gvae", "dsl")
        _, yml = check_text(fuzz_spec.to_yaml(model, rng), "c.yaml", "yaml")
        if any(CODES[d.code].section in FRONT for d in dsl + yml):
            # each front end words (and codes) its own errors: `real[1e-3]` is a DSL syntax error, YAML's
            # `shape: [1e-3]` a wrong-type
            assert any(d.is_error for d in dsl) and any(d.is_error for d in yml)
            continue
        assert [(d.code, d.message) for d in dsl] == [(d.code, d.message) for d in yml]
        agree += not any(d.is_error for d in dsl)
    assert agree > 50  # most of them are valid
