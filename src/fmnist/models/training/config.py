"""The settings of one training run (`TrainConfig`), what it returns, and the device choice."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from fmnist.errors import ConfigError, FmnistError
from fmnist.models.training.inference import TTA_MODES
from fmnist.models.training.optim import OPTIMIZERS, SCHEDULES


def pick_device(name: str = "auto") -> torch.device:
    """`auto` = CUDA → MPS → CPU; an explicit device that is absent is a user error."""
    name = (name or "auto").lower()
    cuda, mps = torch.cuda.is_available(), torch.backends.mps.is_available()
    if name == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if name.startswith("cuda") and not cuda:
        raise FmnistError("device 'cuda' was asked for but no CUDA GPU is visible; use --device "
                          "auto or cpu")
    if name == "mps" and not mps:
        raise FmnistError("device 'mps' was asked for but MPS is not available; use --device "
                          "auto or cpu")
    try:
        return torch.device(name)
    except RuntimeError as exc:
        raise ConfigError(f"unknown device {name!r}: use auto, cpu, cuda or mps") from exc


@dataclass
class TrainConfig:
    """Everything the loop needs besides the data and the network."""

    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    optimizer: str = "adam"
    momentum: float = 0.9
    weight_decay: float = 0.0
    bn_bias_lr: float = 1.0
    schedule: str = "constant"
    warmup: float = 0.0
    label_smoothing: float = 0.0
    augment: frozenset[str] = frozenset()
    translate: int = 2
    lookahead: bool = False
    patience: int | None = None
    restore_best: bool = True
    micro_batch: int | None = 128
    seed: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    compile: bool = False
    cuda_graph: bool = True  # on CUDA, full batches replay a graph of forward + backward
    cpu_bf16: bool = False  # training steps in bf16 autocast on a CPU (resolved by the caller)
    eval_batch_size: int = 256
    val_tta: str = "none"
    checkpoint_dir: str | None = None
    resume: bool = False
    verbose: bool = True
    fingerprint: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        """Reject bad settings before any work is done."""
        if self.epochs < 1 or self.batch_size < 1:
            raise ConfigError("epochs and batch_size must be at least 1")
        if not self.lr > 0 or not self.bn_bias_lr > 0:
            raise ConfigError(f"lr and bn_bias_lr must be positive, got {self.lr}, "
                              f"{self.bn_bias_lr}")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"unknown optimizer {self.optimizer!r}; use {', '.join(OPTIMIZERS)}")
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"unknown schedule {self.schedule!r}; use {', '.join(SCHEDULES)}")
        if not 0 <= self.warmup < 1:
            raise ConfigError(f"warmup is a fraction of training in [0, 1), got {self.warmup}")
        if not 0 <= self.label_smoothing < 1:
            raise ConfigError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.val_tta not in TTA_MODES:
            raise ConfigError(f"unknown TTA mode {self.val_tta!r}; use {', '.join(TTA_MODES)}")
        if self.resume and not self.checkpoint_dir:
            raise ConfigError("resume needs checkpoint_dir (the folder holding checkpoint.pt)")


@dataclass
class TrainResult:
    """What `train` hands back besides the (trained, best-restored) network."""

    history: list[dict[str, Any]]
    best_epoch: int | None
    interrupted: bool
    stopped_early: bool
