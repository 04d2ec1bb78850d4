"""Training on several processes: ``torch.distributed`` as ``torchrun`` launches it.

``torchrun --nproc_per_node N -m graphvae train SPEC ...`` (or ``graphvae train --nproc N``,
which runs that command) starts N copies of the trainer.  torchrun tells each its place in
environment variables (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``);
:func:`from_env` reads them into a :class:`World`.  The trainer then:

* joins the process group (:func:`start`): gloo on the CPU, NCCL on CUDA, each process on
  ``cuda:LOCAL_RANK``;
* wraps the step's loss in ``DistributedDataParallel`` (:func:`wrap`), which averages the
  gradients over the processes during ``backward``; every process takes the same optimiser
  step, so the weights stay identical;
* shards the batches (``graphvae.data.SemiSupervisedBatches(rank=, world=)``): each process takes
  ``1/N`` of every global batch, so the batch the config names is the global one;
* lets only rank 0 write: the run folder, ``metrics.jsonl``, checkpoints, TensorBoard, the
  progress bar, validation.  What rank 0 decides (an error, the end of an epoch) reaches the
  others through :func:`broadcast`; every process raises the same error, and only rank 0 prints
  it (:class:`AgreedError`).

Without torchrun the World is :data:`SINGLE`, and none of this happens.
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass
from datetime import timedelta

import torch

from graphvae.errors import UserError

TIMEOUT = timedelta(minutes=30)  # how long a process waits for the others at a collective


@dataclass(frozen=True)
class World:
    """This process's place among the training processes."""

    rank: int = 0  # 0 .. size - 1; rank 0 writes the run folder
    size: int = 1  # processes in all (the world size)
    local_rank: int = 0  # the process's index on its machine: its GPU
    distributed: bool = False  # launched by torchrun: a process group joins the processes

    @property
    def writes(self) -> bool:
        """Whether this process writes the run folder (rank 0)."""
        return self.rank == 0

    def describe(self) -> str:
        return f"{self.size} process{'es' if self.size != 1 else ''} (torch.distributed)" if self.distributed else ""


SINGLE = World()


class AgreedError(UserError):
    """An error every process raises together (rank 0's, or the first failing rank's): the
    CLI prints it once, from rank 0 (``silent`` on the others)."""

    def __init__(self, message: str, silent: bool = False):
        super().__init__(message)
        self.silent = silent


def _env_int(environ, name: str) -> int:
    value = environ.get(name, "")
    try:
        out = int(value)
    except ValueError:
        raise UserError(f"${name} is {value!r}, not a whole number (torchrun sets it)") from None
    if out < 0:
        raise UserError(f"${name} is {out}; it must be >= 0")
    return out


def launched(environ=None) -> bool:
    """Whether this process was started by torchrun (or ``--nproc``): ``RANK`` and ``WORLD_SIZE`` are set."""
    environ = os.environ if environ is None else environ
    return "RANK" in environ and "WORLD_SIZE" in environ


def from_env(environ=None) -> World:
    """The World torchrun describes in ``environ`` (default ``os.environ``); :data:`SINGLE`
    when ``RANK`` or ``WORLD_SIZE`` is not set."""
    environ = os.environ if environ is None else environ
    if not launched(environ):
        return SINGLE
    rank, size = _env_int(environ, "RANK"), _env_int(environ, "WORLD_SIZE")
    local = _env_int(environ, "LOCAL_RANK") if "LOCAL_RANK" in environ else rank
    if size < 1 or rank >= size:
        raise UserError(f"$RANK {rank} and $WORLD_SIZE {size} do not fit (0 <= RANK < WORLD_SIZE)")
    return World(rank, size, local, True)


def pick_device(world: World, name: str) -> torch.device:
    """The device of this process: under torchrun ``cuda`` (or ``auto`` with CUDA) is
    ``cuda:LOCAL_RANK``; ``cpu`` is the CPU; one named GPU or mps is refused with one line."""
    from graphvae.train.device import pick_device as single

    if not world.distributed:
        return single(name)
    if name.startswith("cuda:") and world.size > 1:
        raise UserError(f"device {name}: under torchrun each process takes the GPU of its LOCAL_RANK; "
                        "use --device cuda (or auto), and CUDA_VISIBLE_DEVICES to choose the GPUs")
    if name == "mps":
        raise UserError("device mps: torch.distributed has no backend for Apple GPUs; use --device cpu")
    device = single("cuda" if name.startswith("cuda") else name)
    if device.type == "cuda":
        if world.local_rank >= torch.cuda.device_count():
            raise UserError(f"LOCAL_RANK {world.local_rank} has no GPU: this machine has "
                            f"{torch.cuda.device_count()}; start at most that many processes per node")
        device = torch.device("cuda", world.local_rank)
        torch.cuda.set_device(device)
    return device


def backend() -> str:
    """gloo between CPU processes; where CUDA is present, NCCL for CUDA tensors beside it
    (gloo still carries the small host-side messages: rank 0's run, errors, RNG states)."""
    return "cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo"


def start(world: World) -> None:
    """Join the process group (once; a no-op for a single process or when already joined)."""
    import torch.distributed as dist

    if not world.distributed or dist.is_initialized():
        return
    if not dist.is_available():
        raise UserError("this torch build has no torch.distributed; train without torchrun")
    try:
        dist.init_process_group(backend(), rank=world.rank, world_size=world.size, timeout=TIMEOUT)
    except (RuntimeError, ValueError) as exc:
        raise UserError(f"could not join the {world.size} training processes "
                        f"({str(exc).splitlines()[0][:160] if str(exc) else type(exc).__name__})") from None


def finish(world: World) -> None:
    """The clean end of a training: wait for every process (a barrier), so that none leaves the
    group while another still talks to it.  Not on an error's way out, where a process may be
    inside another collective; there the agreed error (:func:`agree`) has already met them all."""
    import torch.distributed as dist

    if world.distributed and dist.is_initialized():
        dist.barrier()


def stop(world: World) -> None:
    """Leave the process group: first free what still holds it (the step's DDP wrapper and its
    reducer sit in reference cycles), so that nothing of the group is torn down later, during
    the interpreter's exit, which can abort the process (``terminate called without an active
    exception``)."""
    import torch.distributed as dist

    if world.distributed and dist.is_initialized():
        gc.collect()
        dist.destroy_process_group()


def exit_worker(code: int) -> None:
    """End a torchrun worker process with ``code`` at once, once its output is flushed: its
    work is done and saved, and what an ordinary exit would still run (C++ destructors of
    torch.distributed's threads, the interpreter's teardown) can only abort it."""
    import sys

    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more to say
            pass
    os._exit(code)


def broadcast(world: World, value=None):
    """Rank 0's ``value`` on every process (any picklable object)."""
    if not world.distributed:
        return value
    import torch.distributed as dist

    box = [value if world.writes else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather(world: World, value) -> list:
    """Every process's ``value``, in rank order, on every process."""
    if not world.distributed:
        return [value]
    import torch.distributed as dist

    out: list = [None] * world.size
    dist.all_gather_object(out, value)
    return out


def gather_tensor(world: World, t: torch.Tensor) -> torch.Tensor:
    """``(world.size, *t.shape)``: every process's ``t`` stacked in rank order (on ``t``'s device)."""
    if not world.distributed:
        return t.unsqueeze(0)
    import torch.distributed as dist

    parts = [torch.empty_like(t) for _ in range(world.size)]
    dist.all_gather(parts, t.contiguous())
    return torch.stack(parts)


def _raise_agreed(world: World, failures: list, own: UserError | None) -> None:
    """Raise on every process when any failed: a failing process raises its own error, the others
    the first failure's message; only rank 0's is printed (the others are ``silent``)."""
    first = next((f for f in failures if f is not None), None)
    if first is None:
        return
    if own is not None:
        if not world.writes:
            raise AgreedError(str(own), silent=True) from None
        raise own
    raise AgreedError(first, silent=not world.writes)


def agree(world: World, fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` on every process; when it raises a UserError on any of them, every
    process raises (:func:`_raise_agreed`), so that none is left waiting at a collective the
    others never reach."""
    if not world.distributed:
        return fn(*args, **kwargs)
    out, own = None, None
    try:
        out = fn(*args, **kwargs)
    except UserError as exc:
        own = exc
    _raise_agreed(world, gather(world, None if own is None else str(own)), own)
    return out


def on_rank0(world: World, fn, *args, **kwargs):
    """``fn(*args, **kwargs)`` on rank 0 only, its result (or its UserError) on every process."""
    if not world.distributed:
        return fn(*args, **kwargs)
    value, own = None, None
    if world.writes:
        try:
            value = fn(*args, **kwargs)
        except UserError as exc:
            own = exc
    value, failure = broadcast(world, (value, None if own is None else str(own)))
    _raise_agreed(world, [failure], own)
    return value


def rank_seed(seed: int, rank: int) -> int:
    """The noise seed of rank ``rank`` > 0 (rank 0 keeps the run's own stream): distinct per rank."""
    return (int(seed) * 1_000_003 + 7_919 * rank) % 2**63


# -- DistributedDataParallel around the step's loss -------------------------------------------------
class _Loss(torch.nn.Module):
    """The step's loss as a module DDP can wrap: ``forward(values, layout)`` is
    ``loss(values, terms=True, layout=layout)`` of the model it holds (its parameters are DDP's)."""

    def __init__(self, model: torch.nn.Module, loss):
        super().__init__()
        self.model = model
        self.loss = loss

    def forward(self, values, layout):
        return self.loss(values, terms=True, layout=layout)


def wrap(world: World, model: torch.nn.Module, loss, find_unused: bool):
    """The step's loss function under DDP: called as ``fn(values, terms=True, layout=...)``, like
    ``model.loss``.  ``find_unused``: some parameters may get no gradient in a step (DDP then
    looks for them after each forward)."""
    from torch.nn.parallel import DistributedDataParallel

    ddp = DistributedDataParallel(_Loss(model, loss), device_ids=None, find_unused_parameters=find_unused)

    def step_loss(values, terms=True, layout=None):
        assert terms, "the trainer's step asks for the logged terms"
        return ddp(values, layout)

    step_loss.ddp = ddp  # type: ignore[attr-defined]
    return step_loss


def has_batchnorm(model: torch.nn.Module) -> bool:
    return any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())


def sync_batchnorm(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """``model`` with its batch normalisation synchronised across processes (torch's
    SyncBatchNorm: statistics over the global batch), or a one-line error off CUDA, where torch
    has no SyncBatchNorm."""
    if not has_batchnorm(model):
        return model
    if device.type != "cuda":
        raise UserError("sync_batchnorm = true: torch's SyncBatchNorm runs on GPUs only, and this run is on the "
                        f"{device.type}; train with sync_batchnorm = false (each process then normalises with its "
                        "own share of the batch)")
    return torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
