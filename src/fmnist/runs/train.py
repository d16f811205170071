"""Train one registered model and keep it as a run on disk.

A run folder (`runs/<timestamp>-<model>/`) holds `run.json` (what was asked: written first, so
an interrupted run can be resumed), the weights and `model.json` (written by `fmnist.runs.store`),
and `history.json` for models that train in epochs.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

from fmnist.data.dataset import Dataset, split
from fmnist.data.idx import atomic_write_bytes
from fmnist.errors import FmnistError
from fmnist.models import create_model, get_spec

RUN_FILE = "run.json"


@dataclass
class RunResult:
    """A finished run: where it lives, the fitted model, and what was measured."""

    run_dir: Path
    model: BaseEstimator
    fit_seconds: float
    metrics: dict[str, Any]
    meta: dict[str, Any]


def json_safe(value: Any) -> Any:
    """Parameters as JSON: numbers, strings, lists and dicts as they are, anything else as str."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def write_json(path: Path, payload: dict) -> None:
    """Atomic JSON write (temp file + rename)."""
    atomic_write_bytes(path, json.dumps(json_safe(payload), indent=2).encode())


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
    """What a run was asked to do (its `run.json`), for `--resume`."""
    path = Path(run_dir) / RUN_FILE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise FmnistError(
            f"{run_dir}: not a run folder (no {RUN_FILE}); nothing to resume") from None
    except (OSError, ValueError) as exc:
        raise FmnistError(f"{path}: unreadable ({exc})") from exc


def train_run(model_name: str, params: dict[str, Any], train: Dataset, test: Dataset | None, *,
              out_root: Path | str = "runs", run_dir: Path | None = None,
              val_fraction: float | None = None, seed: int = 0, resume: bool = False,
              data_description: str = "", data_args: dict[str, Any] | None = None) -> RunResult:
    """Fit a registered model on `train`, score it on `test`, and save it as a run.

    `val_fraction` goes to the model when it has such a parameter (neural models split and
    early-stop themselves); otherwise that share of `train` is held out and scored. Models with
    a `checkpoint_dir` parameter checkpoint into the run folder, so `resume=True` continues.
    `data_args` records how the caller chose the data, so a resume can choose it again.
    """
    spec = get_spec(model_name)
    model = create_model(model_name, **params)
    accepted = model.get_params(deep=False)
    run_dir = Path(run_dir) if run_dir is not None else new_run_dir(Path(out_root), model_name)
    run_dir.mkdir(parents=True, exist_ok=True)

    settings: dict[str, Any] = {}
    if "random_state" in accepted and "random_state" not in params:
        settings["random_state"] = seed
    if "checkpoint_dir" in accepted:
        settings["checkpoint_dir"] = str(run_dir / "checkpoints")
    if "resume" in accepted:
        settings["resume"] = resume
    elif resume:
        raise FmnistError(f"model {model_name!r} trains in one step and cannot be resumed")
    fit_data, held_out = train, None
    if val_fraction is not None:
        if "val_fraction" in accepted:
            settings["val_fraction"] = val_fraction
        else:
            fit_data, held_out = split(train, val_fraction, seed)
    model.set_params(**settings)

    request = {"model": model_name, "family": spec.family, "params": {**spec.defaults, **params},
               "seed": seed, "val_fraction": val_fraction, "n_train": len(fit_data),
               "data": data_description or train.source, "data_args": data_args or {},
               "status": "training",
               "started": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    write_json(run_dir / RUN_FILE, request)

    start = time.perf_counter()
    model.fit(fit_data.images, fit_data.labels)
    fit_seconds = time.perf_counter() - start

    metrics: dict[str, Any] = {"fit_seconds": fit_seconds}
    if held_out is not None:
        metrics["val_accuracy"] = float(model.score(held_out.images, held_out.labels))
    if test is not None:
        start = time.perf_counter()
        proba_or_pred = getattr(model, "predict_proba", model.predict)(test.images)
        seconds = time.perf_counter() - start
        predicted = (model.classes_[np.argmax(proba_or_pred, axis=1)]
                     if proba_or_pred.ndim == 2 else proba_or_pred)
        metrics["test_accuracy"] = float(np.mean(predicted == test.labels))
        metrics["predict_images_per_s"] = len(test) / max(seconds, 1e-9)
        metrics["n_test"] = len(test)
        if callable(getattr(model, "extra_metrics", None)):  # e.g. k-means: ARI, NMI, purity
            metrics["extra"] = model.extra_metrics(test.images, test.labels)
    if getattr(model, "interrupted_", False):
        metrics["interrupted"] = True

    history = getattr(model, "history_", None)
    if history:
        write_json(run_dir / "history.json", {"history": history})
    meta = {**request, "status": "done", "metrics": metrics, "class_names": list(train.class_names),
            "image_shape": list(train.images.shape[1:]),
            "dataset": {"source": train.source, "checksum": train.checksum,
                        "description": data_description},
            "finished": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    from fmnist.runs.store import save

    save(model, run_dir, meta)
    write_json(run_dir / RUN_FILE, {**request, "status": "done"})
    return RunResult(run_dir, model, fit_seconds, metrics, meta)
