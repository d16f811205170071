"""Run a suite of models, evaluate every one on the same test set, and rank them.

`compare(train, test, out_dir, preset=..., models=...)` trains each model through
`fmnist.runs.train_run` into `<runs_dir>/<model>-<config hash>/`, or reuses that folder when a
finished run with the same configuration (model, parameters, data, seed) is already there, so an
interrupted comparison picks up where it stopped. Only a run whose `run.json` says `done` is
reused; an interrupted one is continued from its checkpoint (or trained again). Ctrl-C stops the
whole comparison: the model in training is marked interrupted, the models not yet run are
named, and no report is written. A model that fails is recorded as failed and the others go on.
The leaderboard holds accuracy with its 95% CI, macro-F1, McNemar's exact test against the best
model, fit time, prediction speed and size; `fmnist.reporting.compare_report` turns it into
`report.html` / `report.md`, next to `results.json` / `results.csv`, and the best run is copied
to `<out>/best/`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from fmnist.data import Dataset
from fmnist.data.dataset import data_fingerprint
from fmnist.data.resolve import check_compatible
from fmnist.errors import FmnistError
from fmnist.evaluation.metrics import evaluate, mcnemar_exact
from fmnist.evaluation.results import Comparison, ModelResult, Preset
from fmnist.fileio import atomic_copy_tree, atomic_write_text
from fmnist.models import get_spec, list_models

PRESETS: dict[str, Preset] = {
    "quick": Preset(
        "quick",
        "The main job: every model family of the seed project in under 5 minutes on 2 CPU "
        "cores. Slow models train on stratified subsets and neural nets for few epochs; every "
        "model is tested on the full official 10,000-image test set.",
        models=("cnn", "resnet", "mlp", "svm", "random-forest", "knn", "adaboost", "logistic",
                "decision-tree", "bayes-3", "kmeans"),
        use_quick=True,
        # On top of each model's registered quick settings, measured to fit the budget
        # (docs/compare.md): the fast CNN gets about half of it (its default net, all the
        # data, 5 of its 6 epochs), kNN all the data, others larger subsets.
        # HOG-SVM is left out: predicting 10k images alone took over 60 s here.
        overrides={
            "cnn": {"width": 20, "epochs": 5, "max_train": None},
            "resnet": {"epochs": 2, "max_train": 20000},
            "svm": {"max_train": 20000},
            "random-forest": {"n_estimators": 60, "max_train": 30000},
            "knn": {"max_train": None},
        },
    ),
    "standard": Preset(
        "standard",
        "Every registered model with its default settings on all 60,000 training images (the "
        "seed notebook's CNNs keep its protocol: Adam, batch 512, 20% held out for validation).",
        models=None,
    ),
    "best": Preset(
        "best",
        "The highest-accuracy settings: wider nets trained longer with augmentation (meant for "
        "a GPU; hours on a CPU), every other model with its defaults on all data.",
        models=None,
        overrides={
            # the cnn's net at speednet's GPU width and learning rate (batch 128 on CPU, 1024
            # on a GPU), with translate, random erasing, shifted test-time views and more
            # epochs (a long schedule has time to learn the shifts)
            "cnn": {"width": 64, "epochs": 20, "batch_size": None, "lr": 0.19,
                    "lr_scaling": "linear", "augment": "translate,altflip,erase",
                    "tta": "flip-shift"},
            "resnet": {"epochs": 60},
            "vgg": {"epochs": 40},
            "mlp": {"epochs": 40},
        },
    ),
}


def config_hash(model: str, params: Mapping[str, Any], fingerprint: str, seed: int) -> str:
    """A short digest of everything that decides what a run learns (model, parameters, the
    training data's `data_fingerprint`, seed): two runs with the same hash are
    interchangeable, so a finished one can be reused."""
    from fmnist.fileio import json_safe

    key = json.dumps(json_safe({"model": model, "params": dict(params), "seed": seed,
                                "data": fingerprint}), sort_keys=True)
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def resolve_models(preset: Preset, models: Sequence[str] | None) -> list[str]:
    """The model names to run: `models` when given (checked against the registry), else the
    preset's list, else every registered model."""
    names = list(models) if models else list(preset.models or [s.name for s in list_models()])
    if not names:
        raise FmnistError("no models to compare")
    for name in names:
        get_spec(name)  # raises a user error naming the known models
    if len(set(names)) != len(names):
        raise FmnistError(f"a model is listed twice: {', '.join(names)}")
    return names


def model_params(preset: Preset, name: str) -> dict[str, Any]:
    """Defaults, then the model's quick overrides (quick preset), then the preset's own."""
    spec = get_spec(name)
    params = dict(spec.defaults)
    if preset.use_quick:
        params.update(spec.quick)
    params.update(preset.overrides.get(name, {}))
    return params


def compare(train: Dataset, test: Dataset, out_dir: str | Path, *, preset: str = "quick",
            models: Sequence[str] | None = None, runs_dir: str | Path | None = None,
            seed: int = 0, data_description: str = "", with_explore: bool = True,
            log: Callable[[str], None] = print, executor: Any = None) -> Comparison:
    """Train (or reuse) and evaluate a suite of models, then write the report and results;
    an `executor` (`executors.DaskExecutor`) first trains the unfinished runs on its workers."""
    if preset not in PRESETS:
        raise FmnistError(f"unknown preset {preset!r}; use one of {', '.join(PRESETS)}")
    check_compatible(train, test)
    chosen = PRESETS[preset]
    names = resolve_models(chosen, models)
    train.check_trainable()
    out = Path(out_dir)
    runs = Path(runs_dir) if runs_dir is not None else out / "runs"
    try:
        (out / "figures").mkdir(parents=True, exist_ok=True)
        runs.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FmnistError(f"cannot create the output folders {out} and {runs}: "
                          f"{exc.strerror or exc} ({exc.filename})") from exc
    started_wall = datetime.now(timezone.utc).isoformat(timespec="seconds")
    start = time.perf_counter()

    explored = None
    if with_explore:
        from fmnist.reporting.explore import explore

        log("data analysis ...")
        explored = explore(train, test, out / "data", seed=seed)
        log(f"    data analysis: {time.perf_counter() - start:.1f} s")

    fingerprint = data_fingerprint(train)
    remote = _train_on(executor, chosen, names, runs, seed, fingerprint, log) if executor else {}
    results = []
    for i, name in enumerate(names, 1):
        log(f"[{i}/{len(names)}] {name} ...")
        try:
            result = _run_one(chosen, name, train, test, runs, seed, fingerprint, remote.get(name))
        except KeyboardInterrupt:
            skipped = ", ".join(names[i:]) or "none"
            log(f"    {name}: INTERRUPTED — its run is marked interrupted and will be continued, "
                f"not reused, next time; not run: {skipped}; no report written")
            raise
        if result.ok:
            ev = result.evaluation
            how = "reused" if result.reused else f"fit {ev.fit_seconds:.1f} s"
            log(f"    {name}: accuracy {ev.accuracy:.4f} ({how}; {result.seconds:.1f} s in all)")
        else:
            log(f"    {name}: FAILED — {result.error}")
        results.append(result)

    results.sort(key=lambda r: (not r.ok, -(r.evaluation.accuracy if r.ok else 0.0)))
    _add_mcnemar(results)
    comparison = Comparison(chosen, results, train, test, out, 0.0, started_wall,
                            data_description or train.source, explored)
    if comparison.best is not None:
        comparison.figures = _figures(comparison)
        comparison.best_dir = _copy_best(comparison.best, out / "best")
    comparison.seconds = time.perf_counter() - start
    write_outputs(comparison)
    return comparison


def run_dir_for(runs: Path, name: str, params: Mapping[str, Any], fingerprint: str,
                seed: int) -> Path:
    """The run folder of one model configuration: `<runs>/<model>-<config hash>`."""
    return runs / f"{name}-{config_hash(name, params, fingerprint, seed)}"


def _train_on(executor: Any, preset: Preset, names: Sequence[str], runs: Path, seed: int,
              fingerprint: str, log: Callable[[str], None]) -> dict[str, Any]:
    """Train every model whose run is not finished on the executor's workers, all at once;
    each worker's result (`executors.JobResult`) by model name."""
    from fmnist.evaluation.executors import produce_runs

    wanted = [(n, model_params(preset, n)) for n in names]
    wanted = [(n, p, run_dir_for(runs, n, p, fingerprint, seed)) for n, p in wanted]
    return produce_runs(executor, [w for w in wanted if not _finished(w[2])], seed,
                        fingerprint, log)


def _run_one(preset: Preset, name: str, train: Dataset, test: Dataset, runs: Path,
             seed: int, fingerprint: str, remote: Any = None) -> ModelResult:
    """Train or reuse one model and evaluate it; any exception becomes a failed result.
    `remote` is what an executor's worker returned for it (its run folder is already here)."""
    from fmnist.runs.store import load, read_history
    from fmnist.runs.train import train_run

    spec = get_spec(name)
    params = model_params(preset, name)
    max_train = params.get("max_train")
    n_fit = min(len(train), int(max_train)) if max_train else len(train)
    result = ModelResult(name, spec.family, spec.description, params, n_fit,
                         defaults=dict(spec.defaults))
    start = time.perf_counter()
    try:
        run_dir = run_dir_for(runs, name, params, fingerprint, seed)
        result.run_dir = run_dir
        if remote is not None and remote.error is not None:
            raise remote.failure()
        loaded = load(run_dir) if _finished(run_dir) else None
        if loaded is not None and not loaded.meta.get("metrics", {}).get("interrupted"):
            model, fit_seconds = loaded.model, loaded.meta.get("metrics", {}).get("fit_seconds")
            result.reused = remote is None
        else:
            # An interrupted neural run continues from its last epoch checkpoint
            # (train_run checkpoints into <run>/checkpoints).
            checkpoints = run_dir / "checkpoints"
            resume = (checkpoints.is_dir() and any(checkpoints.iterdir())
                      and _takes(name, params, "resume"))
            run, result.warnings = _quietly(lambda: train_run(
                name, params, train, None, run_dir=run_dir, seed=seed, resume=resume))
            if run.metrics.get("interrupted"):  # Ctrl-C ended the epochs: stop the comparison
                raise KeyboardInterrupt
            model, fit_seconds = run.model, run.fit_seconds
        result.evaluation = evaluate(model, test, model_name=name, fit_seconds=fit_seconds,
                                     run_dir=run_dir)
        result.history = read_history(run_dir)
    except Exception as exc:  # noqa: BLE001 - one model's failure must not stop the others
        result.error = f"{type(exc).__name__}: {exc}"
        if result.run_dir is not None and result.run_dir.is_dir():
            (result.run_dir / "error.txt").write_text(traceback.format_exc(), encoding="utf-8")
    result.seconds = time.perf_counter() - start
    if remote is not None and remote.error is None:
        result.seconds += remote.seconds  # its training, on a worker
    return result


def _quietly(fit: Callable[[], Any]) -> tuple[Any, list[str]]:
    """Run `fit`, capturing scikit-learn's ConvergenceWarnings (an iteration cap reached, e.g.
    logistic regression on a subset) instead of printing them into the comparison's log; they
    are returned, one line each, to be recorded with the model's result."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        value = fit()
    for other in (w for w in caught if not issubclass(w.category, ConvergenceWarning)):
        warnings.warn_explicit(other.message, other.category, other.filename, other.lineno)
    lines = [" ".join(str(w.message).split()) for w in caught
             if issubclass(w.category, ConvergenceWarning)]
    return value, list(dict.fromkeys(lines))


def _finished(run_dir: Path) -> bool:
    """Whether `run_dir` holds a run that ended normally: a saved model and `run.json` saying
    `done` (an interrupted or failed run, or one still training elsewhere, is not)."""
    from fmnist.runs.train import read_run_request

    if not (run_dir / "model.json").is_file():
        return False
    try:
        return read_run_request(run_dir).get("status") == "done"
    except FmnistError:
        return False


def _takes(name: str, params: Mapping[str, Any], parameter: str) -> bool:
    """Whether the model has an estimator parameter of that name."""
    from fmnist.models import create_model

    return parameter in create_model(name, **params).get_params(deep=False)


def _add_mcnemar(results: list[ModelResult]) -> None:
    """Each model vs the best (first) one: McNemar's exact test, kept typed for the report."""
    ok = [r for r in results if r.ok]
    if not ok:
        return
    best = ok[0]
    for r in ok[1:]:
        r.mcnemar = mcnemar_exact(best.evaluation.correct, r.evaluation.correct)


def _figures(comparison: Comparison) -> dict[str, Path]:
    """The comparison's figures (all models), and the best model's (what it gets wrong) from the
    one writer `fmnist evaluate` uses too."""
    from fmnist.reporting.figures import evaluation_figures
    from fmnist.reporting.plots import evaluation as plots

    fig_dir = comparison.out_dir / "figures"
    ok = [r for r in comparison.results if r.ok]
    names = comparison.test.class_names
    figures = {
        "accuracy_vs_time": plots.accuracy_vs_time(
            [r.name for r in ok], [r.evaluation.accuracy for r in ok],
            [(r.evaluation.ci_low, r.evaluation.ci_high) for r in ok],
            [r.evaluation.fit_seconds or 0.0 for r in ok], [r.family for r in ok],
            fig_dir / "accuracy_vs_time.png"),
        "f1_heatmap": plots.f1_heatmap(
            np.array([[c["f1"] for c in r.evaluation.per_class] for r in ok]),
            [r.name for r in ok], names, fig_dir / "f1_heatmap.png"),
        **evaluation_figures(ok[0].evaluation, comparison.test.images, fig_dir, prefix="best_"),
    }
    for r in ok:
        if r.history:
            figures[f"curves_{r.name}"] = plots.training_curves(
                r.history, fig_dir / f"curves_{r.name}.png", title=f"{r.name}: training curves")
    return figures


def _copy_best(best: ModelResult, target: Path) -> Path:
    """Copy the best run (weights, model.json, history) to `target`, replacing an older copy;
    checkpoints stay behind. A copy, not a link, so the folder survives being moved or zipped."""
    return atomic_copy_tree(best.run_dir, target,
                            ignore=shutil.ignore_patterns("checkpoints", "*.tmp", "error.txt"))


CSV_COLUMNS = ("rank", "model", "family", "status", "accuracy", "ci_low", "ci_high", "macro_f1",
               "weighted_f1", "log_loss", "top2_accuracy", "mcnemar_p", "significantly_worse",
               "fit_seconds", "predict_images_per_s", "n_params", "size_bytes", "train_images",
               "wall_seconds", "reused", "run_dir", "error")


def write_outputs(comparison: Comparison) -> dict[str, Path]:
    """results.json, results.csv, report.html and report.md in the output folder."""
    from fmnist.reporting.compare_report import write_reports
    from fmnist.runs.train import write_json

    out = comparison.out_dir
    write_json(out / "results.json", comparison.to_dict())
    csv_path = out / "results.csv"
    table = io.StringIO(newline="")
    writer = csv.DictWriter(table, CSV_COLUMNS, extrasaction="ignore")
    writer.writeheader()
    for rank, result in enumerate(comparison.results, 1):
        writer.writerow({"rank": rank if result.ok else "", **result.row()})
    atomic_write_text(csv_path, table.getvalue())
    return {"results.json": out / "results.json", "results.csv": csv_path,
            **write_reports(comparison)}
