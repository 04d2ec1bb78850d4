"""From training arrays to batches: validation split, binarizing, batches (the labelled subset is
:mod:`graphvae.data.labels`').

Arrays are dicts ``variable name -> np.ndarray`` with examples first (see :mod:`graphvae.data`).
Seeds: one run seed drives the validation split and the labelled subset through independent
numpy streams; batches draw from a torch.Generator (one seed per epoch; the permutations and the
per-step binarization noise derive from it, so a saved ``state_dict`` resumes exactly).
"""

from __future__ import annotations


import numpy as np
import torch

from graphvae.errors import UserError
from graphvae.spec.ir import Spec, Variable
from graphvae.spec.settings import SETTINGS, problems

BINARIZE_MODES = SETTINGS["train"]["binarize"].constraint.choices
STATIC_BINARIZE_SEED = 0
VALIDATION_STREAM, LABELLED_STREAM = 1, 2  # independent random streams drawn from one run seed (stream_rng)


def count_examples(arrays: dict[str, np.ndarray]) -> int:
    return len(next(iter(arrays.values()))) if arrays else 0


def take_examples(arrays: dict[str, np.ndarray], idx: np.ndarray) -> dict[str, np.ndarray]:
    return {k: a[idx] for k, a in arrays.items()}


def stream_rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng([int(seed) & 0xFFFFFFFFFFFFFFFF, stream])


def check_settings(**values) -> None:
    """The train settings' table (graphvae.spec.settings) checks batch settings given from Python too."""
    found = problems("train", values)
    if found:
        raise UserError(found[0])


def split_validation(arrays: dict[str, np.ndarray], fraction: float, seed: int):
    """``(train, val)``: a seeded random ``fraction`` of the examples held out; both keep data order."""
    check_settings(validation=fraction)
    n = count_examples(arrays)
    n_val = int(round(fraction * n))
    if n - n_val < 1:
        raise UserError(f"holding out {n_val} of {n} examples for validation leaves none to train on")
    perm = stream_rng(seed, VALIDATION_STREAM).permutation(n)
    return take_examples(arrays, np.sort(perm[n_val:])), take_examples(arrays, np.sort(perm[:n_val]))


def binarize(x: torch.Tensor, mode: str = "dynamic", generator: torch.Generator | None = None) -> torch.Tensor:
    """Grey levels in [0, 1] -> {0., 1.}.  ``dynamic``: a Bernoulli draw from ``generator`` (call it
    per batch); ``static``: the same draw with the fixed seed STATIC_BINARIZE_SEED when no generator
    is given (apply it once to a whole array); ``threshold``: x > 0.5."""
    check_settings(binarize=mode)
    if mode == "threshold":
        return (x > 0.5).to(x.dtype)
    if mode == "static" and generator is None:
        generator = torch.Generator(device=x.device).manual_seed(STATIC_BINARIZE_SEED)
    return torch.bernoulli(x, generator=generator)


def _binary_names(arrays: dict[str, np.ndarray], spec: Spec) -> list[str]:
    return [v.name for v in spec.observed if v.domain == "binary" and v.name in arrays]


def binarize_arrays(arrays: dict[str, np.ndarray], spec: Spec, mode: str,
                    seed: int = STATIC_BINARIZE_SEED) -> dict[str, np.ndarray]:
    """Apply ``static`` (one seeded draw) or ``threshold`` to the binary observed arrays, once.
    ``dynamic`` returns the arrays unchanged (batches draw per step)."""
    check_settings(binarize=mode)
    out = dict(arrays)
    for i, name in enumerate(_binary_names(arrays, spec)):
        if mode == "threshold":
            out[name] = (arrays[name] > 0.5).astype(np.float32)
        elif mode == "static":
            noise = stream_rng(seed, 100 + i).random(arrays[name].shape, dtype=np.float32)
            out[name] = (noise < arrays[name]).astype(np.float32)
    return out


def mean_values(arrays: dict[str, np.ndarray], spec: Spec, mode: str, names) -> dict[str, np.ndarray]:
    """The per-element mean over the examples of each variable in ``names``, as training sees it:
    a binary variable's expected value under ``mode`` (a draw's, dynamic or static, is its grey
    level's; ``threshold``'s is the thresholded one's), float64."""
    binary = set(_binary_names(arrays, spec))
    out = {}
    for name in names:
        a = arrays[name]
        if name in binary and mode == "threshold":
            out[name] = (a > 0.5).mean(axis=0, dtype=np.float64)
        else:
            out[name] = a.mean(axis=0, dtype=np.float64)
    return out


def evaluation_arrays(arrays: dict[str, np.ndarray], spec: Spec, mode: str) -> dict[str, np.ndarray]:
    """Validation/test arrays binarized once and for all (a fixed static draw when training is dynamic)."""
    return binarize_arrays(arrays, spec, "static" if mode == "dynamic" else mode)


def to_batch(arrays: dict[str, np.ndarray], idx, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """The examples ``idx`` as the model's batch (keys starting with '_' are left out)."""
    idx = np.asarray(idx, dtype=np.int64)
    return {k: torch.from_numpy(np.ascontiguousarray(a[idx])).to(device)
            for k, a in arrays.items() if not k.startswith("_")}


def hide_labels(batch: dict[str, torch.Tensor], spec: Spec) -> dict[str, torch.Tensor]:
    """A copy of ``batch`` with every supervised value missing (``Variable.missing``: -1 or NaN)."""
    out = dict(batch)
    for v in spec.supervised:
        if v.name in out:
            out[v.name] = torch.full_like(out[v.name], v.missing)
    return out


class Batch(dict):
    """One training batch: a dict ``variable name -> tensor`` in the model's format that also says
    which rows carry which labels.  ``layout`` is a tuple of runs ``(frozenset of the supervised
    variables labelled in these rows, row count)``, contiguous and in row order, covering the batch,
    e.g. ``((frozenset({"y"}), 100), (frozenset(), 100))``: the model takes it as
    ``model.loss(batch, terms=True, layout=batch.layout)`` and groups the rows without reading the
    labels (no wait for the device).  A plain ``dict(batch)`` drops it."""

    __slots__ = ("layout",)

    def __init__(self, values=(), layout=()):
        super().__init__(values)
        self.layout = tuple(layout)

    def __repr__(self) -> str:
        return f"Batch({dict.__repr__(self)}, layout={self.layout!r})"


DEVICE_SHARE = 0.5  # the training arrays go onto an accelerator when they take under this share of its free memory


def fits_on_device(nbytes: int, free: int | None) -> bool:
    """Whether training arrays of ``nbytes`` should live on a device with ``free`` bytes free
    (None: unknown, then they stay on the host): under ``DEVICE_SHARE`` of it."""
    return free is not None and nbytes < DEVICE_SHARE * free


def free_device_bytes(device: torch.device) -> int | None:
    """Free memory of an accelerator in bytes (CUDA: ``mem_get_info``; MPS: what its recommended
    working set leaves), or None when torch cannot say (then the data stays on the host)."""
    try:
        if device.type == "cuda":
            return int(torch.cuda.mem_get_info(device)[0])
        if device.type == "mps":
            return int(torch.mps.recommended_max_memory() - torch.mps.driver_allocated_memory())
    except (AttributeError, RuntimeError):
        return None
    return None


def labelled_rows(values: torch.Tensor, domain: str) -> torch.Tensor:
    """Per row of a supervised variable's values, whether its label is given: a categorical one
    when every entry is >= 0, a continuous one when no entry is NaN (as the model reads them)."""
    flat = values.reshape(len(values), -1)
    return (flat >= 0).all(1) if domain == "categorical" else ~torch.isnan(flat).any(1)


def _runs(patterns) -> tuple:
    """Run-length ``((pattern, count), ...)`` of a sequence of patterns, zero counts left out."""
    out: list[list] = []
    for pattern, count in patterns:
        if not count:
            continue
        if out and out[-1][0] == pattern:
            out[-1][1] += count
        else:
            out.append([pattern, count])
    return tuple((p, int(n)) for p, n in out)


class SemiSupervisedBatches:
    """Steps of ``batch_size`` unlabelled examples with ``labelled_per_batch`` labelled ones beside them.

    One epoch is one pass over every training example as unlabelled (labels hidden), in a
    seeded order; the labelled examples (with their labels) come first in each batch and cycle
    through seeded permutations of the labelled subset (``labelled_per_batch = -1``: all of it,
    every step).  ``labelled_only`` leaves the unlabelled examples out and keeps the steps (the
    labelled-only baseline).  Iterating yields the rest of the current epoch (:class:`Batch`
    dicts of tensors in the model's format, with their ``layout``), then advances ``epoch``.
    ``state_dict()`` after a batch describes exactly the batches that follow.  The batcher owns
    ``generator`` (a CPU torch.Generator); each epoch draws one seed from it.

    Labelled patterns: each labelled example's set of given labels (with several supervised
    variables an example may give some and not others) is worked out once; within a batch the
    labelled rows are ordered by pattern (stable within one), so that each pattern is one run
    of ``layout``.  The examples and their binarization noise are those of the seeded order;
    only their rows move.

    ``device``: on the CPU the arrays stay where they are.  On an accelerator they are moved
    there once when they fit (:func:`fits_on_device`), and each step moves only its row
    indices; otherwise each batch is gathered on the host and copied (from pinned memory on
    CUDA).  Dynamic binarization then draws on the device, from a generator on it seeded per
    step (so the draws differ from the CPU's, and resume stays exact).

    ``world`` processes (``torchrun``; this one is ``rank``): the batch sizes are the global
    batch's, and each process takes its share, ``batch_size / world`` unlabelled and
    ``labelled_per_batch / world`` labelled rows (both must divide).  As ``DistributedSampler``
    does, the epoch's seeded order of the examples (the same in every process) is padded with its
    own first examples to a multiple of ``world`` and dealt out, example ``i`` to rank
    ``i % world``, so each rank's shard is disjoint from the others' and as long; the
    processes' step ``k`` together hold the examples of a single process's step ``k`` (padding
    aside, in the last one).  The labelled picks of a step are dealt out the same way.  The
    attributes ``unlabelled_per_batch`` and ``labelled_per_batch`` stay the global counts."""

    def __init__(self, arrays: dict[str, np.ndarray], spec: Spec, labelled, *, batch_size: int = 100,
                 labelled_per_batch: int = 100, binarize: str = "dynamic", labelled_only: bool = False,
                 generator: torch.Generator | None = None, device: str | torch.device = "cpu",
                 rank: int = 0, world: int = 1):
        check_settings(batch_size=batch_size, labelled_per_batch=labelled_per_batch, binarize=binarize,
                        labelled_only=labelled_only)
        if not 0 <= rank < world:
            raise UserError(f"rank {rank} is not one of the {world} processes")
        n = count_examples(arrays)
        if n == 0:
            raise UserError("no training examples")
        labelled = np.asarray(labelled, dtype=np.int64).ravel()
        if len(labelled) and (labelled.min() < 0 or labelled.max() >= n):
            raise UserError(f"labelled indices must lie in 0..{n - 1}")
        prepared = binarize_arrays(arrays, spec, binarize)
        full = {k: torch.from_numpy(np.ascontiguousarray(a)) for k, a in prepared.items() if not k.startswith("_")}
        supervised = [v for v in spec.supervised if v.name in full]
        if labelled_only and not (supervised and len(labelled)):
            raise UserError("labelled_only needs labelled examples, and the run has none")
        self._dynamic = _binary_names(full, spec) if binarize == "dynamic" else []
        self._labelled = {k: t[torch.from_numpy(labelled)] for k, t in full.items()}
        self._unlabelled = hide_labels(full, spec)
        self.n_examples, self.n_labelled = n, len(labelled)
        wanted = len(labelled) if labelled_per_batch == -1 else labelled_per_batch
        self.labelled_per_batch = wanted if (supervised and len(labelled)) else 0
        self.unlabelled_per_batch = 0 if labelled_only else batch_size
        self.rank, self.world = rank, world
        _check_shares(batch_size, self.labelled_per_batch, labelled_per_batch, world)
        self._shard = -(-n // world)  # examples per rank and epoch, the padding included
        self._batch_size = batch_size // world  # this rank's unlabelled rows per step (before labelled_only)
        self.steps = -(-self._shard // self._batch_size)  # = ceil(n / batch_size) for one process
        self.generator = generator if generator is not None else torch.Generator().manual_seed(0)
        self._patterns, self._rank = self._labelled_patterns(supervised)
        self.layouts_vary = self._rank is not None  # several labelled patterns: runs' counts differ per batch
        self.device = torch.device(device)
        self.on_device = False  # whether the arrays live on the (non-CPU) device
        self._device_generator: torch.Generator | None = None
        if self.device.type != "cpu":
            nbytes = sum(t.numel() * t.element_size() for t in {id(t): t for t in
                                                               [*self._labelled.values(), *self._unlabelled.values()]}
                         .values())
            if fits_on_device(nbytes, free_device_bytes(self.device)):
                self._labelled = {k: t.to(self.device) for k, t in self._labelled.items()}
                self._unlabelled = {k: t.to(self.device) for k, t in self._unlabelled.items()}
                self.on_device = True
        self.epoch, self.step, self._epoch_seed = 0, 0, -1

    def _labelled_patterns(self, supervised: list[Variable]):
        """``(patterns, rank)``: the labelled examples' distinct patterns (frozensets of the supervised
        variables they give), ordered by their bits in spec order with the empty pattern last (beside
        the unlabelled rows), and each labelled example's index into them (None when one pattern)."""
        if not (supervised and self.n_labelled):
            return [frozenset()], None
        code = torch.zeros(self.n_labelled, dtype=torch.long)
        for i, v in enumerate(supervised):
            code += labelled_rows(self._labelled[v.name], v.domain).long() << i
        present = sorted(set(code.tolist()), key=lambda c: (c == 0, c))
        patterns = [frozenset(v.name for i, v in enumerate(supervised) if c >> i & 1) for c in present]
        if len(present) == 1:
            return patterns, None
        where = {c: r for r, c in enumerate(present)}
        return patterns, torch.tensor([where[c] for c in code.tolist()], dtype=torch.long)

    def __len__(self) -> int:
        return self.steps

    def _plan(self, seed: int):
        g = torch.Generator().manual_seed(seed)
        order = torch.randperm(self.n_examples, generator=g)
        if self.world > 1:  # padded with its own head to world * shard, then dealt out
            pad = self._shard * self.world - self.n_examples
            order = torch.cat([order, order[:pad]])[self.rank::self.world]
        need = self.steps * self.labelled_per_batch
        rounds = -(-need // self.n_labelled) if need else 0
        stream = torch.cat([torch.randperm(self.n_labelled, generator=g) for _ in range(rounds)] or
                           [torch.zeros(0, dtype=torch.long)])
        return order, stream, torch.randint(0, 2**62, (self.steps,), generator=g)

    def _order_picks(self, picks: torch.Tensor):
        """``(perm, runs)``: the stable order of the labelled ``picks`` that makes each pattern one
        run (None when they share one), and the labelled runs ``((pattern, count), ...)``."""
        if self._rank is None:
            return None, ((self._patterns[0], len(picks)),)
        rank = self._rank[picks]
        perm = torch.sort(rank, stable=True).indices
        counts = torch.bincount(rank, minlength=len(self._patterns)).tolist()
        return perm, tuple(zip(self._patterns, counts))

    def _binarize(self, batch: dict[str, torch.Tensor], seed: int) -> None:
        if not self._dynamic:
            return
        if self.device.type == "cpu":
            g = torch.Generator().manual_seed(seed)
        else:  # a generator on the device, re-seeded per step: no host draws, and resume stays exact
            if self._device_generator is None:
                self._device_generator = torch.Generator(device=self.device)
            g = self._device_generator.manual_seed(seed)
        for k in self._dynamic:
            batch[k] = torch.bernoulli(batch[k], generator=g)

    def _copy_in(self, t: torch.Tensor) -> torch.Tensor:
        """A host tensor onto the device, through pinned memory on CUDA (the copy then overlaps)."""
        if self.device.type == "cuda":
            return t.pin_memory().to(self.device, non_blocking=True)
        return t.to(self.device)

    def _batch(self, plan, step: int) -> Batch:
        order, stream, seeds = plan
        u, l = self.unlabelled_per_batch, self.labelled_per_batch
        rows = order[step * self._batch_size:(step + 1) * self._batch_size][:u]
        picks = stream[step * l:(step + 1) * l][self.rank::self.world]
        perm, runs = self._order_picks(picks) if l else (None, ())
        layout = _runs((*runs, (frozenset(), len(rows))))
        if self.on_device:  # only the row indices travel (a small copy: pinning it would cost more)
            idx = torch.cat([picks, rows]).to(self.device)
            picks, rows = idx[:len(picks)], idx[len(picks):]
        batch = {k: torch.cat([self._labelled[k][picks], t[rows]]) if l and u else
                 (self._labelled[k][picks] if l else t[rows]) for k, t in self._unlabelled.items()}
        if self.device.type != "cpu" and not self.on_device:
            batch = {k: self._copy_in(t) for k, t in batch.items()}
        self._binarize(batch, int(seeds[step]) if self.rank == 0 else _rank_noise_seed(int(seeds[step]), self.rank))
        if perm is not None:  # each pattern's rows together, the same examples with the same noise
            whole = torch.cat([perm, torch.arange(len(perm), len(perm) + len(rows))])
            if self.device.type != "cpu":
                whole = whole.to(self.device)
            batch = {k: t[whole] for k, t in batch.items()}
        return Batch(batch, layout)

    def peek(self, step: int | None = None) -> Batch:
        """The batch that iterating would yield next (or this epoch's batch ``step``), leaving every
        state as it was, the generator included: for trying the step before training
        (``compile = true``)."""
        seed = self._epoch_seed
        if seed < 0:
            saved = self.generator.get_state()
            seed = int(torch.randint(0, 2**62, (1,), generator=self.generator))
            self.generator.set_state(saved)
        return self._batch(self._plan(seed), self.step if step is None else step)

    def __iter__(self):
        if self._epoch_seed < 0:
            self._epoch_seed = int(torch.randint(0, 2**62, (1,), generator=self.generator))
        plan, epoch = self._plan(self._epoch_seed), self.epoch
        for step in range(self.step, self.steps):
            batch = self._batch(plan, step)
            if step + 1 == self.steps:
                self.epoch, self.step, self._epoch_seed = epoch + 1, 0, -1
            else:
                self.step = step + 1
            yield batch

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "step": self.step, "epoch_seed": self._epoch_seed,
                "generator": self.generator.get_state(), "steps": self.steps, "n_examples": self.n_examples}

    def load_state_dict(self, state: dict, reshard: bool = False) -> None:
        """Continue at ``state``'s position.  ``reshard``: the state was saved with another number
        of processes, whose epoch may have had a step more or less; the step is kept (the global
        batches are the same) and clamped to this epoch's last."""
        if state.get("n_examples") != self.n_examples or (state.get("steps") != self.steps and not reshard):
            raise UserError(f"the saved batch position is for {state.get('n_examples')} examples in "
                            f"{state.get('steps')} steps per epoch; this data has {self.n_examples} in "
                            f"{self.steps}: the data or batch settings changed")
        self.epoch, self.step, self._epoch_seed = int(state["epoch"]), int(state["step"]), int(state["epoch_seed"])
        self.step = min(self.step, self.steps - 1)
        self.generator.set_state(state["generator"])


def _check_shares(batch_size: int, labelled: int, setting: int, world: int) -> None:
    """Each of ``world`` processes takes an equal share of the global batch (so that the mean of
    their losses is the global batch's mean): both counts must divide by ``world``."""
    if world == 1:
        return
    if batch_size % world:
        raise UserError(f"batch_size {batch_size} does not split over {world} processes: the global batch must be "
                        f"a multiple of the number of processes (e.g. {batch_size - batch_size % world or world})")
    if labelled % world:
        what = (f"labelled_per_batch = -1 puts all {labelled} labelled examples in every step, which"
                if setting == -1 else f"labelled_per_batch {labelled}")
        raise UserError(f"{what} do{'' if setting == -1 else 'es'} not split over {world} processes: set "
                        f"labelled_per_batch to a multiple of {world}")


def _rank_noise_seed(seed: int, rank: int) -> int:
    """Rank ``rank``'s binarization seed for a step whose seed is ``seed`` (rank 0 keeps ``seed``),
    so that processes do not share their noise."""
    return (seed ^ (0x9E3779B97F4A7C15 * rank)) % 2**63
