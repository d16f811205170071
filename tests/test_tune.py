"""fmnist.tuning: search spaces (registered, overridden, hostile), a real Optuna study on real
data (SQLite), per-epoch pruning of a real net, and resuming a study whose process was killed."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from fmnist.errors import FmnistError
from fmnist.models import list_models
from fmnist.runs.store import load
from fmnist.tuning.objective import accepted_params
from fmnist.tuning.spaces import (
    MAX_PARAMS,
    SPACES,
    build_space,
    load_space_file,
    parse_param_option,
)
from fmnist.tuning.study import check_url, finished_count, open_storage, redact
from fmnist.tuning.tune import tune

FMNIST = [sys.executable, "-m", "fmnist"]


def test_every_registered_model_has_a_space_of_its_own_parameters():
    names = {spec.name for spec in list_models()}
    assert names == set(SPACES), "a model without a search space, or a space without a model"
    for name in sorted(names):
        accepted = accepted_params(name, {})
        space = build_space(name, None, [], {}, sorted(accepted))
        assert space and set(space) <= accepted, name


def test_param_options_and_space_files(tmp_path):
    assert parse_param_option("lr=0.001:0.1:log")[1].to_dict() == {
        "type": "float", "low": 0.001, "high": 0.1, "log": True}
    assert parse_param_option("width=8:64")[1].kind == "int"
    name, p = parse_param_option("augment=none|translate,flip|true")
    assert name == "augment" and p.choices == ("none", "translate,flip", True)
    accepted = sorted(accepted_params("knn", {}))
    space = build_space("knn", None, ["n_neighbors=3:9"], {"weights": "uniform"}, accepted)
    assert space["n_neighbors"].high == 9 and "weights" not in space  # fixed: not searched
    with pytest.raises(FmnistError, match="--val-fraction"):
        build_space("mlp", None, [], {"val_fraction": 0.3}, sorted(accepted_params("mlp", {})))
    spec = tmp_path / "space.json"
    spec.write_text(json.dumps({"C": {"type": "float", "low": 0.1, "high": 10, "log": True}}))
    assert set(load_space_file(spec)) == {"C"}


@pytest.mark.parametrize("space, message", [
    ({"C": {"type": "float", "low": 1, "high": float("nan")}}, "NaN is not valid JSON"),
    ({"C": {"type": "float", "low": 5, "high": 1}}, "low < high"),
    ({"C": {"type": "float", "low": 0, "high": 1, "log": True}}, "log scale"),
    ({"C": {"type": "code", "low": 0, "high": 1}}, "'type'"),
    ({"C": {"type": "categorical", "choices": [{"__import__": "os"}]}}, "finite number"),
    ({"C": {"type": "categorical", "choices": list(range(65))}}, "choices"),
    ({"n_neighbors": {"type": "int", "low": 1, "high": 2.5}}, "whole numbers"),
    ({f"p{i}": {"type": "int", "low": 1, "high": 2} for i in range(MAX_PARAMS + 1)}, "at most"),
    ({"random_state": {"type": "int", "low": 1, "high": 2}}, "run setting"),
    ({"no_such": {"type": "int", "low": 1, "high": 2}}, "has no parameter"),
])
def test_hostile_space_files_are_one_clear_error(tmp_path, space, message):
    path = tmp_path / "space.json"
    path.write_text(json.dumps(space))
    with pytest.raises(FmnistError, match=message):
        build_space("logistic", path, [], {}, sorted(accepted_params("logistic", {})))


def test_storage_urls_are_checked_and_never_show_a_password():
    with pytest.raises(FmnistError, match="use sqlite") as info:
        check_url("mysql://u:s3cret@h/db")
    assert "s3cret" not in str(info.value) and "***" in str(info.value)
    assert redact("postgresql://fmnist:s3cret@10.0.0.1/db") == "postgresql://fmnist:***@10.0.0.1/db"


def test_cli_error_is_one_line_with_its_brackets():
    done = subprocess.run([*FMNIST, "tune", "logistic", "--param", "zz[bold]=1:2"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "no parameter 'zz[bold]'" in done.stderr  # Rich markup in the message is escaped


def test_space_file_size_is_bounded(tmp_path):
    path = tmp_path / "big.json"
    path.write_text(" " * 70_000 + "{}")
    with pytest.raises(FmnistError, match="allowed; refusing to read it"):
        load_space_file(path)


def test_space_file_fifo_and_deep_nesting_are_one_clear_error(tmp_path):
    """A FIFO is refused without blocking; nesting 10,000 deep is refused before parsing."""
    fifo = tmp_path / "space.json"
    os.mkfifo(fifo)
    with pytest.raises(FmnistError, match="regular file|not a file"):
        load_space_file(fifo)
    deep = tmp_path / "deep.json"
    deep.write_text('{"C": ' + "[" * 10_000 + "]" * 10_000 + "}")
    with pytest.raises(FmnistError, match="levels deep"):
        load_space_file(deep)


@pytest.fixture(scope="module")
def tiny(fmnist_train, fmnist_test):
    return fmnist_train.head(n=600, seed=0), fmnist_test.head(n_per_class=30, seed=0)


def test_study_selects_on_validation_retrains_and_resumes(tiny, tmp_path):
    train, test = tiny
    space = build_space("decision-tree", None, [], {}, sorted(accepted_params("decision-tree",
                                                                             {})))
    result = tune("decision-tree", train, test, tmp_path, space=space, trials=3, seed=0,
                  log=lambda _: None)
    rows = list(csv.DictReader((tmp_path / "trials.csv").open()))
    assert [r["state"] for r in rows] == ["complete"] * 3 and result.ran == 3
    values = [float(r["val_accuracy"]) for r in rows]
    assert result.best_value == max(values) and 0.3 < result.best_value < 1
    best_row = rows[values.index(max(values))]
    assert result.best_params["criterion"] == best_row["param:criterion"]
    # The winner was retrained on all 600 images as a normal run folder, scored on the test set.
    run = load(tmp_path / "best")
    assert run.meta["n_train"] == len(train) and run.meta["params"]["max_depth"] == int(
        best_row["param:max_depth"])
    accuracy = float((run.model.predict(test.images) == test.labels).mean())
    assert result.final["test_accuracy"] == pytest.approx(accuracy)
    page = (tmp_path / "report.html").read_text()
    assert page.count("data:image/png;base64,") >= 2 and "Parameter importances" in page
    # Same command with a higher target: two more trials, numbered on.
    again = tune("decision-tree", train, test, tmp_path, space=space, trials=5, seed=0,
                 log=lambda _: None)
    numbers = [r["trial"] for r in json.loads((tmp_path / "tune.json").read_text())["trials"]]
    assert again.ran == 2 and numbers == [0, 1, 2, 3, 4]
    # Joining with other data is refused: trials on different data are not comparable.
    with pytest.raises(FmnistError, match="other settings.*data"):
        tune("decision-tree", train.head(n=500, seed=1), test, tmp_path, space=space, trials=6,
             log=lambda _: None)


def test_neural_trials_report_epochs_and_a_hopeless_one_is_pruned(tiny, tmp_path):
    train, test = tiny
    fixed = {"epochs": 3, "hidden": "64", "batch_size": 64, "num_threads": 1}
    space = build_space("mlp", None, ["lr=0.000001:0.01:log"], fixed,
                        sorted(accepted_params("mlp", fixed)))
    space = {"lr": space["lr"]}
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(storage=storage, study_name="fmnist-mlp", direction="maximize")
    for _ in range(4):
        study.enqueue_trial({"lr": 0.003})
    study.enqueue_trial({"lr": 0.000001})  # learns nothing in 3 epochs: below the median
    result = tune("mlp", train, test, tmp_path, space=space, fixed=fixed, trials=5,
                  pruner="median", retrain=False, log=lambda _: None)
    trials = optuna.load_study(study_name="fmnist-mlp", storage=storage).get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE"] * 4 + ["PRUNED"]
    assert all(len(t.intermediate_values) == 3 for t in trials[:4])
    assert len(trials[4].intermediate_values) == 2  # stopped after epoch 2 (1 warm-up epoch)
    assert result.final is None and not (tmp_path / "best").exists()
    assert (tmp_path / "figures" / "learning_curves.png").is_file()


def _finished(db: Path) -> int:
    try:
        storage = open_storage(f"sqlite:///{db}")
        return finished_count(optuna.load_study(study_name="fmnist-random-forest",
                                                storage=storage))
    except (KeyError, FmnistError, optuna.exceptions.OptunaError):
        return 0


def test_sqlite_study_resumes_after_its_process_is_killed(tmp_path):
    out = tmp_path / "tune"
    cmd = [*FMNIST, "tune", "random-forest", "--trials", "5", "--train-size", "600",
           "--out", str(out), "--no-retrain"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while _finished(out / "study.db") < 2 and proc.poll() is None \
            and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-2000:]
    before = _finished(out / "study.db")
    assert 2 <= before < 5
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    trials = optuna.load_study(study_name="fmnist-random-forest",
                               storage=f"sqlite:///{out / 'study.db'}").get_trials()
    numbers = [t.number for t in trials]
    assert numbers == list(range(len(trials)))  # numbering continues, no duplicates
    counted = [t for t in trials if t.state.name == "COMPLETE"]
    assert len(counted) == 5  # the killed process's trials kept, the rest run on resume
    assert f"{5 - before} run by this worker" in done.stdout
