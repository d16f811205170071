"""`fmnist train` end to end: own data (Kaggle CSV, photo folders), run folders, resume."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from fmnist.data import Dataset
from fmnist.runs.store import load
from fmnist.runs.train import train_run


def _fmnist(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fmnist", *args], capture_output=True,
                          text=True, timeout=300)


def _write_csv(path: Path, ds: Dataset) -> Path:
    header = "label," + ",".join(f"pixel{i + 1}" for i in range(784))
    rows = [f"{label}," + ",".join(map(str, image.ravel()))
            for label, image in zip(ds.labels, ds.images, strict=True)]
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_train_on_kaggle_csv(tmp_path: Path, small_train: Dataset, small_test: Dataset) -> None:
    train_csv = _write_csv(tmp_path / "train.csv", small_train)
    test_csv = _write_csv(tmp_path / "test.csv", small_test)
    result = _fmnist("train", "logistic", "--data", str(train_csv), "--test-data",
                     str(test_csv), "--out", str(tmp_path / "runs"))
    assert result.returncode == 0, result.stderr
    assert "test accuracy: 0.7" in result.stdout or "test accuracy: 0.8" in result.stdout
    (run_dir,) = (tmp_path / "runs").iterdir()
    meta = json.loads((run_dir / "model.json").read_text())
    assert meta["model"] == "logistic" and meta["n_train"] == len(small_train)
    assert meta["metrics"]["n_test"] == len(small_test)
    assert json.loads((run_dir / "run.json").read_text())["status"] == "done"


def test_train_on_own_photo_folder(tmp_path: Path, small_train: Dataset) -> None:
    """Two classes of 'photos' (dataset images negated onto a light background, as a camera
    would see them) train a model with the folder's own class names; 20% is held out."""
    for label, name in ((1, "trousers"), (8, "bags")):
        folder = tmp_path / "photos" / name
        folder.mkdir(parents=True)
        for i, image in enumerate(small_train.images[small_train.labels == label][:30]):
            Image.fromarray(255 - image).resize((112, 112)).save(folder / f"{i}.png")
    result = _fmnist("train", "knn", "--data", str(tmp_path / "photos"), "--out",
                     str(tmp_path / "runs"))
    assert result.returncode == 0, result.stderr
    (run_dir,) = (tmp_path / "runs").iterdir()
    run = load(run_dir)
    assert run.class_names == ("bags", "trousers")
    assert "48 train / 12 test (stratified 20% held out" in run.meta["dataset"]["description"]
    assert run.meta["metrics"]["test_accuracy"] >= 0.9


@pytest.mark.data  # the official dataset, loaded by the command itself
def test_resume_continues_an_interrupted_neural_run(tmp_path: Path) -> None:
    """A run stopped after epoch 1 of 2 (its checkpoint and run.json on disk) is finished by
    `fmnist train --resume`, on the same data subset, training only the missing epoch."""
    first = _fmnist("train", "cnn", "--epochs", "1", "--train-size", "600", "--set", "width=8",
                    "--set", "verbose=false", "--out", str(tmp_path))
    assert first.returncode == 0, first.stderr
    (run_dir,) = tmp_path.iterdir()
    request = json.loads((run_dir / "run.json").read_text())
    assert request["data_args"]["train_size"] == 600
    request["params"]["epochs"] = 2  # as if it had been asked for 2 and stopped after 1
    request["status"] = "training"
    (run_dir / "run.json").write_text(json.dumps(request))
    result = _fmnist("train", "--resume", str(run_dir))
    assert result.returncode == 0, result.stderr
    history = json.loads((run_dir / "history.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [1, 2]
    assert json.loads((run_dir / "model.json").read_text())["n_train"] == 600


def test_resume_of_a_one_step_model_is_a_clear_error(tmp_path: Path, small_train: Dataset,
                                                      small_test: Dataset) -> None:
    train_run("bayes-1", {}, small_train, small_test, run_dir=tmp_path / "run")
    result = _fmnist("train", "--resume", str(tmp_path / "run"))
    assert result.returncode == 2
    assert "cannot be resumed" in result.stderr and "Traceback" not in result.stderr


def test_bad_set_value_is_a_clear_error() -> None:
    result = _fmnist("train", "logistic", "--set", "oops")
    assert result.returncode == 2
    assert "--set expects key=value" in result.stderr


@pytest.mark.data  # the official dataset, loaded by the command itself
def test_subset_and_cluster_scores_are_recorded(tmp_path: Path) -> None:
    """`--train-size` trains on a stratified subset and says so; k-means adds ARI/NMI."""
    result = _fmnist("train", "kmeans", "--train-size", "3000", "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "ari (test set):" in result.stdout and "nmi (test set):" in result.stdout
    (run_dir,) = tmp_path.iterdir()
    meta = json.loads((run_dir / "model.json").read_text())
    assert meta["n_train"] == 3000
    assert "stratified subset of 3000" in meta["dataset"]["description"]
    assert meta["metrics"]["test_accuracy"] > 0.4
    extra = meta["metrics"]["extra"]
    assert 0.2 < extra["nmi"] < 1 and 0 < extra["ari"] < 1
