"""`tune(model, train, test, out)`: search a model's hyper-parameters, then retrain the winner.

1. open (or join) the study in its database and run trials until it holds `trials` finished
   ones (`fmnist.tuning.study`); each trial is scored on the validation split only
   (`fmnist.tuning.objective`);
2. retrain the best trial's parameters on all the training data as a normal run folder
   (`<out>/best`, through `fmnist.runs.train.train_run`) and score it once on the test set —
   skipped when that exact retrain is already there, so re-running a finished study is cheap;
3. write `trials.csv`, `tune.json`, the figures and `report.html` (`fmnist.tuning.report`).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from fmnist.data.dataset import Dataset, data_fingerprint
from fmnist.errors import FmnistError
from fmnist.fileio import json_safe
from fmnist.runs.train import train_run, write_json
from fmnist.tuning import report
from fmnist.tuning.objective import Objective, is_self_validating
from fmnist.tuning.spaces import Space, space_to_json
from fmnist.tuning.study import finished_count, open_storage, open_study, redact, run_trials

DEFAULT_VAL_FRACTION = 0.2


@dataclass
class TuneResult:
    """A study's state after this call, the winner, and where everything was written."""

    out_dir: Path
    study_name: str
    storage: str
    counts: dict[str, int]
    ran: int
    best_trial: int | None
    best_value: float | None
    best_params: dict[str, Any]
    final: dict[str, Any] | None
    report: Path


def tune(model: str, train: Dataset, test: Dataset, out_dir: str | Path, *, space: Space,
         fixed: Mapping[str, Any] | None = None, trials: int = 20, timeout: float | None = None,
         storage: str | None = None, study_name: str | None = None,
         val_fraction: float = DEFAULT_VAL_FRACTION, seed: int = 0, pruner: str = "median",
         retrain: bool = True, data_description: str = "",
         log: Callable[[str], None] = print) -> TuneResult:
    """Run (or resume, or join) a study of `model` and write its results into `out_dir`."""
    if trials < 0:
        raise FmnistError(f"--trials must be 0 or more, got {trials}")
    if timeout is not None and timeout <= 0:
        raise FmnistError(f"--timeout must be positive seconds, got {timeout}")
    if not 0.0 < val_fraction < 1.0:
        raise FmnistError(f"--val-fraction must be between 0 and 1, got {val_fraction}")
    fixed = dict(fixed or {})
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FmnistError(f"cannot create the output folder {out}: {exc}") from exc
    url = storage or f"sqlite:///{(out / 'study.db').resolve()}"
    name = study_name or f"fmnist-{model}"
    fingerprint = data_fingerprint(train)
    protocol = {"model": model, "space": space_to_json(space), "fixed": json_safe(fixed),
                "val_fraction": val_fraction, "seed": seed, "data": fingerprint,
                "train_images": len(train)}
    study = open_study(open_storage(url), name, protocol, seed=seed, pruner=pruner,
                       shared=storage is not None)
    log(f"study {name} in {redact(url)}: {finished_count(study)} of {trials} trials finished; "
        f"searching {', '.join(sorted(space))}")
    objective = Objective(model, space, fixed, train, val_fraction, seed, log)
    ran = run_trials(study, objective, trials, timeout)

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    best = max(complete, key=lambda t: t.value) if complete else None
    best_params = {**fixed, **best.params} if best else {}
    final = None
    if best is not None and retrain:
        final = _retrain(model, best, best_params, train, test, out, seed, fingerprint, name,
                         data_description, log)
    result = TuneResult(out, name, redact(url), report.state_counts(study), ran,
                        best.number if best else None, best.value if best else None,
                        best_params, final, out / "report.html")
    _write_outputs(result, study, model, protocol, seed)
    if best is None:
        raise FmnistError(f"no trial completed ({result.counts['fail']} failed, "
                          f"{result.counts['pruned']} pruned); see {out / 'trials.csv'}")
    return result


def _retrain(model: str, best: optuna.trial.FrozenTrial, params: dict[str, Any],
             train: Dataset, test: Dataset, out: Path, seed: int, fingerprint: str,
             study_name: str, description: str, log: Callable[[str], None]) -> dict[str, Any]:
    """Train the best parameters on all of `train` into `<out>/best` (via a temporary folder:
    never a half-written run) and score it once on `test`; reuse an identical earlier one."""
    key = {"study": study_name, "trial": best.number, "data": fingerprint, "seed": seed,
           "params": json_safe(params)}
    target = out / "best"
    previous = _read_json(out / "tune.json").get("final") or {}
    if {k: previous.get(k) for k in key} == key and (target / "model.json").is_file():
        log(f"best trial {best.number} was already retrained: {target}")
        return previous
    log(f"best trial {best.number} (validation accuracy {best.value:.4f}); retraining on all "
        f"{len(train):,} training images ...")
    tmp = out / "best.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    # Neural nets would hold out their own validation split: the final run uses all the data
    # (the number of epochs is a fixed parameter, not chosen by early stopping).
    val_fraction = 0.0 if is_self_validating(model, params) else None
    run = train_run(model, params, train, test, run_dir=tmp, val_fraction=val_fraction,
                    seed=seed, data_description=(description or train.source)
                    + f"; parameters from trial {best.number} of study {study_name}")
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return {**key, "run_dir": str(target), "val_accuracy": best.value,
            "test_accuracy": run.metrics["test_accuracy"], "fit_seconds": run.fit_seconds,
            "n_train": len(train), "n_test": len(test)}


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_outputs(result: TuneResult, study: optuna.Study, model: str,
                   protocol: Mapping[str, Any], seed: int) -> None:
    out = result.out_dir
    names = sorted(protocol["space"])
    rows = report.trial_rows(study, names)
    report.write_trials_csv(rows, out / "trials.csv")
    write_json(out / "tune.json", {
        "model": model, "study": result.study_name, "storage": result.storage,
        "protocol": dict(protocol), "counts": result.counts, "ran_here": result.ran,
        "best": {"trial": result.best_trial, "val_accuracy": result.best_value,
                 "params": result.best_params},
        "final": result.final, "trials": rows})
    figs, notes = report.figures(study, out / "figures", seed)
    final = result.final or {}
    summary = {
        "model": model, "study": result.study_name, "storage": result.storage,
        "trials": ", ".join(f"{n} {s}" for s, n in result.counts.items() if n),
        "validation": f"{protocol['val_fraction']:.0%} of {protocol['train_images']:,} "
                      f"training images held out (seed {protocol['seed']})",
        "best trial": result.best_trial, "best validation accuracy": result.best_value,
        "test accuracy (best retrained on all training data, scored once)":
            final.get("test_accuracy"),
        "run folder": final.get("run_dir", "not retrained (--no-retrain)"),
    }
    report.write_report(out / "report.html", summary, result.best_params, rows, figs, notes)
