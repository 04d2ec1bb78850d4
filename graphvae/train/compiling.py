"""The training step's loss as the trainer calls it, and ``compile = true``: torch.compile of it,
tried on the run's batch shapes before anything is written, with a failure in one line."""

from __future__ import annotations

import copy
import re
import time

import torch

from graphvae.errors import UserError
from graphvae.train.checkpoint import capture_rng, restore_rng


class CompileFailed(UserError):
    """``compile = true`` and torch.compile could not compile the training loss."""




def call_loss(loss, model, batch, autocast: str = "none", device_type: str = "cpu"):
    """``(loss, terms)`` of ``batch`` (a graphvae.data.Batch): the model groups its rows by
    ``batch.layout`` and skips its batch checks (the data was checked once, when loaded), so
    nothing in the step reads a value on the host.  ``autocast = "bf16"`` computes it under
    ``torch.autocast(device_type, dtype=torch.bfloat16)`` and hands back the loss in float32;
    ``"none"`` calls the loss exactly as before."""
    values = dict(batch)  # a plain dict (torch.compile traces one without a guard on the subclass)
    model.check_inputs = False
    try:
        if autocast == "none":
            return loss(values, terms=True, layout=batch.layout)
        with torch.autocast(device_type, dtype=torch.bfloat16):
            out, terms = loss(values, terms=True, layout=batch.layout)
        return out.float(), terms
    finally:
        model.check_inputs = True


class undone:
    """A trial step leaves no trace: every RNG, the weights and buffers (batch-norm statistics)
    and the gradients are put back on leaving the block."""

    def __init__(self, model):
        self.model = model

    def __enter__(self):
        self.rng = capture_rng()
        self.saved = copy.deepcopy(self.model.state_dict())
        return self

    def __exit__(self, *exc):
        self.model.load_state_dict(self.saved)
        for p in self.model.parameters():
            p.grad = None
        restore_rng(self.rng)
        return False


def unused_parameters(model, loss, batch, autocast: str = "none", device=None) -> bool:
    """Whether a step of ``loss`` on ``batch`` (tried, and undone) leaves some trainable parameter
    without a gradient (DistributedDataParallel must then be told to look for them)."""
    device_type = device.type if device is not None else "cpu"
    with undone(model):
        out, _ = call_loss(loss, model, batch, autocast, device_type)
        out.backward()
        return any(p.requires_grad and p.grad is None for p in model.parameters())


def compile_failure(exc: BaseException) -> str:
    """The cause of a failed torch.compile in a few words, then the innermost message's first line."""
    chain, e = [], exc
    while e is not None and len(chain) < 8:
        chain.append(e)
        e = e.__cause__ or (None if e.__suppress_context__ else e.__context__)
    kinds = {type(e).__name__ for e in chain}
    text = " ".join(" ".join(str(e).split()) for e in chain)
    if "CppCompileError" in kinds or re.search(r"c\+\+ compiler|no such file.*(g\+\+|gcc|clang|cc\b)|"
                                             r"invalid compiler|compiler not found", text, re.I):
        cause = "no working C++ compiler"
    elif kinds & {"Unsupported", "UserError"} or "graph break" in text.lower():
        cause = "a graph break"
    elif re.search(r"not supported on|unsupported device|device type .* not supported|"
                   r"not supported for python", text, re.I):
        cause = "torch.compile does not support this device or Python"
    else:
        cause = type(exc).__name__
    messages = [m for m in (" ".join(str(e).split("\n")[0].split()) for e in chain) if m]
    detail = messages[-1] if messages else ""
    detail = detail[:110] + ("..." if len(detail) > 110 else "")
    return f"{cause}: {detail}" if detail else cause


def compile_error(exc: BaseException) -> CompileFailed:
    return CompileFailed(f"compile = true: torch.compile could not compile the training loss "
                         f"({compile_failure(exc)}); train with compile = false")


def is_compile_error(exc: BaseException) -> bool:
    """Whether ``exc`` came from torch.compile (dynamo or a backend), not from the model's own code."""
    try:
        from torch._dynamo.exc import TorchDynamoException
    except ImportError:  # pragma: no cover - torch without dynamo
        return False
    e = exc
    for _ in range(8):
        if e is None:
            return False
        if isinstance(e, TorchDynamoException) or type(e).__module__.startswith(("torch._dynamo", "torch._inductor")):
            return True
        e = e.__cause__
    return False


def compile_loss(model, batches, device, autocast: str = "none") -> tuple[object, float]:
    """``(torch.compile(model.loss, fullgraph=True), seconds)``, tried (forward and backward) on the
    next batch, and on an epoch's last batch when that is smaller (the shapes the run will see),
    before the run folder is touched; each is first run eagerly, so that the model's own caches
    are full before they are traced (else each change to them is a recompile), under the run's
    ``autocast``.  Every RNG, the weights and buffers (batch-norm statistics) and the gradients are
    put back afterwards, so the trial leaves no trace; the compiled graphs
    stay cached for the run.  A failure is one line (:class:`CompileFailed`)."""
    # one static graph per batch shape when the run has two (a full batch, a smaller last one): the
    # model is not traced with symbolic sizes; with several labelled patterns the runs' counts vary
    # from batch to batch, and torch's automatic dynamic shapes keep the graphs from multiplying
    compiled = torch.compile(model.loss, fullgraph=True, dynamic=None if batches.layouts_vary else False)
    trials = [batches.peek()]
    last = batches.peek(len(batches) - 1)
    if len(last[next(iter(last))]) != len(trials[0][next(iter(trials[0]))]):
        trials.append(last)
    t0 = time.perf_counter()
    with undone(model):
        try:
            for batch in trials:  # eagerly first: the model's own caches fill before they are traced
                call_loss(model.loss, model, batch, autocast, device.type)
            for batch in trials:
                loss, _ = call_loss(compiled, model, batch, autocast, device.type)
                loss.backward()
            if device.type == "cuda":  # the backward's kernels too, inside the trial and its timing
                torch.cuda.synchronize(device)
            elif device.type == "mps":
                torch.mps.synchronize()
        except UserError:
            raise
        except Exception as exc:  # a graph break, no C++ compiler, an unsupported device ...
            raise compile_error(exc) from None
    return compiled, time.perf_counter() - t0
