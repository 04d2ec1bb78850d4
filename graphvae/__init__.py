"""graphvae: compile declarative semi-supervised deep generative model specs to PyTorch.

Siddharth et al., "Learning Disentangled Representations with Semi-Supervised Deep
Generative Models", NIPS 2017.

``import graphvae`` stays light: torch is imported only when a compiled model is asked for.
"""

from __future__ import annotations

__version__ = "0.1.0"

_LAZY = {
    "load_spec": ("graphvae.spec.loader", "load_spec"),
    "check_file": ("graphvae.spec.loader", "check_file"),
    "Spec": ("graphvae.spec.ir", "Spec"),
    "SpecError": ("graphvae.spec.diagnostics", "SpecError"),
    "UserError": ("graphvae.errors", "UserError"),
    "check_text": ("graphvae.spec.loader", "check_text"),
    "compile_spec": ("graphvae.compile.compiler", "compile_spec"),
    "register_family": ("graphvae.compile.distributions", "register"),
    # data: the arrays a spec trains on, its splits and labelled subset, and batches of them
    "prepare_data": ("graphvae.data", "prepare_data"),
    "SemiSupervisedBatches": ("graphvae.data", "SemiSupervisedBatches"),
    # trained runs: the model of a run folder, and its outputs as numpy arrays
    "load_run": ("graphvae.train.runs", "load_run"),
    "Run": ("graphvae.train.runs", "Run"),
    "predict": ("graphvae.train.runs", "predict"),
    "encode": ("graphvae.train.runs", "encode"),
    "reconstruct": ("graphvae.train.runs", "reconstruct"),
    "sample": ("graphvae.train.runs", "sample"),
    "write_arrays": ("graphvae.train.arrays", "write_arrays"),
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'graphvae' has no attribute {name!r}")
