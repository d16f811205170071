"""What a study leaves behind: `trials.csv`, `tune.json`, Optuna's plots and `report.html`.

The plots are Optuna's own (`optuna.visualization.matplotlib`: optimisation history, fANOVA
parameter importances, per-epoch learning curves), saved as PNG and embedded in one
self-contained page built with `fmnist.reporting.html`.
"""

from __future__ import annotations

import csv
import io
import warnings
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from fmnist.fileio import atomic_write_text
from fmnist.reporting import html


def trial_rows(study: optuna.Study, names: list[str]) -> list[dict[str, Any]]:
    """One plain row per trial: number, state, validation accuracy, epochs run, seconds,
    worker, each parameter, and the error of a failed trial."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        seconds = (t.datetime_complete - t.datetime_start).total_seconds() \
            if t.datetime_complete and t.datetime_start else None
        rows.append({"trial": t.number, "state": t.state.name.lower(), "val_accuracy": t.value,
                     "epochs": len(t.intermediate_values) or None, "seconds": seconds,
                     "worker": t.user_attrs.get("worker"),
                     **{f"param:{n}": t.params.get(n) for n in names},
                     "error": t.user_attrs.get("error")})
    return rows


def state_counts(study: optuna.Study) -> dict[str, int]:
    """How many trials are in each state (complete, pruned, fail, running, waiting)."""
    counts = Counter(t.state.name.lower() for t in study.get_trials(deepcopy=False))
    return {s.name.lower(): counts.get(s.name.lower(), 0) for s in TrialState}


def write_trials_csv(rows: list[dict[str, Any]], path: Path) -> Path:
    """The trials table as CSV, written atomically (`fmnist.fileio`)."""
    columns = list(rows[0]) if rows else ["trial"]
    table = io.StringIO(newline="")
    writer = csv.DictWriter(table, columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return atomic_write_text(path, table.getvalue())


def figures(study: optuna.Study, fig_dir: Path, seed: int) -> tuple[dict[str, Path], list[str]]:
    """Optuna's optimisation history, parameter importances and learning curves as PNGs, and a
    note for each figure that could not be drawn (too few complete trials, ...)."""
    import matplotlib.pyplot as plt
    from optuna.visualization import matplotlib as ovm

    from fmnist.reporting.plots import save

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    plots = {"history": lambda: ovm.plot_optimization_history(study)}
    if len(complete) >= 2:
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=seed)
        plots["importance"] = lambda: ovm.plot_param_importances(study, evaluator=evaluator)
    if any(t.intermediate_values for t in study.get_trials(deepcopy=False)):
        plots["learning_curves"] = lambda: ovm.plot_intermediate_values(study)
    out, notes = {}, []
    if len(complete) < 2:
        notes.append("parameter importances need at least two complete trials")
    if not complete:
        return out, ["no trial completed: nothing to plot"]
    fig_dir.mkdir(parents=True, exist_ok=True)
    for name, draw in plots.items():
        # Optuna switches matplotlib's global style; rc_context puts it back afterwards.
        with plt.rc_context(), warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            try:
                axes = draw()
            except Exception as exc:  # noqa: BLE001 - a figure must not cost the report
                notes.append(f"{name.replace('_', ' ')}: not drawn ({exc})")
                continue
            fig = axes.figure if hasattr(axes, "figure") else axes.flat[0].figure
            fig.set_size_inches(8, 4.5)
            out[name] = save(fig, fig_dir / f"{name}.png")
    return out, notes


CAPTIONS = {
    "history": "Optimisation history: each complete trial's validation accuracy and the best "
               "so far.",
    "importance": "Parameter importances (fANOVA over the complete trials): how much of the "
                  "variation in validation accuracy each parameter explains.",
    "learning_curves": "Validation accuracy after each epoch, one line per trial; the pruner "
                       "stops a trial whose curve falls below the median of earlier trials.",
}


def write_report(path: Path, summary: Mapping[str, Any], best_params: Mapping[str, Any],
                 rows: list[dict[str, Any]], figs: Mapping[str, Path], notes: list[str]) -> Path:
    """The self-contained HTML page: summary, best parameters, figures, every trial."""
    title = f"Tuning {summary['model']}"
    parts = [html.section("Summary", html.table(
        [{"item": k, "value": v} for k, v in summary.items()]))]
    parts.append(html.section("Best parameters", html.table(
        [{"parameter": k, "value": v} for k, v in sorted(best_params.items())])))
    body = "".join(html.figure(p, CAPTIONS.get(k, k)) for k, p in figs.items())
    body += "".join(html.paragraph(n, "note") for n in notes)
    parts.append(html.section("Figures", body))
    columns = {k: k.removeprefix("param:") for k in (rows[0] if rows else {})}
    parts.append(html.section("Trials", html.table(
        rows, columns=columns, formats={"val_accuracy": ".4f", "seconds": ".1f"},
        caption="Validation accuracy on the study's held-out split (never the test set).")))
    return html.write_page(path, title, "".join(parts))
