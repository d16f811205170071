"""Cross-cutting work of the training loop as small callbacks (skorch style): early stopping
with best-weight restore, lookahead/EMA, progress display, checkpoints, a user hook.

Each callback is notified at the loop's events and keeps its own state; whatever it must carry
across an interruption it returns from `state_dict()`, which the loop's single checkpoint writer
stores under the callback's `name`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from fmnist.models.training.run import Callback, Run


def clone_state(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    """A detached copy of every weight and buffer."""
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


class EarlyStopping(Callback):
    """Watch the validation loss: stop after `patience` epochs without improvement (None =
    never) and, with `restore_best`, leave the best epoch's weights in the net at the end."""

    name = "early_stopping"

    def __init__(self, patience: int | None, restore_best: bool) -> None:
        self.patience, self.restore_best = patience, restore_best
        self.best_score, self.best_epoch, self.bad_epochs = math.inf, None, 0
        self.best_state: dict[str, torch.Tensor] | None = None

    @property
    def should_stop(self) -> bool:
        """True once `patience` epochs in a row did not improve."""
        return self.patience is not None and self.bad_epochs >= self.patience

    def on_epoch_end(self, run: Run, rec: dict[str, Any]) -> None:
        if rec["val_loss"] is None:
            return
        if rec["val_loss"] < self.best_score:
            self.best_score, self.best_epoch, self.bad_epochs = rec["val_loss"], rec["epoch"], 0
            self.best_state = clone_state(run.net) if self.restore_best else None
        else:
            self.bad_epochs += 1

    def on_train_end(self, run: Run) -> None:
        if self.restore_best and self.best_state is not None:
            run.net.load_state_dict(self.best_state)

    def state_dict(self) -> dict[str, Any]:
        return {"best_score": self.best_score, "best_epoch": self.best_epoch,
                "bad_epochs": self.bad_epochs, "best_state": self.best_state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best_score, self.best_epoch = state["best_score"], state["best_epoch"]
        self.bad_epochs, self.best_state = state["bad_epochs"], state["best_state"]


class Lookahead(Callback):
    """airbench's lookahead: every `every` steps the float weights and BN statistics move into
    an exponential average and the net is set to that average. The decay ramps up as
    `decay × (progress)³`, so early training is untouched and the last third is averaged; at
    the end the net takes the averaged weights."""

    name = "lookahead"

    def __init__(self, every: int = 5, decay: float = 0.95**5, power: float = 3.0) -> None:
        self.every, self.decay, self.power = every, decay, power
        self.ema: dict[str, torch.Tensor] | None = None

    def _pairs(self, run: Run) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        assert self.ema is not None
        live = run.net.state_dict()
        keys = [k for k, v in live.items() if v.is_floating_point()]
        return [self.ema[k] for k in keys], [live[k] for k in keys]

    def on_train_begin(self, run: Run) -> None:
        if self.ema is None:
            self.ema = clone_state(run.net)
        else:  # resumed: the averaged tensors must live beside the net
            self.ema = {k: v.to(run.device) for k, v in self.ema.items()}

    def update(self, run: Run, decay: float) -> None:
        """ema ← decay·ema + (1−decay)·net, then net ← ema."""
        ema, live = self._pairs(run)
        with torch.no_grad():
            torch._foreach_lerp_(ema, live, 1.0 - decay)
            torch._foreach_copy_(live, ema)

    def on_step_end(self, run: Run, step: int) -> None:
        if (step + 1) % self.every == 0:
            self.update(run, self.decay * ((step + 1) / run.total_steps) ** self.power)

    def on_train_end(self, run: Run) -> None:
        self.update(run, 1.0)

    def state_dict(self) -> dict[str, Any]:
        return {"ema": self.ema}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.ema = state["ema"]


class ProgressBar(Callback):
    """A Rich progress bar on stderr plus one summary line per epoch (`verbose=False`: none)."""

    name = "progress"

    def __init__(self, verbose: bool) -> None:
        # soft_wrap: an epoch line stays one line when stderr is a file or a pipe (80 columns)
        self.console = Console(stderr=True, quiet=not verbose, soft_wrap=True)
        self.bar = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4f} acc {task.fields[acc]:.4f} "
                       "{task.fields[ips]:,.0f} img/s"),
            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
            console=self.console, transient=False, disable=not verbose)
        self.task: Any = None

    def on_train_begin(self, run: Run) -> None:
        self.bar.start()
        self.task = self.bar.add_task(
            "train", total=run.total_steps, completed=run.start_epoch * run.steps_per_epoch,
            loss=math.nan, acc=math.nan, ips=0.0)

    def on_progress(self, run: Run, step: int, seen: int, loss_sum: torch.Tensor,
                    correct: torch.Tensor, seconds: float) -> None:
        self.bar.update(self.task, completed=step + 1, loss=loss_sum.item() / seen,
                        acc=correct.item() / seen, ips=seen / max(seconds, 1e-9),
                        description=f"epoch {step // run.steps_per_epoch + 1}/{run.cfg.epochs}")

    def on_epoch_end(self, run: Run, rec: dict[str, Any]) -> None:
        self.bar.update(self.task, completed=rec["epoch"] * run.steps_per_epoch,
                        loss=rec["train_loss"], acc=rec["train_acc"], ips=rec["images_per_s"],
                        description=f"epoch {rec['epoch']}/{run.cfg.epochs}")
        val = (f"val loss {rec['val_loss']:.4f} acc {rec['val_acc']:.4f}"
               if rec["val_loss"] is not None else "no validation split")
        self.bar.console.print(
            f"epoch {rec['epoch']}/{run.cfg.epochs}: train loss {rec['train_loss']:.4f} "
            f"acc {rec['train_acc']:.4f} · {val} · {rec['seconds']:.1f} s "
            f"({rec['images_per_s']:,.0f} img/s)")

    def on_train_end(self, run: Run) -> None:
        self.bar.stop()

    def interrupted(self) -> None:
        """Say that Ctrl-C was caught and what is kept."""
        self.console.print("[yellow]interrupted: keeping the best weights so far[/yellow]")


class Checkpoint(Callback):
    """After every epoch, write the run's whole state (`engine.save_state`) atomically."""

    name = "checkpoint"

    def __init__(self, save: Callable[[Run], None]) -> None:
        self.save = save

    def on_epoch_end(self, run: Run, rec: dict[str, Any]) -> None:
        self.save(run)


class EpochHook(Callback):
    """Call a plain function with each epoch's record (the estimator's / a test's hook)."""

    name = "epoch_hook"

    def __init__(self, fn: Callable[[dict[str, Any]], None]) -> None:
        self.fn = fn

    def on_epoch_end(self, run: Run, rec: dict[str, Any]) -> None:
        self.fn(rec)
