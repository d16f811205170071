"""fmnist.runs.store: every registered model survives save → load with identical probabilities;
damaged, foreign or future runs fail with a message that says what is wrong."""

from __future__ import annotations

import hashlib
import json
import operator
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from fmnist.data import Dataset
from fmnist.models import create_model, get_spec, list_models
from fmnist.models.torch_estimator import TorchClassifier
from fmnist.models.torch_net import TrainedNet
from fmnist.runs.store import FORMAT_VERSION, META_FILE, LoadedRun, StoreError, load, save

# Overrides that make any registered model fit 600 images in a second or two. Only those the
# model accepts are applied (a model's own `quick` settings come first).
SPEED = {"epochs": 1, "max_train": 600, "n_estimators": 2, "max_iter": 5, "n_init": 1,
         "width": 4, "hidden": 16, "verbose": False, "n_jobs": 1, "eval_batch_size": 512}


def fast_model(name: str):
    """A registered model with its quick preset and the speed overrides it accepts (architecture
    sizes only where the model's defaults set them)."""
    spec = get_spec(name)
    keys = {k.removeprefix("estimator__") for k in create_model(name).get_params(deep=True)}
    params = dict(spec.quick)
    for key, value in SPEED.items():
        if key in keys and (key not in ("width", "hidden") or key in spec.defaults):
            params[key] = value
    return create_model(name, **params)


@pytest.fixture(scope="module")
def tiny(small_train: Dataset) -> Dataset:
    return small_train.head(n_per_class=60, seed=1)


@pytest.mark.parametrize("name", [spec.name for spec in list_models()])
def test_every_registered_model_round_trips(name: str, tiny: Dataset, small_test: Dataset,
                                            tmp_path: Path) -> None:
    model = fast_model(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence warnings on 200 images are expected
        model.fit(tiny.images, tiny.labels)
    images = small_test.images[:64]
    before = model.predict_proba(images)
    save(model, tmp_path, {"model": name, "image_shape": [28, 28]})
    loaded = load(tmp_path)
    # A TorchClassifier run loads as its trained network alone (no scikit-learn import).
    assert type(loaded.model) is (TrainedNet if type(model) is TorchClassifier else type(model))
    after = loaded.model.predict_proba(images)
    np.testing.assert_array_equal(after, before)
    np.testing.assert_array_equal(loaded.model.predict(images), model.predict(images))
    assert loaded.meta["model"] == name and loaded.meta["format_version"] == FORMAT_VERSION
    weights = loaded.meta["weights"]["file"]
    assert weights == ("model.safetensors" if get_spec(name).family == "neural"
                       else "model.skops")


def test_a_loaded_torch_run_saves_back_to_the_same_run(tmp_path: Path) -> None:
    """The shipped model loads as a `TrainedNet` (no scikit-learn) and saves back as the
    `TorchClassifier` run it is: same class in model.json, same weights, same probabilities."""
    from fmnist.weights import load_default

    shipped = load_default(graph=False)
    again = load(save(shipped.model, tmp_path / "again", {"model": shipped.meta["model"]}))
    assert type(again.model) is TrainedNet
    assert again.meta["estimator"] == shipped.meta["estimator"]
    assert again.meta["weights"]["sha256"] == shipped.meta["weights"]["sha256"]
    images = np.random.default_rng(0).integers(0, 256, (8, 28, 28), dtype=np.uint8)
    np.testing.assert_array_equal(again.model.predict_proba(images),
                                  shipped.model.predict_proba(images))


@pytest.fixture(scope="module")
def saved_run(tmp_path_factory: pytest.TempPathFactory, tiny: Dataset) -> tuple[Path, object]:
    model = create_model("logistic", max_iter=20)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(tiny.images, tiny.labels)
    run = save(model, tmp_path_factory.mktemp("run"), {"metrics": {"test_accuracy": 0.5}})
    return run, model


def _copy(run: Path, tmp_path: Path) -> Path:
    target = tmp_path / "copy"
    target.mkdir()
    for file in run.iterdir():
        (target / file.name).write_bytes(file.read_bytes())
    return target


def _edit_meta(run: Path, **changes: object) -> None:
    meta = json.loads((run / META_FILE).read_text())
    meta.update(changes)
    (run / META_FILE).write_text(json.dumps(meta))


def test_model_json_describes_the_run(saved_run: tuple[Path, object]) -> None:
    run, _ = saved_run
    meta = json.loads((run / META_FILE).read_text())
    assert meta["class_names"][0] == "T-shirt/top" and len(meta["class_names"]) == 10
    assert meta["metrics"] == {"test_accuracy": 0.5}
    assert meta["preprocessing"]["input"].startswith("raw uint8 pixels")
    assert {"python", "numpy", "scikit-learn", "skops"} <= set(meta["versions"])
    digest = hashlib.sha256((run / "model.skops").read_bytes()).hexdigest()
    assert meta["weights"]["sha256"] == digest
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]  # atomic: no leftovers
    loaded = load(run / META_FILE)  # the model.json path works as well as the folder
    assert isinstance(loaded, LoadedRun) and loaded.class_names == tuple(meta["class_names"])


def test_unknown_format_version_is_refused(saved_run, tmp_path: Path) -> None:
    run = _copy(saved_run[0], tmp_path)
    _edit_meta(run, format_version=FORMAT_VERSION + 1)
    with pytest.raises(StoreError, match=f"format version {FORMAT_VERSION + 1}.*reads format "
                                         f"version {FORMAT_VERSION} only"):
        load(run)
    _edit_meta(run, format_version=None)
    with pytest.raises(StoreError, match="no format version"):
        load(run)


def test_missing_and_corrupt_files(saved_run, tmp_path: Path) -> None:
    run = _copy(saved_run[0], tmp_path)
    with pytest.raises(StoreError, match="no such run folder"):
        load(tmp_path / "nowhere")
    (run / "model.skops").write_bytes((run / "model.skops").read_bytes()[:-10])
    with pytest.raises(StoreError, match="corrupt or were replaced"):
        load(run)
    (run / "model.skops").unlink()
    with pytest.raises(StoreError, match="cannot read the model weights"):
        load(run)
    (run / META_FILE).write_text("{not json")
    with pytest.raises(StoreError, match="cannot be read as JSON"):
        load(run)
    (run / META_FILE).unlink()
    with pytest.raises(StoreError, match="model.json is missing"):
        load(run)


def test_a_damaged_skops_archive_is_reported(saved_run, tmp_path: Path) -> None:
    run = _copy(saved_run[0], tmp_path)
    junk = b"PK\x03\x04 not really a zip"
    (run / "model.skops").write_bytes(junk)
    weights = json.loads((run / META_FILE).read_text())["weights"]
    _edit_meta(run, weights={**weights, "sha256": hashlib.sha256(junk).hexdigest(),
                             "bytes": len(junk)})
    with pytest.raises(StoreError, match="not a valid skops file"):
        load(run)


def test_weights_outside_the_run_folder_are_refused(saved_run, tmp_path: Path) -> None:
    run = _copy(saved_run[0], tmp_path)
    weights = json.loads((run / META_FILE).read_text())["weights"]
    _edit_meta(run, weights={**weights, "file": "../model.skops"})
    with pytest.raises(StoreError, match=r"names file '\.\./model\.skops'.*expected one of"):
        load(run)


def test_foreign_types_in_a_skops_file_are_refused(tiny: Dataset, tmp_path: Path) -> None:
    """A model built on a function never saves (nor loads: tests/test_security_store.py)."""
    model = make_pipeline(FunctionTransformer(operator.pos), LogisticRegression(max_iter=5))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(tiny.images.reshape(len(tiny), -1)[:, :50], tiny.labels)
    with pytest.raises(StoreError, match=r"outside fmnist's allow-list.*_operator\.pos"):
        save(model, tmp_path)


def test_torch_runs_only_name_fmnist_classes(tmp_path: Path) -> None:
    (tmp_path / "model.safetensors").write_bytes(b"x")
    meta = {"format_version": FORMAT_VERSION, "class_names": ["a", "b"], "classes": [0, 1],
            "estimator": {"class": "os.system", "state_meta": {}},
            "weights": {"file": "model.safetensors", "format": "safetensors",
                        "sha256": hashlib.sha256(b"x").hexdigest(), "bytes": 1}}
    (tmp_path / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(StoreError, match="not one of fmnist's tensor-saved models"):
        load(tmp_path)


def test_failed_save_leaves_the_previous_run_intact(saved_run, tmp_path: Path) -> None:
    run = _copy(saved_run[0], tmp_path)
    before = (run / META_FILE).read_bytes()
    with pytest.raises(StoreError, match="cannot store"):
        save(saved_run[1], run, {"bad": object()})
    assert (run / META_FILE).read_bytes() == before
    load(run)


def test_unfitted_models_are_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="not fitted"):
        save(create_model("logistic"), tmp_path)
    assert not (tmp_path / META_FILE).exists()


SKOPS_IMPORT_PROBE = """
import sys
from fmnist.runs.store import skops_io
skops_io()
loaded = sorted(m for m in ("torch", "dask", "cupy") if m in sys.modules)
from skops.io._trusted_types import SKLEARN_ESTIMATOR_TYPE_NAMES as trusted
from sklearn.utils import all_estimators  # the plain walk (imports torch now)
import sklearn.externals.array_api_compat.torch  # the hidden shim is importable again
plain = sorted(f"{c.__module__}.{c.__name__}" for _, c in all_estimators()
               if c.__module__.startswith("sklearn."))
print(loaded, sorted(trusted) == plain, len(plain))
"""


def test_skops_is_imported_without_torch_and_trusts_the_same_estimators() -> None:
    """`skops_io()` hides scikit-learn's torch/dask/cupy shims from skops' estimator walk (4 s
    of a classical model's save or load): no such library gets loaded, skops' default list is
    still every scikit-learn estimator, and the shims import normally afterwards."""
    result = subprocess.run([sys.executable, "-c", SKOPS_IMPORT_PROBE], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    loaded, same, count = result.stdout.rsplit(" ", 2)
    assert (loaded, same) == ("[]", "True") and int(count) > 100, result.stdout
