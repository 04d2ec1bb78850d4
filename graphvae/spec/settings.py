"""Settings of the objective and train blocks: names, types and defaults, without torch.

These dataclasses are the schema that validation checks a spec's ``objective``
and ``train`` blocks against, and the resolved configuration the compiler and
trainer use.  A spec's train block gives defaults; command-line flags override them.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import get_type_hints


@dataclass(frozen=True)
class ObjectiveConfig:
    alpha: float = 0.1  # weight of the extra classifier term (1+alpha) log q(y|x) on labelled examples
    samples: int = 1  # S: importance samples of z ~ q(z|x) for the supervised term (and ELBO samples)
    alpha_scaling: str = "per_example"  # "per_example" (probtorch) or "labelled_fraction": alpha*N/N_labelled (Kingma 2014; Maaloe 2016)


@dataclass(frozen=True)
class TrainConfig:
    data: str = "digits"  # dataset: digits | mnist | fashion-mnist | kmnist | path/to/file.npz
    data_dir: str = ""  # where IDX files live; empty: --data-dir, then $GRAPHVAE_DATA, then the default folder
    labels: int = 100  # labelled training examples, fixed by index and balanced per class; -1 for all
    epochs: int = 20  # passes over the unlabelled training set
    batch_size: int = 100  # examples per step, labelled and unlabelled together
    labelled_per_batch: int = 10  # of which drawn from the fixed labelled subset
    optimizer: str = "adam"  # adam | adamw | sgd | rmsprop
    lr: float = 1e-3  # learning rate
    weight_decay: float = 0.0  # optimiser weight decay
    schedule: str = "constant"  # learning-rate schedule: constant | cosine | step | exponential (graphvae.train.lr_factor)
    binarize: str = "dynamic"  # grey levels for binary variables: dynamic (resample each batch) | static | threshold
    validation: float = 0.1  # fraction of training data held out for model selection
    seed: int = 0  # seeds data split, labelled subset, init and noise
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    eval_samples: int = 100  # K of the IWAE bound in evaluation
    grad_clip: float = 0.0  # max gradient norm; 0 disables
    flush_denormal: bool = True  # torch.set_flush_denormal: keeps CPU throughput steady on long runs


def schema(cls) -> dict[str, type]:
    """Field name -> type of a config dataclass."""
    hints = get_type_hints(cls)
    return {f.name: hints[f.name] for f in fields(cls)}
