"""Train one registered model and keep it as a run on disk.

A run folder (`runs/<timestamp>-<model>/`) holds `run.json` (what was asked and how it ended:
written first, so an interrupted run can be resumed), the weights and `model.json` (written by
`fmnist.runs.store`), and `history.json` for models that train in epochs.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils._param_validation import InvalidParameterError

from fmnist.data.dataset import Dataset, split
from fmnist.errors import ConfigError, FmnistError
from fmnist.fileio import atomic_write_json, json_safe
from fmnist.files import load_json
from fmnist.models import create_model, get_spec
from fmnist.runs.preflight import check_model, check_seed, check_val_fraction

RUN_FILE = "run.json"
MAX_RUN_FILE_BYTES = 1 << 20  # a run.json is a few kB; never read a huge or endless file


@dataclass
class RunResult:
    """A finished run: where it lives, the fitted model, and what was measured."""

    run_dir: Path
    model: BaseEstimator
    fit_seconds: float
    metrics: dict[str, Any]
    meta: dict[str, Any]


def write_json(path: Path, payload: dict) -> None:
    """Atomic JSON write (`fmnist.fileio`) of `json_safe(payload)`."""
    atomic_write_json(path, json_safe(payload))


def new_run_dir(out_root: Path, model_name: str) -> Path:
    """A fresh `<out_root>/<timestamp>-<model>` folder name (never an existing one)."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    candidate = Path(out_root) / f"{stamp}-{model_name}"
    n = 1
    while candidate.exists():
        n += 1
        candidate = Path(out_root) / f"{stamp}-{model_name}-{n}"
    return candidate


def read_run_request(run_dir: Path) -> dict:
    """What a run was asked to do (its `run.json`), for `--resume`: a bounded read, and the
    fields a resume uses checked for type, so a damaged file is one clear error."""
    path = Path(run_dir) / RUN_FILE
    if not path.exists() and not path.is_symlink():
        raise FmnistError(f"{run_dir}: not a run folder (no {RUN_FILE}); nothing to resume")
    # Regular files only (a FIFO would block the open), size and nesting bounded.
    request = load_json(path, MAX_RUN_FILE_BYTES, what="run file")
    expected = {"model": str, "params": dict, "seed": int, "data_args": dict}
    wrong = [key for key, kind in expected.items()
             if key in request and not isinstance(request[key], kind)] \
        if isinstance(request, dict) else ["the whole file (not a JSON object)"]
    if isinstance(request, dict) and not isinstance(request.get("model"), str):
        wrong.append("model")
    fraction = request.get("val_fraction") if isinstance(request, dict) else None
    if fraction is not None and (isinstance(fraction, bool)
                                 or not isinstance(fraction, int | float)):
        wrong.append("val_fraction")
    data_args = request.get("data_args", {}) if isinstance(request, dict) else {}
    kinds = {"data": str, "test_data": str, "data_dir": str, "size": int, "train_size": int}
    if isinstance(data_args, dict):
        wrong += [f"data_args.{key}" for key, kind in kinds.items()
                  if data_args.get(key) is not None and not isinstance(data_args[key], kind)]
    if wrong:
        raise FmnistError(f"{path}: damaged run file (bad {', '.join(dict.fromkeys(wrong))}); "
                          "cannot resume it — train afresh")
    return request


def train_run(model_name: str, params: dict[str, Any], train: Dataset, test: Dataset | None, *,
              out_root: Path | str = "runs", run_dir: Path | None = None,
              val_fraction: float | None = None, seed: int = 0, resume: bool = False,
              data_description: str = "", data_args: dict[str, Any] | None = None) -> RunResult:
    """Fit a registered model on `train`, score it on `test`, and save it as a run.

    `val_fraction` goes to the model when it has such a parameter (neural models split and
    early-stop themselves); otherwise that share of `train` is held out and scored. Models with
    a `checkpoint_dir` parameter checkpoint into the run folder, so `resume=True` continues.
    `data_args` records how the caller chose the data, so a resume can choose it again.

    Every setting is checked (`fmnist.runs.preflight`) before the run folder is created. The
    folder's `run.json` then says `training`, and ends as `done`, `interrupted` (Ctrl-C: the
    model holds the best weights so far, and `metrics["interrupted"]` is set) or `failed`.
    `fit_seconds` counts the whole training, across resumes.
    """
    spec = get_spec(model_name)
    model = create_model(model_name, **params)
    accepted = model.get_params(deep=False)
    check_seed(seed)
    check_val_fraction(val_fraction, "val_fraction" in accepted)
    if resume and "resume" not in accepted:
        raise ConfigError(f"model {model_name!r} trains in one step and cannot be resumed")
    fit_data, held_out = train, None
    if val_fraction is not None and "val_fraction" not in accepted:
        fit_data, held_out = split(train, val_fraction, seed)
    fit_data.check_trainable()
    run_dir = Path(run_dir) if run_dir is not None else new_run_dir(Path(out_root), model_name)
    if resume and not _has_checkpoint(run_dir):  # stopped before its first checkpoint
        resume = False
    model.set_params(**_run_settings(accepted, params, run_dir, seed, resume, val_fraction))
    check_model(model_name, model, fit_data.images.shape[1:], fit_data.n_classes)
    prior_seconds = _recorded_fit_seconds(run_dir) if resume else 0.0
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # `--out` names a file, or a folder we may not write
        raise FmnistError(f"cannot create the run folder {run_dir}: "
                          f"{exc.strerror or exc} ({exc.filename or run_dir})") from exc

    request = {"model": model_name, "family": spec.family, "params": {**spec.defaults, **params},
               "seed": seed, "val_fraction": val_fraction, "n_train": len(fit_data),
               "data": data_description or train.source, "data_args": data_args or {},
               "status": "training",
               "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    write_json(run_dir / RUN_FILE, request)
    fit_seconds = _fit(model, fit_data, run_dir, request, prior_seconds)
    try:
        return _finish(model, train, test, held_out, run_dir, request, fit_seconds,
                       data_description)
    except BaseException as exc:  # scoring or saving failed: the folder must not say training
        _mark_ended(run_dir, request, exc, fit_seconds)
        raise


def _finish(model: BaseEstimator, train: Dataset, test: Dataset | None,
            held_out: Dataset | None, run_dir: Path, request: dict[str, Any],
            fit_seconds: float, data_description: str) -> RunResult:
    """After the fit: score, save the model and its history, and mark the run done (or
    interrupted)."""
    metrics: dict[str, Any] = {"fit_seconds": fit_seconds}
    if held_out is not None:
        metrics["val_accuracy"] = float(model.score(held_out.images, held_out.labels))
    if test is not None:
        metrics.update(_test_metrics(model, test))
    status = "interrupted" if getattr(model, "interrupted_", False) else "done"
    if status == "interrupted":
        metrics["interrupted"] = True

    history = getattr(model, "history_", None)
    if history:
        write_json(run_dir / "history.json", {"history": history})
    meta = {**request, "status": status, "metrics": metrics,
            "class_names": list(train.class_names), "image_shape": list(train.images.shape[1:]),
            "dataset": {"source": train.source, "checksum": train.checksum,
                        "description": data_description},
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    from fmnist.runs.store import save

    save(model, run_dir, meta)
    write_json(run_dir / RUN_FILE, {**request, "status": status, "fit_seconds": fit_seconds})
    return RunResult(run_dir, model, fit_seconds, metrics, meta)


def _run_settings(accepted: dict[str, Any], params: dict[str, Any], run_dir: Path, seed: int,
                  resume: bool, val_fraction: float | None) -> dict[str, Any]:
    """What the run decides for the model: its seed, checkpoint folder, resume, split."""
    settings: dict[str, Any] = {}
    if "random_state" in accepted and "random_state" not in params:
        settings["random_state"] = seed
    if "checkpoint_dir" in accepted:
        settings["checkpoint_dir"] = str(run_dir / "checkpoints")
    if "resume" in accepted:
        settings["resume"] = resume
    if val_fraction is not None and "val_fraction" in accepted:
        settings["val_fraction"] = val_fraction
    return settings


def _has_checkpoint(run_dir: Path) -> bool:
    """Whether the run folder holds a checkpoint to continue from (a run interrupted during
    its first epoch has none, and is trained again from the start)."""
    folder = run_dir / "checkpoints"
    return folder.is_dir() and any(folder.iterdir())


def _recorded_fit_seconds(run_dir: Path) -> float:
    """Training seconds an earlier, interrupted session of this run recorded (0 if none)."""
    try:
        seconds = read_run_request(run_dir).get("fit_seconds", 0.0)
    except FmnistError:
        return 0.0
    return float(seconds) if isinstance(seconds, int | float) and seconds >= 0 else 0.0


def _fit(model: BaseEstimator, data: Dataset, run_dir: Path, request: dict[str, Any],
         prior_seconds: float) -> float:
    """`model.fit`, timed; the run folder says `interrupted` or `failed` if it does not end."""
    start = time.perf_counter()
    try:
        model.fit(data.images, data.labels)
    except BaseException as exc:
        _mark_ended(run_dir, request, exc, prior_seconds + time.perf_counter() - start)
        if isinstance(exc, InvalidParameterError):  # a constraint only fit checks (sklearn)
            raise ConfigError(f"model {request['model']!r}: {exc}") from exc
        raise
    return prior_seconds + time.perf_counter() - start


def _mark_ended(run_dir: Path, request: dict[str, Any], exc: BaseException,
                fit_seconds: float) -> None:
    """Record in `run.json` how a run that did not finish ended: `interrupted` (Ctrl-C or
    SIGTERM; the seconds count towards a resume) or `failed` with the error."""
    if isinstance(exc, KeyboardInterrupt):
        ending = {"status": "interrupted", "fit_seconds": fit_seconds}
    else:
        ending = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
    write_json(run_dir / RUN_FILE, {**request, **ending})


def _test_metrics(model: BaseEstimator, test: Dataset) -> dict[str, Any]:
    """Accuracy and prediction speed on the test set (plus `extra_metrics`, e.g. k-means')."""
    start = time.perf_counter()
    proba_or_pred = getattr(model, "predict_proba", model.predict)(test.images)
    seconds = time.perf_counter() - start
    predicted = (model.classes_[np.argmax(proba_or_pred, axis=1)]
                 if proba_or_pred.ndim == 2 else proba_or_pred)
    metrics: dict[str, Any] = {
        "test_accuracy": float(np.mean(predicted == test.labels)),
        "predict_images_per_s": len(test) / max(seconds, 1e-9), "n_test": len(test)}
    if callable(getattr(model, "extra_metrics", None)):
        metrics["extra"] = model.extra_metrics(test.images, test.labels)
    return metrics
