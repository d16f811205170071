"""The live state of one training run and the base of its callbacks, in one module.

`Run` holds what the step, epoch and callbacks work on; `Callback` is notified at the loop's
events. They refer to each other, so they live together here, below both the loop
(`fmnist.models.engine`) and the concrete callbacks (`training/callbacks.py`), which import
them — neither of those two imports the other for their types.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from fmnist.models.training.config import TrainConfig


class Callback:
    """No-op base: override the events you need."""

    name = "callback"

    def on_train_begin(self, run: Run) -> None:
        """Before the first epoch (also when resuming)."""

    def on_step_end(self, run: Run, step: int) -> None:
        """After the optimiser step number `step` (0-based over the whole run)."""

    def on_progress(self, run: Run, step: int, seen: int, loss_sum: torch.Tensor,
                    correct: torch.Tensor, seconds: float) -> None:
        """Every few steps on CPU only (reading the running sums syncs a GPU)."""

    def on_epoch_end(self, run: Run, rec: dict[str, Any]) -> None:
        """After an epoch's record (with validation) is complete."""

    def on_train_end(self, run: Run) -> None:
        """After the last epoch, early stop or Ctrl-C."""

    def state_dict(self) -> dict[str, Any]:
        """What must survive an interruption (tensors, numbers, lists)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Take back what `state_dict` returned."""


@dataclass
class Run:
    """One training run's live objects: what the step, epoch and callbacks work on."""

    net: nn.Module
    forward: Callable[[torch.Tensor], torch.Tensor]
    opt: torch.optim.Optimizer
    cfg: TrainConfig
    x: torch.Tensor
    y: torch.Tensor
    w: torch.Tensor | None
    x_val: torch.Tensor | None
    y_val: torch.Tensor | None
    micro: int
    base_flip: torch.Tensor | None
    graphed: Callable[[torch.Tensor], torch.Tensor] | None = None
    """The forward as a CUDA graph, for batches of exactly `cfg.batch_size` images."""
    callbacks: list[Callback] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    start_epoch: int = 0

    @property
    def device(self) -> torch.device:
        return self.cfg.device

    @property
    def n(self) -> int:
        return len(self.x)

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(self.n / self.cfg.batch_size)

    @property
    def total_steps(self) -> int:
        return self.steps_per_epoch * self.cfg.epochs

    def notify(self, event: str, *args: Any) -> None:
        """Call `event` on every callback, in order."""
        for cb in self.callbacks:
            getattr(cb, event)(self, *args)
