"""Hostile or odd data and options (issue 11 #4 #10 #13 #14 #23 #28, issue 14 #2): each is one
clear `FmnistError` before any work and before any run folder exists — never a traceback, a leaked
warning, a half-written `status: training` folder, or a stale "verified"."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from fmnist.cli.app import app
from fmnist.data import Dataset, load_csv
from fmnist.data.resolve import resolve_data
from fmnist.data.sources import OFFICIAL_FILES, locate, read_verified, search_dirs
from fmnist.errors import ConfigError, DataError, FmnistError
from fmnist.evaluation.compare import compare
from fmnist.models import create_model
from fmnist.reporting.explore import explore
from fmnist.runs.train import train_run


def _fmnist(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fmnist", *args], capture_output=True,
                          text=True, timeout=300, env={**os.environ, **(env or {})})


def _csv(path: Path, images: np.ndarray, labels: np.ndarray, bom: bool = False) -> Path:
    width = images.shape[1] * images.shape[2]
    header = "label," + ",".join(f"pixel{i + 1}" for i in range(width))
    rows = [f"{y}," + ",".join(map(str, x.ravel())) for x, y in zip(images, labels, strict=True)]
    path.write_text(("\ufeff" if bom else "") + "\n".join([header, *rows]) + "\n",
                    encoding="utf-8")
    return path


def _invoke(*args: str) -> BaseException | None:
    """Run the CLI in-process; the exception it ended with (None when it succeeded)."""
    result = CliRunner().invoke(app, list(args))
    if isinstance(result.exception, SystemExit) and result.exception.code == 0:
        return None
    return result.exception


# --- #4: `data verify` hashes every time -----------------------------------------------------

def test_verify_rehashes_a_label_edited_in_place_with_its_mtime_put_back(tmp_path: Path) -> None:
    """The old memo (path, size, mtime) said "verified (memo)" for a file whose bytes changed."""
    if locate("test-labels") is None:
        pytest.skip("the official Fashion-MNIST files are not installed")
    folder = tmp_path / "copy"
    folder.mkdir()
    for key in OFFICIAL_FILES:
        source = locate(key)
        target = folder / source.name
        if key == "test-labels":  # an uncompressed copy, so one byte is one label
            target = folder / source.name.removesuffix(".gz")
            target.write_bytes(gzip.decompress(source.read_bytes()))
        else:
            os.symlink(source, target)
    labels = folder / "t10k-labels-idx1-ubyte"
    first = _fmnist("data", "verify", "--data-dir", str(folder))
    assert first.returncode == 0, first.stderr
    assert "verified" in first.stdout and "memo" not in first.stdout
    before = labels.stat()
    with labels.open("r+b") as handle:  # label 0 of the test set: 9 → 0
        handle.seek(8)
        handle.write(b"\x00" if handle.read(1) != b"\x00" else b"\x01")
    os.utime(labels, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert labels.stat().st_mtime_ns == before.st_mtime_ns
    assert labels.stat().st_size == before.st_size
    second = _fmnist("data", "verify", "--data-dir", str(folder))
    assert second.returncode == 2, second.stdout
    assert "checksum mismatch" in second.stderr and "Traceback" not in second.stderr
    with pytest.raises(DataError, match="checksum mismatch"):
        read_verified("test-labels", labels)


# --- #28: FMNIST_DATA that cannot work is said, not skipped ---------------------------------

@pytest.mark.parametrize("kind", ["file", "missing"])
def test_fmnist_data_that_is_not_a_folder_is_an_error(tmp_path: Path, kind: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "data.csv"
    if kind == "file":
        target.write_text("label\n")
    monkeypatch.setenv("FMNIST_DATA", str(target))
    expected = "is a file" if kind == "file" else "does not exist"
    with pytest.raises(DataError, match=f"FMNIST_DATA=.* {expected}"):
        search_dirs()
    with pytest.raises(DataError, match=f"--data-dir .* {expected}"):  # the option alike
        search_dirs(target)
    if kind == "file":  # the command line says it in one line (once is enough: slow start)
        result = _fmnist("data", "verify", env={"FMNIST_DATA": str(target)})
        assert result.returncode == 2 and expected in result.stderr
        assert "Traceback" not in result.stderr


# --- #13 / #23: own data edge cases ------------------------------------------------------------

def test_csv_with_a_byte_order_mark_is_accepted(tmp_path: Path, small_test: Dataset) -> None:
    ds = load_csv(_csv(tmp_path / "bom.csv", small_test.images[:20], small_test.labels[:20],
                       bom=True))
    np.testing.assert_array_equal(ds.images, small_test.images[:20])


@pytest.mark.parametrize(("text", "expected"), [
    ("label\n0\n1\n", "no pixel columns"),
    ("label,pixel1,pixel2,pixel3,pixel4\n", "no image rows"),
    # one header field over the csv module's 128 KiB limit: a `csv.Error`, once a traceback
    ("label," + "p" * 200_000 + "\n0,1\n", "malformed CSV row"),
])
def test_csv_without_pixels_or_rows_is_one_clear_error(tmp_path: Path, text: str,
                                                       expected: str) -> None:
    path = tmp_path / "odd.csv"
    path.write_text(text)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's "input contained no data" must not leak
        with pytest.raises(DataError, match=expected):
            load_csv(path)


def test_own_data_edge_cases_fail_before_any_run_folder(tmp_path: Path,
                                                        small_train: Dataset) -> None:
    """One-class data, two rows, classes without images (saving failed after training),
    train/test of different sizes, 2×2 images for `cnn`: each is one `FmnistError` before
    training, and `--out` stays empty."""
    x, y = small_train.images, small_train.labels
    small = (x[:, ::14, ::14] // 2) * 2  # 2×2 images
    cases = {
        "one-class": (_csv(tmp_path / "one.csv", x[y == 3][:40], y[y == 3][:40]), None,
                      "logistic", "one class"),
        "two-rows": (_csv(tmp_path / "two.csv", x[:2], y[:2]), None, "logistic", "too few"),
        "missing-classes": (_csv(tmp_path / "half.csv", x[y < 5][:100], y[y < 5][:100]), None,
                            "logistic", "no training images of 5 of its 10 classes"),
        "sizes": (_csv(tmp_path / "a.csv", x[:60], y[:60]),
                  _csv(tmp_path / "b.csv", x[:40, :14, :14], y[:40]), "logistic", "14×14"),
        "cnn-2x2": (_csv(tmp_path / "tiny.csv", small[:200], y[:200]), None, "cnn",
                    "2×2 images"),
    }
    for name, (data, test_data, model, expected) in cases.items():
        out = tmp_path / f"runs-{name}"
        args = ["train", model, "--data", str(data), "--out", str(out)]
        if test_data is not None:
            args += ["--test-data", str(test_data)]
        error = _invoke(*args)
        assert isinstance(error, FmnistError), (name, error)
        assert expected in str(error), (name, str(error))
        assert not out.exists() or not any(out.iterdir()), name


@pytest.mark.parametrize(("args", "expected"), [
    (["--test-data", "x.csv"], "give --data too"),
    (["--size", "64"], "applies to --data photo folders"),
    (["--data", "DATA_CSV", "--size", "64"], "is a CSV"),
    (["--data", "DATA_CSV", "--size", "100000"], "between 8 and 512"),
    (["--seed", "-1"], "--seed"),
    (["--seed", str(2**32)], "--seed"),
])
def test_options_that_would_be_ignored_or_crash_are_refused(tmp_path: Path, args: list[str],
                                                            expected: str,
                                                            small_test: Dataset) -> None:
    """Found while hunting: `--test-data` without `--data` and `--size` off photo folders were
    silently ignored; `--size 100000` prepared 10⁵×10⁵ floats per photo; a negative seed gave a
    NumPy traceback after the data was loaded."""
    data = _csv(tmp_path / "d.csv", small_test.images[:100], small_test.labels[:100])
    out = tmp_path / "runs"
    args = [str(data) if a == "DATA_CSV" else a for a in args]
    result = CliRunner().invoke(app, ["train", "logistic", *args, "--out", str(out)])
    error = result.exception
    if isinstance(error, SystemExit):  # rejected by the option's own range: a usage error
        assert result.exit_code == 2 and expected in result.output, result.output
    else:
        assert isinstance(error, ConfigError), error
        assert expected in str(error)
    assert not out.exists() or not any(out.iterdir())


def test_out_naming_a_file_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    error = _invoke("train", "bayes-1", "--train-size", "100", "--out", str(tmp_path / "file"))
    assert isinstance(error, FmnistError) and "cannot create the run folder" in str(error)


def test_a_fifo_named_csv_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "data.csv"
    os.mkfifo(fifo)
    with pytest.raises(DataError, match="not a regular file"):
        load_csv(fifo)


def test_sigterm_marks_the_run_interrupted(tmp_path: Path, fmnist_train: Dataset) -> None:
    """`timeout` or `kill` used to end a training with `status: training` left behind."""
    process = subprocess.Popen(
        [sys.executable, "-m", "fmnist", "train", "logistic", "--set", "max_iter=100000",
         "--out", str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not list(tmp_path.glob("*/run.json")):
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.1)
        time.sleep(0.5)  # inside fit
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, err
    (run_json,) = tmp_path.glob("*/run.json")
    assert json.loads(run_json.read_text())["status"] == "interrupted"


# --- #14 / issue 14 #2: bad parameters ------------------------------------------------------

@pytest.mark.parametrize(("args", "expected"), [
    (["knn", "--set", "n_neighbors=0"], "n_neighbors"),
    (["cnn", "--set", "width=0"], "cnn"),
    (["knn", "--val-fraction", "0"], "strictly between 0 and 1"),
    (["logistic", "--val-fraction", "1.5"], "between 0 and 1"),
    (["cnn", "--val-fraction", "1.5"], "below 1"),
    (["kmeans", "--set", "n_clusters=0"], "n_clusters"),
])
def test_bad_parameters_are_config_errors_before_the_run_folder(tmp_path: Path, args: list[str],
                                                                expected: str) -> None:
    out = tmp_path / "runs"
    error = _invoke("train", *args, "--train-size", "300", "--out", str(out))
    assert isinstance(error, ConfigError) and isinstance(error, ValueError), error
    assert expected in str(error)
    assert not out.exists() or not any(out.iterdir())


def test_a_failure_after_the_fit_marks_the_run_failed(small_train: Dataset,
                                                      tmp_path: Path) -> None:
    """Scoring or saving that fails must not leave `status: training` behind."""
    wrong = Dataset(small_train.images[:50, :14, :14].copy(), small_train.labels[:50])
    with pytest.raises(Exception):  # noqa: B017 - whatever the model raises on 14×14 images
        train_run("bayes-1", {}, small_train, wrong, run_dir=tmp_path / "run")
    request = json.loads((tmp_path / "run" / "run.json").read_text())
    assert request["status"] == "failed" and request["error"]


def test_config_error_is_a_value_error_for_sklearn_tooling(small_train: Dataset,
                                                           tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="n_neighbors"):
        train_run("knn", {"n_neighbors": -3}, small_train, None, run_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(("name", "params"), [
    ("cnn", {"epochs": 0}), ("cnn", {"optimizer": "nope"}), ("cnn", {"device": "abacus"}),
    ("knn", {"reduce": "bogus"}), ("knn", {"no_such_parameter": 1}),
])
def test_estimators_raise_config_errors_sklearn_understands(name: str, params: dict,
                                                            small_train: Dataset) -> None:
    """Used directly (a grid search, `check_estimator`), a bad setting is a `ValueError`."""
    x, y = small_train.images[:60], small_train.labels[:60]
    with pytest.raises(ConfigError):
        create_model(name, **params).fit(x, y)


def test_fit_leaves_the_callers_torch_rng_and_threads_alone(small_train: Dataset) -> None:
    torch.manual_seed(1234)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        state = torch.random.get_rng_state()
        model = create_model("cnn", epochs=1, width=8, max_train=200, num_threads=2,
                             verbose=False, random_state=7)
        model.fit(small_train.images, small_train.labels)
        assert torch.equal(torch.random.get_rng_state(), state)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("content", [
    "[1, 2]", '{"model": 5, "params": {}}', '{"model": "cnn", "params": []}',
    '{"model": "cnn", "params": {}, "data_args": {"size": "big"}}', "[" * 100_000,
    '{"model": "cnn", "pad": "' + "x" * (2 << 20) + '"}',
])
def test_damaged_run_file_is_one_line(tmp_path: Path, content: str) -> None:
    (tmp_path / "run.json").write_text(content)
    error = _invoke("train", "--resume", str(tmp_path))
    assert isinstance(error, FmnistError), error
    assert "run.json" in str(error)


# --- #25: concurrent writers never share a temporary name ----------------------------------

def test_atomic_writes_from_many_threads_never_mix(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from fmnist.fileio import atomic_write_bytes

    target = tmp_path / "report.html"
    payloads = [bytes([i]) * 200_000 for i in range(16)]
    seen: set[bytes] = set()

    def write(i: int) -> None:
        for _ in range(20):
            atomic_write_bytes(target, payloads[i])
            seen.add(target.read_bytes())

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(write, range(16)))
    assert seen <= set(payloads)  # every read saw one whole payload, never a mix
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]  # no temporary left


def test_compare_leaves_another_writers_temporary_files_alone(tmp_path: Path,
                                                              small_train: Dataset,
                                                              small_test: Dataset) -> None:
    """The old fixed names (`best.tmp`, `report.html.tmp`, …) were deleted or overwritten by a
    second comparison writing into the same folder."""
    tmp_path.joinpath("best.tmp").mkdir()
    tmp_path.joinpath("best.tmp", "model.json").write_text("another process's copy")
    for name in ("report.html.tmp", "report.md.tmp", "results.csv.tmp"):
        tmp_path.joinpath(name).write_text("another process's report")
    result = compare(small_train.head(n_per_class=20), small_test.head(n_per_class=10),
                     tmp_path, models=["bayes-1"], with_explore=False, log=lambda _: None)
    assert result.best_dir == tmp_path / "best" and (tmp_path / "best" / "model.json").is_file()
    assert tmp_path.joinpath("best.tmp", "model.json").read_text() == "another process's copy"
    for name in ("report.html.tmp", "report.md.tmp", "results.csv.tmp"):
        assert tmp_path.joinpath(name).read_text() == "another process's report"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # nothing of ours left


# --- #10: text from data never reaches matplotlib as mathtext -------------------------------

MATH_NAMES = ("$x^2$", r"$\notacommand$", "back\\slash", "under_score")


def test_class_names_with_mathtext_and_backslashes_make_figures(tmp_path: Path,
                                                                small_test: Dataset) -> None:
    """A photo folder whose class folders are named like TeX: compare and explore write every
    figure (an invalid `$…$` name used to raise inside matplotlib after training)."""
    root = tmp_path / "photos"
    for label, name in enumerate(MATH_NAMES):
        folder = root / name
        folder.mkdir(parents=True)
        for i, image in enumerate(small_test.images[small_test.labels == label][:10]):
            Image.fromarray(image).save(folder / f"{i}.png")
    train, test, description = resolve_data(root)
    assert train.class_names == tuple(sorted(MATH_NAMES))
    result = compare(train, test, tmp_path / "cmp", models=["bayes-1"], with_explore=False,
                     data_description=description, log=lambda _: None)
    assert result.best is not None, result.results[0].error
    assert result.figures and all(Path(p).stat().st_size > 0 for p in result.figures.values())
    explored = explore(train, test, tmp_path / "explore")
    assert explored.figures and all(Path(p).is_file() for p in explored.figures.values())


def test_figure_helper_escapes_dollars_and_bounds_length() -> None:
    from fmnist.reporting.plots import plain

    assert plain("$x^2$") == r"\$x^2\$"
    assert len(plain("a" * 10_000)) == 60
