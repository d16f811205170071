"""What one Optuna trial does: build the model with the sampled parameters, fit it on the
training part, and return its accuracy on the validation part — never on the test set.

Two protocols, one rule (a fixed, seeded, stratified validation split shared by every trial):
- models that hold out their own validation split (`val_fraction`: the neural nets) are given
  the study's fraction and seed; their per-epoch validation accuracy goes to `trial.report`, so
  the pruner can stop a hopeless trial after any epoch, and the trial's value is the validation
  accuracy of the weights the model keeps (the best epoch's when it restores the best);
- every other model is fitted on `split(train, val_fraction, seed)`'s training part and scored
  on its validation part.
"""

from __future__ import annotations

import os
import socket
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import optuna
from sklearn.exceptions import ConvergenceWarning

from fmnist.data.dataset import Dataset, split
from fmnist.models import create_model
from fmnist.tuning.spaces import Space

WORKER = f"{socket.gethostname()}:{os.getpid()}"
QUIET = {"verbose": False}  # trials print one line each, not a progress bar per epoch


def accepted_params(model: str, fixed: Mapping[str, Any]) -> set[str]:
    """Every parameter name the model's factory takes: its estimator's parameters, with a
    wrapped estimator's (`estimator__lr`, AdaBoost over CNNs) as the flat names it accepts."""
    params = create_model(model, **fixed).get_params(deep=True)
    return {k.removeprefix("estimator__") for k in params if k != "estimator"}


def is_self_validating(model: str, fixed: Mapping[str, Any]) -> bool:
    """Whether the model holds out its own validation split (and so reports epochs)."""
    return "val_fraction" in create_model(model, **fixed).get_params(deep=False)


@dataclass
class Objective:
    """A picklable objective: `study.optimize(Objective(...))`."""

    model: str
    space: Space
    fixed: dict[str, Any]
    train: Dataset
    val_fraction: float
    seed: int
    log: Callable[[str], None] = print
    _parts: tuple[Dataset, Dataset] | None = field(default=None, repr=False)

    def params(self, trial: optuna.Trial) -> dict[str, Any]:
        """The fixed parameters plus one sampled value per dimension of the space."""
        sampled = {name: p.suggest(trial, name) for name, p in self.space.items()}
        return {**self.fixed, **sampled}

    def __call__(self, trial: optuna.Trial) -> float:
        trial.set_user_attr("worker", WORKER)
        params = self.params(trial)
        try:
            with warnings.catch_warnings():  # one trial's non-convergence is its score's business
                warnings.simplefilter("ignore", ConvergenceWarning)
                value = self._fit_and_score(trial, params)
        except optuna.TrialPruned:
            self.log(f"  trial {trial.number}: pruned")
            raise
        except Exception as exc:
            trial.set_user_attr("error", f"{type(exc).__name__}: {exc}"[:500])
            self.log(f"  trial {trial.number}: FAILED — {type(exc).__name__}: {exc}")
            raise
        self.log(f"  trial {trial.number}: validation accuracy {value:.4f}")
        return value

    def _fit_and_score(self, trial: optuna.Trial, params: dict[str, Any]) -> float:
        accepted = accepted_params(self.model, params)
        run = {k: v for k, v in QUIET.items() if k in accepted and k not in params}
        if "random_state" in accepted and "random_state" not in params:
            run["random_state"] = self.seed
        if is_self_validating(self.model, params):
            estimator = create_model(self.model, **params, **run,
                                     val_fraction=self.val_fraction)
            estimator.fit(self.train.images, self.train.labels,
                          on_epoch_end=_reporter(trial))
            _raise_if_interrupted(estimator)
            return _kept_val_accuracy(estimator)
        fit_part, val_part = self._split()
        estimator = create_model(self.model, **params, **run)
        estimator.fit(fit_part.images, fit_part.labels)
        _raise_if_interrupted(estimator)
        return float(estimator.score(val_part.images, val_part.labels))

    def _split(self) -> tuple[Dataset, Dataset]:
        if self._parts is None:
            self._parts = split(self.train, self.val_fraction, self.seed)
        return self._parts


def _reporter(trial: optuna.Trial) -> Callable[[dict[str, Any]], None]:
    """The engine's per-epoch hook: report validation accuracy, prune when the pruner says so
    (the exception leaves the training loop; Optuna records the trial as pruned)."""

    def on_epoch_end(record: dict[str, Any]) -> None:
        if record.get("val_acc") is None:
            return
        trial.report(float(record["val_acc"]), step=int(record["epoch"]))
        if trial.should_prune():
            raise optuna.TrialPruned(f"pruned after epoch {record['epoch']}")

    return on_epoch_end


def _raise_if_interrupted(estimator: Any) -> None:
    """A net stopped by Ctrl-C returns normally with its best weights so far; in a study that
    would be recorded as a finished (worse) trial, so it becomes an interrupt again."""
    if getattr(estimator, "interrupted_", False):
        raise KeyboardInterrupt


def _kept_val_accuracy(estimator: Any) -> float:
    """Validation accuracy of the weights the model kept: the best epoch's when it restores the
    best, else the last epoch's."""
    history = estimator.history_
    best = getattr(estimator, "best_epoch_", None)
    if getattr(estimator, "restore_best", False) and best:
        return float(history[best - 1]["val_acc"])
    return float(history[-1]["val_acc"])
