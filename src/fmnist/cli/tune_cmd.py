"""`fmnist tune MODEL`: search a model's hyper-parameters on Optuna, retrain the best."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from fmnist.cli import options as opt
from fmnist.cli.app import app
from fmnist.cli.train_cmd import parse_assignments
from fmnist.models import get_spec
from fmnist.runs.request import TrainRequest


@app.command("tune")
def tune_cmd(
    model: str = typer.Argument(..., help="A registered model name (see 'fmnist models')."),
    trials: int = typer.Option(20, help="The study's target number of finished trials; "
                               "re-running resumes, and every worker stops at this total."),
    timeout: float | None = typer.Option(None, help="Stop starting trials after this many "
                                         "seconds (a running trial finishes)."),
    out: Path | None = typer.Option(None, help="Output folder (default reports/tune-MODEL): "
                                    "study.db, report.html, trials.csv, tune.json, best/."),
    storage: str | None = typer.Option(None, help="Study database shared by workers, e.g. "
                                       "postgresql://USER:PASSWORD@HOST/DB (default: SQLite "
                                       "file OUT/study.db)."),
    study_name: str | None = typer.Option(None, "--study-name",
                                          help="Study to create or join (default fmnist-MODEL)."),
    space: Path | None = typer.Option(None, help="JSON search space replacing the model's "
                                      "registered one (see docs/distributed.md)."),
    param: list[str] = typer.Option([], "--param", help="Search one parameter: name=low:high, "
                                    "name=low:high:log or name=a|b|c (repeatable)."),
    sets: list[str] = typer.Option([], "--set", help="Fix a parameter, key=value (repeatable; "
                                   "JSON values); a fixed parameter is not searched."),
    val_fraction: float = typer.Option(0.2, "--val-fraction", help="Share of the training "
                                       "data held out to score trials (never the test set)."),
    pruner: str = typer.Option("median", help="median, asha or none (neural models report "
                               "validation accuracy after every epoch)."),
    retrain: bool = typer.Option(True, "--retrain/--no-retrain", help="Retrain the best trial "
                                 "on all training data and score it on the test set (workers "
                                 "that only run trials: --no-retrain)."),
    train_size: int | None = opt.TrainSizeOption,
    seed: int = opt.SeedOption,
    data: Path | None = opt.DataOption,
    test_data: Path | None = opt.TestDataOption,
    size: int = opt.SizeOption,
    data_dir: Path | None = opt.DataDirOption,
) -> None:
    """Search MODEL's hyper-parameters (TPE + pruning), retrain the best, write report.html."""
    from fmnist.tuning.objective import accepted_params
    from fmnist.tuning.spaces import build_space
    from fmnist.tuning.study import check_url
    from fmnist.tuning.tune import tune

    get_spec(model)  # an unknown name or storage fails before anything is loaded
    if storage is not None:
        check_url(storage)
    fixed = parse_assignments(sets)
    chosen = build_space(model, space, param, fixed, sorted(accepted_params(model, fixed)))
    console = Console(soft_wrap=True)
    data_args = {"data": data, "test_data": test_data, "data_dir": data_dir, "size": size,
                 "train_size": train_size}
    train, test, description = TrainRequest(model, seed=seed, data_args=data_args).load_data()
    folder = out or Path("reports") / f"tune-{model}"
    result = tune(model, train, test, folder, space=chosen, fixed=fixed, trials=trials,
                  timeout=timeout, storage=storage, study_name=study_name,
                  val_fraction=val_fraction, seed=seed, pruner=pruner, retrain=retrain,
                  data_description=description,
                  log=lambda line: console.print(line, highlight=False))
    _print_summary(console, result)


def _print_summary(console: Console, result) -> None:
    """Counts, the five best trials, the best parameters and where the report is."""
    import json

    rows = json.loads((result.out_dir / "tune.json").read_text())["trials"]
    done = sorted((r for r in rows if r["state"] == "complete"),
                  key=lambda r: -r["val_accuracy"])[:5]
    table = Table(title=f"Best trials of {result.study_name}")
    for column in ("trial", "val_accuracy", "seconds", "worker"):
        table.add_column(column)
    for r in done:
        table.add_row(str(r["trial"]), f"{r['val_accuracy']:.4f}",
                      f"{r['seconds']:.1f}" if r["seconds"] is not None else "", r["worker"] or "")
    console.print(table)
    counts = ", ".join(f"{n} {s}" for s, n in result.counts.items() if n)
    console.print(f"trials: {counts} ({result.ran} run by this worker)")
    console.print(f"best parameters: {result.best_params}")
    if result.final:
        final = result.final
        console.print(f"[bold green]test accuracy of the retrained best: "
                      f"{final['test_accuracy']:.4f}[/] — run folder {final['run_dir']}")
    console.print(f"report: [bold]{result.report}[/] (also trials.csv, tune.json)")
