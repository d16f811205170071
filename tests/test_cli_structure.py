"""The CLI's shape: light start-up, shared options, and the library functions behind the thin
commands (`--train-size`, `--resume`). Fast tier: no dataset needed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fmnist.data.dataset import (
    Dataset,
    default_class_names,
    per_class_indices,
    stratified_indices,
)
from fmnist.data.resolve import check_classes, training_subset
from fmnist.errors import FmnistError
from fmnist.runs.request import TrainRequest

HEAVY = ("numpy", "torch", "sklearn", "scipy", "skimage", "matplotlib", "PIL", "pandas")


def _loaded_after(code: str) -> list[str]:
    probe = f"import sys; {code}; print([m for m in {HEAVY!r} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    return json.loads(out.strip().replace("'", '"'))


def test_command_line_start_up_imports_nothing_heavy() -> None:
    """Building the whole CLI (every command registered, what `fmnist --help` does) and
    importing the package load no numpy, torch, scikit-learn, SciPy, matplotlib or Pillow: they
    cost seconds, and only the command that runs needs its share."""
    assert _loaded_after("import fmnist, fmnist.cli") == []


def test_listing_models_from_the_cli_stays_light() -> None:
    code = ("from typer.testing import CliRunner; from fmnist.cli import app; "
            "r = CliRunner().invoke(app, ['models']); assert r.exit_code == 0 and 'knn' in "
            "r.output, r.output")
    assert _loaded_after(code) == []


def _toy(n_per_class: int = 5, classes: int = 3) -> Dataset:
    labels = np.repeat(np.arange(classes), n_per_class)
    images = np.arange(len(labels) * 4, dtype=np.uint8).reshape(len(labels), 2, 2)
    return Dataset(images, labels, tuple(f"c{i}" for i in range(classes)), source="toy")


def test_training_subset_is_stratified_and_refuses_too_few() -> None:
    data = _toy()
    same, note = training_subset(data, None)
    assert same is data and note == ""
    assert training_subset(data, 100)[0] is data  # not smaller than the data: unchanged
    subset, note = training_subset(data, 6, seed=1)
    assert len(subset) == 6 and np.bincount(subset.labels).tolist() == [2, 2, 2]
    assert note == "; trained on a stratified subset of 6"
    with pytest.raises(FmnistError, match="--train-size 5 is too small; use at least 6"):
        training_subset(data, 5)


def _run_folder(tmp_path: Path, data_args: object) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"model": "knn", "params": {"n_neighbors": 3},
                                              "seed": 4, "data_args": data_args}))
    return run


def test_resume_request_is_read_back_from_the_run(tmp_path: Path) -> None:
    run = _run_folder(tmp_path, {"data": "x.csv", "size": 32, "train_size": 100})
    request = TrainRequest.resume(run)
    assert (request.model, request.params, request.seed) == ("knn", {"n_neighbors": 3}, 4)
    assert request.run_dir == run and request.data_args["size"] == 32


@pytest.mark.parametrize("bad", [{"size": "28; rm -rf /"}, {"train_size": True},
                                 {"data": ["a", "b"]}, {"unknown": 1}])
def test_resume_refuses_a_damaged_data_choice(tmp_path: Path, bad: dict) -> None:
    with pytest.raises(FmnistError, match="damaged run file"):
        TrainRequest.resume(_run_folder(tmp_path, bad))


@pytest.mark.data
def test_epoch_lines_stay_whole_when_output_is_not_a_terminal(tmp_path: Path) -> None:
    """Piped output is 80 columns wide to Rich: an epoch's summary line must not be wrapped."""
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    result = subprocess.run([sys.executable, "-m", "fmnist", "train", "mlp", "--epochs", "1",
                             "--train-size", "500", "--out", str(tmp_path)],
                            capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("epoch 1/1:")]
    assert len(line) > 80 and line.rstrip().endswith("img/s)")


def test_one_subset_rule_stratifies_and_survives_a_lone_class() -> None:
    """`stratified_indices` serves --train-size, `max_train` (classical and neural) and
    `Dataset.head`: class shares kept; a class with one image falls back to a random subset."""
    labels = np.repeat(np.arange(4), 25)
    index = stratified_indices(labels, 40, seed=3)
    assert np.all(np.diff(index) > 0) and np.bincount(labels[index]).tolist() == [10] * 4
    lone = np.append(labels, 4)
    assert len(stratified_indices(lone, 40, seed=3)) == 40
    grouped = per_class_indices(labels, 4, 3, seed=0)
    assert labels[grouped].tolist() == [0] * 3 + [1] * 3 + [2] * 3 + [3] * 3


def test_one_class_name_check_and_one_default() -> None:
    """`check_classes` is the one class-name check (train vs test, model vs test data);
    `default_class_names` the one fallback for a model that was given none."""
    data = _toy()
    check_classes(("c0", "c1", "c2"), data, "the model's")
    with pytest.raises(FmnistError, match=r"classes \['c0', 'c1', 'c2'\] differ from the "
                                          r"model's \['c0', 'c2', 'c1'\]"):
        check_classes(("c0", "c2", "c1"), data, "the model's")
    assert default_class_names(range(10))[0] == "T-shirt/top"
    assert default_class_names([0, 1, 5]) == ("0", "1", "5")
