"""The settings of the objective and train blocks: one table that every consumer derives from (torch-free).

Each setting is a field of :class:`ObjectiveConfig` or :class:`TrainConfig`: its type is the
annotation, its default the field's default, and :func:`setting` stores the rest beside it --
the constraint its value must meet (data, see :class:`Constraint`), a help text, whether
``graphvae train`` has a named flag for it, and whether a resumed run may change it.
Rules that read several settings are :data:`CROSS_RULES`.  From this one table

* ``graphvae check`` validates a spec's blocks (:mod:`graphvae.spec.validate.objective`),
* the trainer resolves and checks its configuration (:mod:`graphvae.train.config`) and the
  batcher its batch settings (:mod:`graphvae.data.batches`),
* ``--set KEY=VALUE`` and the named flags of ``train``, ``eval`` and ``sample`` are derived
  (:mod:`graphvae.cli.parser`),

so none of them can accept what another refuses.  A problem is worded two ways from the same
constraint: a spec diagnostic says ``lr must be > 0, found -1``, a flag error ``lr must be
positive, got -1``.
"""

from __future__ import annotations

import math
import re
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Callable, Mapping, get_type_hints

from graphvae.errors import UserError
from graphvae.spec.diagnostics import did_you_mean

INT_LIMIT = 2**63  # integer settings fit a signed 64-bit integer (torch and numpy seeding, counts)
INT_TEXT = "below 2^63 (a 64-bit integer)"
DATASETS = ("digits", "mnist", "fashion-mnist", "kmnist")  # or a path to an .npz file (graphvae.data)


# -- constraints as data ------------------------------------------------------------------------
class Constraint:
    """What a setting's value must be.  ``math`` words it for a spec diagnostic, ``words`` for a
    command-line error; ``choices`` are the values it names (for "did you mean"), and ``closed``
    says whether they are the only ones (then a command-line flag offers exactly them)."""

    math: str = ""
    words: str = ""
    choices: tuple[str, ...] = ()
    closed: bool = False

    def check(self, value) -> bool:
        raise NotImplementedError


@dataclass(frozen=True)
class Interval(Constraint):
    """``lower <= value`` (``<`` when ``lower_open``) and, if given, ``value < upper``."""

    lower: float
    lower_open: bool = False
    upper: float | None = None  # exclusive
    note: str = ""  # appended to both wordings, e.g. "(0 disables)"
    text: tuple[str, str] | None = None  # (math, words) where the derived wording does not fit

    def check(self, value) -> bool:
        above = value > self.lower if self.lower_open else value >= self.lower
        return above and (self.upper is None or value < self.upper)

    def _wordings(self) -> tuple[str, str]:
        if self.text is not None:
            return self.text
        lo = _number_text(self.lower)
        if self.upper is not None:
            interval = f"in {'(' if self.lower_open else '['}{lo}, {_number_text(self.upper)})"
            return interval, ("a fraction " + interval if (self.lower, self.upper) == (0, 1) else interval)
        if self.lower_open:
            return f"> {lo}", "positive" if self.lower == 0 else f"greater than {lo}"
        return f">= {lo}", "non-negative" if self.lower == 0 else f"at least {lo}"

    @property
    def math(self) -> str:  # type: ignore[override]
        return _with_note(self._wordings()[0], self.note)

    @property
    def words(self) -> str:  # type: ignore[override]
        return _with_note(self._wordings()[1], self.note)


@dataclass(frozen=True)
class OneOf(Constraint):
    """One of ``values``; with ``npz``, also a path ending in ``.npz``."""

    values: tuple[str, ...]
    npz: bool = False

    def check(self, value) -> bool:
        return value in self.values or (self.npz and str(value).endswith(".npz"))

    @property
    def choices(self) -> tuple[str, ...]:  # type: ignore[override]
        return self.values

    @property
    def closed(self) -> bool:  # type: ignore[override]
        return not self.npz

    @property
    def math(self) -> str:  # type: ignore[override]
        return f"one of {', '.join(self.values)}" + (" or a path to an .npz file" if self.npz else "")

    words = math


@dataclass(frozen=True)
class Pattern(Constraint):
    """A string matching ``regex`` in full; ``described`` says which in words."""

    regex: str
    described: str

    def check(self, value) -> bool:
        return re.fullmatch(self.regex, str(value)) is not None

    @property
    def math(self) -> str:  # type: ignore[override]
        return self.described

    words = math


@dataclass(frozen=True)
class Bool(Constraint):
    """``true`` or ``false`` (a network option; settings take their type from the table)."""

    math = words = "true or false"

    def check(self, value) -> bool:
        return isinstance(value, bool)


@dataclass(frozen=True)
class Anything(Constraint):
    def check(self, value) -> bool:
        return True


def _number_text(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _with_note(text: str, note: str) -> str:
    return f"{text} {note}" if note else text


# -- the table ----------------------------------------------------------------------------------
def setting(default, constraint: Constraint | None = None, help: str = "", *, flag: bool = False,
            resumable: bool = False):
    """A config field with its constraint, help text, whether ``graphvae train`` has a named
    ``--flag`` for it, and whether ``--resume`` may change it."""
    return field(default=default, metadata={"constraint": constraint or Anything(), "help": help,
                                            "flag": flag, "resumable": resumable})


@dataclass(frozen=True)
class ObjectiveConfig:
    alpha: float = setting(0.1, Interval(0), "weight of the extra classifier term alpha log q(y|x) of each "
                                             "labelled example, scaled as alpha_scaling says")
    samples: int = setting(1, Interval(1), "S: importance samples of z ~ q(z|x) for the supervised term "
                                           "(and ELBO samples)")
    alpha_scaling: str = setting("dataset", OneOf(("dataset", "per_example", "labelled_fraction")),
                                 "what multiplies alpha: dataset N/N_labelled of the training set (Kingma 2014; "
                                 "Maaloe 2016), per_example 1 (probtorch), labelled_fraction B/B_labelled of the "
                                 "batch")


@dataclass(frozen=True)
class TrainConfig:
    data: str = setting("digits", OneOf(DATASETS, npz=True),
                        "the dataset: a bundled or IDX one by name, or your own arrays", flag=True)
    data_dir: str = setting("", Anything(), "folder holding the IDX files (else $GRAPHVAE_DATA, then "
                                            "~/.cache/graphvae/data)", flag=True, resumable=True)
    labels: int = setting(100, Interval(-1, text=(">= 0, or -1 for all", "a count of labelled examples, or -1 "
                                                  "for all")),
                          "labelled training examples, fixed by index and balanced per class (-1: all; an .npz "
                          "file's default: every label it gives)", flag=True)
    epochs: int = setting(20, Interval(1), "passes over the unlabelled training set", flag=True, resumable=True)
    batch_size: int = setting(100, Interval(1), "unlabelled examples per step; an epoch is one pass over the "
                                                "training set", flag=True)
    labelled_per_batch: int = setting(100, Interval(-1, text=(">= 0, or -1 for all", "a count, or -1 for all")),
                                      "labelled examples beside them in each step, cycling through the labelled "
                                      "subset (-1: all of it, every step)", flag=True)
    labelled_only: bool = setting(False, Anything(), "leave out the unlabelled examples: the labelled-only baseline "
                                                     "that graphvae baseline trains")
    optimizer: str = setting("adam", OneOf(("adam", "adamw", "sgd", "rmsprop")), "optimiser")
    lr: float = setting(3e-3, Interval(0, lower_open=True), "learning rate (of Adam, by default)", flag=True)
    weight_decay: float = setting(0.0, Interval(0), "optimiser weight decay")
    schedule: str = setting("constant", OneOf(("constant", "cosine", "step", "exponential", "decay")),
                            "learning rate over the run: cosine to 0 by the end, step x0.1 at 50 % and 75 % of the "
                            "steps, exponential to 1 % by the end (resuming with more epochs re-plans these), decay "
                            "x lr_decay every lr_decay_epochs epochs (Maaloe 2016)")
    lr_decay: float = setting(0.75, Interval(0, lower_open=True), "the factor of schedule = decay")
    lr_decay_epochs: int = setting(200, Interval(1), "epochs between the steps of schedule = decay")
    binarize: str = setting("dynamic", OneOf(("dynamic", "static", "threshold")),
                            "how grey levels become binary data: dynamic resamples each batch, static draws once, "
                            "threshold is x > 0.5",
                            flag=True)
    validation: float = setting(0.1, Interval(0, upper=1), "fraction of training data held out for model "
                                                           "selection")
    seed: int = setting(0, Interval(0), "seeds the data split, labelled subset, initialisation and noise", flag=True)
    threads: int = setting(1, Interval(0, note="(0: torch's own choice, every core)"),
                           "CPU threads torch computes with; one suits small models and holds up on a busy "
                           "machine", flag=True, resumable=True)
    device: str = setting("auto", Pattern(r"auto|cpu|mps|cuda(:\d+)?", "auto, cpu, mps, cuda or cuda:N"),
                          "the torch device (auto: CUDA when present, else the CPU)", flag=True, resumable=True)
    eval_samples: int = setting(100, Interval(1), "K of the IWAE bound in evaluation", resumable=True)
    grad_clip: float = setting(0.0, Interval(0, note="(0 disables)"), "max gradient norm")
    grad_clip_value: float = setting(0.0, Interval(0, note="(0 disables)"), "max absolute value of each gradient "
                                                                           "entry")
    selection: str = setting("error_se", OneOf(("error_se", "error", "elbo", "last")),
                             "the epoch best.pt keeps: error_se the latest whose validation error is within one "
                             "standard error of the lowest so far, error the lowest, elbo the highest validation "
                             "ELBO, last the final epoch")
    flush_denormal: bool = setting(True, Anything(), "torch.set_flush_denormal: keeps CPU throughput steady on "
                                                     "long runs")
    compile: bool = setting(False, Anything(), "wrap the training step's loss in torch.compile(fullgraph=True); "
                                              "the run first waits for the compiler (specs/digits_m2.gvae on 2 CPU "
                                              "cores: 62 s with empty caches, 36 s with warm ones), and a failure to "
                                              "compile stops it before anything is written",
                            flag=True, resumable=True)
    autocast: str = setting("none", OneOf(("none", "bf16")),
                            "bf16 computes the training step's loss under torch.autocast with bfloat16 (matrix "
                            "products in bfloat16, the loss and the optimiser in float32), on CUDA or on the CPU "
                            "(torch's CPU autocast: fast only where the CPU has bfloat16 units; on this project's "
                            "AMX CPU 60 steps of specs/mnist_m2.gvae took 3.5 s against 5.5 s, one thread); its "
                            "effect on the final error is not measured; validation and evaluation stay float32",
                            flag=True, resumable=True)
    sync_batchnorm: bool = setting(False, Anything(), "under torchrun, batch normalisation computes its statistics over "
                                                      "the global batch (torch.nn.SyncBatchNorm; CUDA only) rather "
                                                      "than over each process's share; no effect in one process",
                                   resumable=True)


@dataclass(frozen=True)
class Setting:
    """One row of the table."""

    name: str
    block: str  # "objective" | "train"
    type: type  # bool | int | float | str
    default: Any
    constraint: Constraint
    help: str
    flag: bool
    resumable: bool


def _rows(cls, block: str) -> dict[str, Setting]:
    hints = get_type_hints(cls)
    out = {}
    for f in fields(cls):
        assert f.default is not MISSING and "constraint" in f.metadata, f"{cls.__name__}.{f.name} needs setting()"
        m = f.metadata
        out[f.name] = Setting(f.name, block, hints[f.name], f.default, m["constraint"], m["help"], m["flag"],
                              m["resumable"])
    return out


SETTINGS: dict[str, dict[str, Setting]] = {"objective": _rows(ObjectiveConfig, "objective"),
                                           "train": _rows(TrainConfig, "train")}
def objective_setting(objective, name: str):
    """A setting of a spec's objective block as written, else its default."""
    return objective.get(name, SETTINGS["objective"][name].default)


FLAGS = tuple(name for name, row in SETTINGS["train"].items() if row.flag)  # train settings with a named --flag


# -- checking values ----------------------------------------------------------------------------
def literal_ok(kind: type, value) -> bool:
    """Whether a literal as written in a spec has the setting's type (an int is a fine float)."""
    if kind is bool:
        return isinstance(value, bool)
    if isinstance(value, bool):
        return False
    if kind is float:
        try:
            return isinstance(value, (int, float)) and math.isfinite(value)
        except OverflowError:  # an int beyond a float's range
            return False
    if kind is int:
        return isinstance(value, int) and -INT_LIMIT <= value < INT_LIMIT
    return isinstance(value, kind)


def type_text(kind: type, spec: bool) -> str:
    """The type in words: as a spec literal (``spec``) or as command-line text."""
    if spec:
        return {float: "a finite number", int: "an integer", bool: "true or false", str: "a word or a string"}[kind]
    return {float: "a number", int: "an integer", bool: "true or false", str: "a string"}[kind]


@dataclass(frozen=True)
class CrossRule:
    """A rule over several settings; the diagnostic points at the first of ``names`` a spec gives."""

    names: tuple[str, ...]
    problem: Callable[[Mapping[str, Any]], str | None]


def _labelled_only_needs_labels(v: Mapping[str, Any]) -> str | None:
    if v["labelled_only"] and v["labelled_per_batch"] == 0:
        return "labelled_only trains on labelled examples alone, so labelled_per_batch cannot be 0"
    return None


CROSS_RULES: dict[str, tuple[CrossRule, ...]] = {
    "objective": (),
    "train": (CrossRule(("labelled_per_batch", "labelled_only"), _labelled_only_needs_labels),),
}


def out_of_range(row: Setting, value) -> bool:
    """Whether ``value`` is an integer too large for the integer setting ``row``."""
    return (row.type is int and isinstance(value, int) and not isinstance(value, bool)
            and not -INT_LIMIT <= value < INT_LIMIT)


def value_problem(row: Setting, value) -> str | None:
    """Why a typed ``value`` is not valid for ``row`` (a number must be finite, an integer fit 64
    bits; then the constraint), in command-line words and without the name, or None."""
    if out_of_range(row, value):
        return f"must be {INT_TEXT}"
    if not literal_ok(row.type, value):
        return f"must be {type_text(row.type, spec=True)}"
    return None if row.constraint.check(value) else f"must be {row.constraint.words}"


def cross_problems(block: str, values: Mapping[str, Any]) -> list[tuple[CrossRule, str]]:
    """The cross rules of ``block`` that ``values`` break, each with its message; rules reading a
    setting ``values`` lacks are skipped."""
    out = []
    for rule in CROSS_RULES[block]:
        if all(n in values for n in rule.names):
            message = rule.problem(values)
            if message:
                out.append((rule, message))
    return out


def problems(block: str, values: Mapping[str, Any]) -> list[str]:
    """Every problem of typed ``values`` (name -> value) of ``block``, worded for a command-line
    error: each breach of a setting's constraint, then each cross rule broken among them."""
    rows, out = SETTINGS[block], []
    for name, value in values.items():
        problem = value_problem(rows[name], value)
        if problem:
            hint = did_you_mean(str(value), rows[name].constraint.choices) if rows[name].constraint.choices else None
            out.append(f"{name} {problem}, got {value!r}" + (f"; {hint}" if hint else ""))
    if not out:
        out += [message for _, message in cross_problems(block, values)]
    return out


# -- reading text (flags, --set, saved configs) ---------------------------------------------------
_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def coerce(row: Setting, value, origin: str):
    """``value`` (text from a flag, or a typed value from a spec or config.json) as ``row``'s type.
    Raises a one-line UserError naming ``origin`` and the setting."""
    kind = row.type
    bad = UserError(f"{origin}: {row.name} must be {type_text(kind, spec=False)}, got {value!r}")
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise bad
    if isinstance(value, bool):
        raise bad
    if kind is int:
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
    elif kind is float and isinstance(value, (int, float)):
        return float(value)
    elif kind is str and isinstance(value, (str, int, float)):
        return str(value)
    if isinstance(value, str) and kind in (int, float):
        try:
            return kind(value.strip())
        except ValueError:
            raise bad from None
    raise bad
