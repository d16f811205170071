"""Shared fixtures: the real Fashion-MNIST where installed, small stratified subsets of it, and
an isolated cache folder so tests never touch the user's."""

from __future__ import annotations

import os

import pytest

from fmnist.data import Dataset, load_fashion_mnist
from fmnist.data.sources import locate
from fmnist.errors import DataError

DATA_FIXTURES = frozenset({"fmnist_train", "fmnist_test", "small_train", "small_test",
                           "cnn_run"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses the official dataset (through a fixture, directly or via
    another fixture) as `data`, so `pytest -m "not data"` is the fast tier that needs none.
    Tests that load the dataset some other way (a CLI subprocess) carry the mark themselves."""
    for item in items:
        if DATA_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.data)


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Point the verification memo and downloads at a temporary folder for the whole run."""
    os.environ["FMNIST_CACHE"] = str(tmp_path_factory.mktemp("fmnist-cache"))


def _load(split: str) -> Dataset:
    if locate(f"{split}-images") is None:
        pytest.skip("the official Fashion-MNIST files are not installed "
                    "(apt-get install dataset-fashion-mnist)")
    try:
        return load_fashion_mnist(split, allow_download=False)
    except DataError as exc:  # pragma: no cover - only on a broken install
        pytest.fail(f"installed dataset does not load: {exc}")


@pytest.fixture(scope="session")
def fmnist_train() -> Dataset:
    """The official 60k training split."""
    return _load("train")


@pytest.fixture(scope="session")
def fmnist_test() -> Dataset:
    """The official 10k test split."""
    return _load("test")


@pytest.fixture(scope="session")
def small_train(fmnist_train: Dataset) -> Dataset:
    """2,000 stratified training images (200 per class): enough to beat chance clearly."""
    return fmnist_train.head(n_per_class=200, seed=0)


@pytest.fixture(scope="session")
def small_test(fmnist_test: Dataset) -> Dataset:
    """1,000 stratified test images (100 per class)."""
    return fmnist_test.head(n_per_class=100, seed=0)


@pytest.fixture(scope="session")
def cnn_run(fmnist_train: Dataset, fmnist_test: Dataset,
            tmp_path_factory: pytest.TempPathFactory):
    """A saved run of the default `cnn` at width 8, trained briefly on all 60k images (≈ 35 s on
    2 AVX2 cores, test accuracy ≈ 0.91): the model that prediction, export and serving tests ask
    questions of. (Width 16 took twice as long.)

    Returns the `fmnist.runs.RunResult` (`.run_dir`, `.model`, `.metrics`).
    """
    from fmnist.runs.train import train_run

    return train_run("cnn", {"epochs": 2, "width": 8, "verbose": False}, fmnist_train,
                     fmnist_test, run_dir=tmp_path_factory.mktemp("cnn-run"), seed=0)
