"""Hostile run folders (issue 11 #1, #2, #8, #11, #15): nothing in a model folder runs code,
allocates beyond its bounds or ends in a traceback.

Every crafted folder here is a real one: a real model saved by `fmnist.runs.store.save`, then
its `model.json` or weights replaced the way an attacker would (recomputing the SHA-256 and
size that model.json records, since anyone can). Payloads that would run code create a marker
file; each test checks the marker is absent after fmnist refused the folder — and, for the
code-execution payload, that the payload really does run when loaded the naive way.
"""

from __future__ import annotations

import builtins
import hashlib
import io
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import skops.io as sio
from numpy.f2py.crackfortran import myeval
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer
from threadpoolctl import threadpool_limits

from fmnist.data import Dataset
from fmnist.errors import FmnistError
from fmnist.models import create_model, list_models
from fmnist.models.torch_net import MAX_EVAL_BATCH
from fmnist.runs.skops_types import (
    ALLOWED_LOADERS,
    ALLOWED_TYPES,
    MODEL_TYPES,
    schema_types,
)
from fmnist.runs.store import (
    MAX_TENSORS,
    META_FILE,
    TORCH_CLASSES,
    StoreError,
    load,
    save,
    uses_torch_protocol,
)
from test_store import fast_model

FMNIST = [sys.executable, "-m", "fmnist"]


@pytest.fixture(scope="module")
def few(fmnist_train: Dataset) -> Dataset:
    """200 training images (20 per class): enough for every model to fit in about a second."""
    return fmnist_train.head(n_per_class=20, seed=3)


def _fit(model, images: np.ndarray, labels: np.ndarray):
    """Fit on one thread: on a busy machine, OpenMP/BLAS thread pools on 200 images cost
    seconds of spinning per model instead of milliseconds of work."""
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore")  # convergence warnings on 200 images are expected
        return model.fit(images, labels)


@pytest.fixture(scope="module")
def skops_run(few: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved logistic-regression run (weights in model.skops)."""
    model = _fit(create_model("logistic", max_iter=20), few.images, few.labels)
    return save(model, tmp_path_factory.mktemp("skops-run"),
                {"model": "logistic", "image_shape": [28, 28], "seed": 0})


@pytest.fixture(scope="module")
def torch_run(few: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved one-epoch cnn run (weights in model.safetensors)."""
    model = _fit(fast_model("cnn"), few.images, few.labels)
    return save(model, tmp_path_factory.mktemp("torch-run"),
                {"model": "cnn", "image_shape": [28, 28], "seed": 0})


@pytest.fixture(scope="module")
def mlp_run(few: Dataset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved mlp run: its first layer's weights fix the input size (the cnn's speednet pools
    globally, so its weights fit any size and cannot tell a wrong one)."""
    model = _fit(fast_model("mlp"), few.images, few.labels)
    return save(model, tmp_path_factory.mktemp("mlp-run"),
                {"model": "mlp", "image_shape": [28, 28], "seed": 0})


def _copy(run: Path, tmp_path: Path) -> Path:
    target = tmp_path / "run"
    shutil.copytree(run, target)
    return target


def _meta(run: Path) -> dict:
    return json.loads((run / META_FILE).read_text())


def _write_meta(run: Path, meta: dict) -> None:
    (run / META_FILE).write_text(json.dumps(meta))


def _plant_weights(run: Path, payload: bytes) -> None:
    """Replace the weights and re-sign them in model.json, as anyone can."""
    meta = _meta(run)
    (run / meta["weights"]["file"]).write_bytes(payload)
    meta["weights"].update(sha256=hashlib.sha256(payload).hexdigest(), bytes=len(payload))
    _write_meta(run, meta)


# --- #1: the skops allow-list ------------------------------------------------------------

# Settings beyond the registry defaults whose saved files hold other types: probability SVMs
# (calibration), k-d trees under each distance (knn on few dimensions) and two-class boosting.
VARIANTS = [("svm", {"probability": True}, False), ("knn", {"reduce": "pca:5"}, False),
            ("knn", {"reduce": "pca:5", "p": 1}, False),
            ("knn", {"reduce": "pca:5", "p": 3}, False), ("gradient-boosting", {}, True)]


def test_allow_list_is_exactly_what_models_need(few: Dataset) -> None:
    """Every registered classical model (and the variants above) saves only listed types, and
    every listed model type is needed by one of them; neural models name a listed class."""
    seen_loaders: set[str] = set()
    seen_types: set[str] = set()
    two = few.labels < 2
    cases = [(s.name, {}, False) for s in list_models() if s.family != "neural"] + VARIANTS
    for name, extra, binary in cases:
        model = fast_model(name).set_params(**extra)
        images, labels = (few.images[two], few.labels[two]) if binary else (few.images,
                                                                            few.labels)
        payload = sio.dumps(_fit(model, images, labels))
        with zipfile.ZipFile(io.BytesIO(payload)) as archive:
            loaders, types = schema_types(json.loads(archive.read("schema.json")))
        missing = (types - ALLOWED_TYPES) | (loaders - ALLOWED_LOADERS)
        assert not missing, f"{name} {extra}: add to fmnist.runs.skops_types: {missing}"
        assert set(sio.get_untrusted_types(data=payload)) <= ALLOWED_TYPES
        seen_loaders |= loaders
        seen_types |= types
    assert not MODEL_TYPES - seen_types, f"listed but never needed: {MODEL_TYPES - seen_types}"
    assert not ALLOWED_LOADERS - seen_loaders - {"CachedNode"}, "a listed loader is unused"
    for spec in list_models():
        if spec.family == "neural":
            model = create_model(spec.name)
            assert uses_torch_protocol(model)
            cls = type(model)
            assert f"{cls.__module__}.{cls.__qualname__}" in TORCH_CLASSES


def _exploit_pipeline(few: Dataset) -> Pipeline:
    """Input pixels → bytes → numpy.f2py's `myeval`: the issue's eval chain, built only from
    NumPy names (which the old package-prefix trust rule admitted)."""
    head = _fit(LogisticRegression(max_iter=5), few.images.reshape(len(few), -1), few.labels)
    return Pipeline([("bytes", FunctionTransformer(np.frombuffer, kw_args={"dtype": "S784"})),
                     ("eval", FunctionTransformer(myeval)), ("clf", head)])


def _code_image(marker: Path) -> np.ndarray:
    code = f"__import__('pathlib').Path({str(marker)!r}).touch()#".encode()
    return np.frombuffer(code.ljust(784, b" "), np.uint8).reshape(1, 28, 28)


def test_eval_chain_is_refused_before_anything_runs(few: Dataset, skops_run: Path,
                                                    tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payload = sio.dumps(_exploit_pipeline(few))
    # The payload is real: loaded the naive way and asked one question, it runs the code.
    naive = sio.loads(payload, trusted=sio.get_untrusted_types(data=payload))
    with pytest.raises(Exception):  # noqa: B017 - the classifier fails after the code ran
        naive.predict_proba(_code_image(marker))
    assert marker.exists()
    marker.unlink()

    run = _copy(skops_run, tmp_path)
    _plant_weights(run, payload)
    with pytest.raises(StoreError, match=r"refusing to load.*numpy\.f2py\.crackfortran\.myeval"
                       r".*only load models you trust") as info:
        load(run)
    assert "\n" not in str(info.value)
    assert "sklearn.preprocessing._function_transformer.FunctionTransformer" in str(info.value)
    images = tmp_path / "code.npy"
    np.save(images, _code_image(marker))
    done = subprocess.run([*FMNIST, "predict", str(run), str(images)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "refusing to load" in done.stderr and "Traceback" not in done.stderr
    assert not marker.exists()


def test_serve_and_evaluate_load_through_the_same_check(few: Dataset, skops_run: Path,
                                                        tmp_path: Path) -> None:
    from fmnist.serve.app import create_app

    run = _copy(skops_run, tmp_path)
    _plant_weights(run, sio.dumps(_exploit_pipeline(few)))
    with pytest.raises(StoreError, match="refusing to load"):
        create_app(run)
    done = subprocess.run([*FMNIST, "evaluate", str(run)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2 and "refusing to load" in done.stderr, done.stderr


@pytest.mark.parametrize(("function", "name"), [
    (builtins.eval, "builtins.eval"), (os.system, "posix.system"),
    (subprocess.getoutput, "subprocess.getoutput"), (np.add, "numpy.add")])
def test_function_references_are_refused(function, name: str, few: Dataset, skops_run: Path,
                                         tmp_path: Path) -> None:
    """Any function, even a harmless ufunc skops trusts by default: no model stores one."""
    model = Pipeline([("f", FunctionTransformer(function)),
                      ("clf", LogisticRegression())])
    model.steps[-1] = ("clf", _fit(LogisticRegression(max_iter=5), few.images.reshape(
        len(few), -1), few.labels))
    run = _copy(skops_run, tmp_path)
    _plant_weights(run, sio.dumps(model))
    with pytest.raises(StoreError, match=rf"refusing to load.*{re.escape(name)}"):
        load(run)


def test_a_pickle_renamed_skops_runs_nothing(skops_run: Path, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    run = _copy(skops_run, tmp_path)
    _plant_weights(run, pickle.dumps(Payload()))
    with pytest.raises(StoreError, match="not a valid skops file"):
        load(run)
    assert not marker.exists()


def test_save_refuses_what_load_would_refuse(few: Dataset, tmp_path: Path) -> None:
    model = Pipeline([("f", FunctionTransformer(np.negative)), ("clf", LogisticRegression())])
    _fit(model, few.images.reshape(len(few), -1), few.labels)
    with pytest.raises(StoreError, match="cannot save Pipeline.*FunctionTransformer"):
        save(model, tmp_path)
    assert not list(tmp_path.iterdir())


def test_tensor_runs_name_only_fmnist_estimators(torch_run: Path, tmp_path: Path) -> None:
    run = _copy(torch_run, tmp_path)
    meta = _meta(run)
    for dotted in ("fmnist.__main__.main", "os.system", "fmnist.runs.store.StoreError"):
        meta["estimator"]["class"] = dotted
        _write_meta(run, meta)
        with pytest.raises(StoreError, match="not one of fmnist's tensor-saved models"):
            load(run)


def _plant_model(run: Path, model, estimator_class: str) -> None:
    _plant_weights(run, sio.dumps(model))
    meta = _meta(run)
    meta["estimator"]["class"] = estimator_class
    _write_meta(run, meta)


def test_a_crafted_tree_cannot_index_outside_itself(few: Dataset, skops_run: Path,
                                                    tmp_path: Path) -> None:
    """Decision trees whose child index points past the node table, or whose split feature lies
    beyond the input's columns (compiled code would read out of bounds), are refused after
    loading, before any prediction."""
    model = _fit(fast_model("decision-tree"), few.images, few.labels)
    tree = model.pipeline_.steps[-1][1].tree_
    cls, args, state = tree.__reduce__()
    run = _copy(skops_run, tmp_path)
    for field, value, message in (("left_child", 10**6, "child index outside the tree"),
                                  ("feature", 5000, "feature that does not exist")):
        nodes = state["nodes"].copy()
        nodes[field][0] = value
        bad = cls(*args)
        bad.__setstate__({**state, "nodes": nodes})
        model.pipeline_.steps[-1][1].tree_ = bad
        _plant_model(run, model, "fmnist.models.classical.DecisionTreeModel")
        with pytest.raises(StoreError, match=message):
            load(run)


def test_crafted_hog_parameters_cannot_allocate(few: Dataset, skops_run: Path,
                                                tmp_path: Path) -> None:
    """`orientations` sizes skimage's histogram per image: 10^8 would take ~40 GB."""
    model = _fit(fast_model("hog-svm"), few.images, few.labels)
    model.pipeline_.steps[0][1].transformer_list[0][1].orientations = 10**8
    run = _copy(skops_run, tmp_path)
    _plant_model(run, model, "fmnist.models.classical.HOGSVMClassifier")
    with pytest.raises(StoreError, match="HOG parameters outside any sane range"):
        load(run)


# --- #2, #11, #15: model.json against its schema -----------------------------------------

BAD_FIELDS = [
    ({"image_shape": [100000, 100000]}, "image_shape"),
    ({"image_shape": ["28", "28"]}, "image_shape"),
    ({"image_shape": [28.5, 28]}, "image_shape"),
    ({"image_shape": [28]}, "image_shape"),
    ({"image_shape": [True, 28]}, "image_shape"),
    ({"image_shape": [64, 64]}, "fitted on 28×28"),
    ({"class_names": None}, "class_names"),
    ({"class_names": "T-shirt"}, "class_names"),
    ({"class_names": ["a", "b"]}, "classes"),
    ({"class_names": [str(i) for i in range(11)]}, "classes"),
    ({"class_names": ["x"] * 10}, "same name twice"),
    ({"class_names": [""] + [str(i) for i in range(9)]}, "class_names"),
    ({"class_names": [1] * 10}, "class_names"),
    ({"class_names": ["a\x1b[2J"] + [str(i) for i in range(9)]}, "class_names"),
    ({"classes": list(range(1, 11))}, "classes do not match"),
    ({"classes": [[0]] * 10}, "classes"),
    ({"format_version": "1"}, "format version '1'"),
    ({"format_version": True}, "format version True"),
    ({"format_version": 1.0}, "format version 1.0"),
    ({"weights": None}, "weights"),
    ({"estimator": "x"}, "estimator"),
    ({"seed": "zero"}, "seed"),
    ({"metrics": {"fit_seconds": "fast"}}, "fit_seconds"),
    ({"metrics": []}, "metrics"),
    ({"model": {"name": 1}}, "model"),
]


@pytest.mark.parametrize(("change", "field"), BAD_FIELDS,
                         ids=[f"{next(iter(c))}-{i}" for i, (c, _) in enumerate(BAD_FIELDS)])
def test_model_json_fields_are_checked(change: dict, field: str, skops_run: Path,
                                       tmp_path: Path) -> None:
    run = _copy(skops_run, tmp_path)
    _write_meta(run, {**_meta(run), **change})
    with pytest.raises(StoreError, match=field) as info:
        load(run)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("weights", [
    {"bytes": -1}, {"bytes": "12"}, {"bytes": 2**40}, {"sha256": "x"},
    {"file": "../model.skops"}, {"file": "model.json"}, {"format": "pickle"}])
def test_weights_entry_is_checked(weights: dict, skops_run: Path, tmp_path: Path) -> None:
    run = _copy(skops_run, tmp_path)
    meta = _meta(run)
    meta["weights"].update(weights)
    _write_meta(run, meta)
    with pytest.raises(StoreError, match="weights"):
        load(run)


def test_an_oversized_image_shape_allocates_nothing(torch_run: Path, tmp_path: Path) -> None:
    """[100000, 100000] in model.json and in the net's own state: refused in a blink by the CLI
    (it used to allocate until the kernel killed it)."""
    run = _copy(torch_run, tmp_path)
    meta = _meta(run)
    meta["estimator"]["state_meta"]["input_shape"] = [100000, 100000]
    _write_meta(run, meta)
    with pytest.raises(StoreError, match="input shape' must be an integer from 1 to 512"):
        load(run)
    meta["image_shape"] = [100000, 100000]
    _write_meta(run, meta)
    image = tmp_path / "x.npy"
    np.save(image, np.zeros((28, 28), np.uint8))
    done = subprocess.run([*FMNIST, "predict", str(run), str(image)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and "image_shape" in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("fixture", ["torch_run", "mlp_run"])
def test_a_net_cannot_be_told_another_image_size(fixture: str, request: pytest.FixtureRequest,
                                                 tmp_path: Path) -> None:
    """[64, 64] used to crash `export`; now 'image_shape' must agree with the net's own input
    shape, and that with the weights wherever the weights fix a size (the mlp's first layer)."""
    run = _copy(request.getfixturevalue(fixture), tmp_path)
    meta = _meta(run)
    meta["image_shape"] = [64, 64]
    _write_meta(run, meta)
    with pytest.raises(StoreError, match="fitted on 28×28"):
        load(run)
    meta["estimator"]["state_meta"]["input_shape"] = [64, 64]
    _write_meta(run, meta)
    if fixture == "mlp_run":
        with pytest.raises(StoreError, match="do not fit"):
            load(run)
    else:  # global pooling: the same weights are a valid 64×64 net
        assert load(run).model.predict(np.zeros((2, 64, 64), np.uint8)).shape == (2,)


def test_a_large_input_shape_predicts_in_small_batches(torch_run: Path, tmp_path: Path) -> None:
    """The cnn's weights fit any size, so a run may say 512×512 (a photo-folder model trained
    with `--size 512` does): inference then takes one image per batch, not hundreds — 256 such
    images would hold gigabytes of activations per layer."""
    import torch

    run = _copy(torch_run, tmp_path)
    meta = _meta(run)
    meta["image_shape"] = meta["estimator"]["state_meta"]["input_shape"] = [512, 512]
    _write_meta(run, meta)
    model = load(run).model
    assert model.eval_batch_size == 512  # the fixture's, counted in 28×28 images
    assert model._eval_batch(torch.device("cpu")) == 1
    assert model.predict(np.zeros((3, 512, 512), np.uint8)).shape == (3,)
    assert load(torch_run).model._eval_batch(torch.device("cpu")) == 512
    # a run may not choose its own inference batch without bound: 1e9 once held 32 images of
    # 512×512 in one 1.9 GB batch; the batch is capped, and a batch that is not a positive
    # integer is refused at load
    state = meta["estimator"]["state_meta"]
    state["params"]["eval_batch_size"] = 10**9
    _write_meta(run, meta)
    assert load(run).model._eval_batch(torch.device("cpu")) == MAX_EVAL_BATCH * 784 // 512**2
    for bad in (0, -5, "256", 1.5, True):
        state["params"]["eval_batch_size"] = bad
        _write_meta(run, meta)
        with pytest.raises(StoreError, match="eval_batch_size must be a positive integer"):
            load(run)


def test_a_safetensors_file_of_many_tensors_is_refused_before_building_them(
        torch_run: Path, tmp_path: Path) -> None:
    """400,000 one-byte tensors (30 MB) once took 11 s and 1 GB to build before the network
    refused them; the header is counted first."""
    from safetensors.numpy import save as save_arrays

    run = _copy(torch_run, tmp_path)
    payload = save_arrays({f"t{i}": np.zeros(1, np.uint8) for i in range(MAX_TENSORS + 1)})
    (run / "model.safetensors").write_bytes(payload)
    meta = _meta(run)
    meta["weights"].update(bytes=len(payload), sha256=hashlib.sha256(payload).hexdigest())
    _write_meta(run, meta)
    with pytest.raises(StoreError, match=f"{MAX_TENSORS + 1:,} tensors"):
        load(run)
    bad = b"\xff" * 8 + payload[8:]  # a header length beyond the file
    (run / "model.safetensors").write_bytes(bad)
    meta["weights"].update(sha256=hashlib.sha256(bad).hexdigest())
    _write_meta(run, meta)
    with pytest.raises(StoreError, match="not a valid safetensors file"):
        load(run)


def test_error_lines_cannot_drive_the_terminal(tmp_path: Path) -> None:
    """A run path (or any text from a file) with terminal escapes in an error line is printed
    escaped, like file names in `predict`'s output."""
    image = tmp_path / "x.npy"
    np.save(image, np.zeros((28, 28), np.uint8))
    done = subprocess.run([*FMNIST, "predict", "--run", str(tmp_path / "r\x1b[2Jx"),
                           str(image)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "\x1b" not in done.stderr, done.stderr
    assert "r\\x1b[2Jx" in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_deep_and_huge_json_is_one_line(skops_run: Path, tmp_path: Path) -> None:
    run = _copy(skops_run, tmp_path)
    text = (run / META_FILE).read_text()
    (run / META_FILE).write_text(text[:-2] + ', "deep": ' + "[" * 100_000 + "]" * 100_000
                                 + "}\n")
    with pytest.raises(StoreError, match=r"nests 100,?00\d levels deep"):
        load(run)
    (run / META_FILE).write_text(text[:-2] + ', "n": NaN}')
    with pytest.raises(StoreError, match="NaN is not valid JSON"):
        load(run)
    (run / META_FILE).write_text(text[:-2] + ', "n": -1e999}')  # overflows to -inf
    with pytest.raises(StoreError, match="-1e999 is out of range"):
        load(run)
    with open(run / META_FILE, "wb") as handle:  # sparse: 9 GB on paper, nothing on disk
        handle.truncate(9 << 30)
    with pytest.raises(StoreError, match="more than the"):
        load(run)


# --- #8: every file read from a run folder is bounded ------------------------------------

@pytest.mark.parametrize("name", [META_FILE, "model.skops"])
def test_symlinks_to_devices_and_huge_files_are_refused_fast(name: str, skops_run: Path,
                                                             tmp_path: Path) -> None:
    run = _copy(skops_run, tmp_path)
    (run / name).unlink()
    (run / name).symlink_to("/dev/zero")
    with pytest.raises(StoreError, match="not a regular file"):
        load(run)
    (run / name).unlink()
    huge = tmp_path / "huge"
    with open(huge, "wb") as handle:
        handle.truncate(50 << 30)
    (run / name).symlink_to(huge)
    with pytest.raises(StoreError, match="more than the"):
        load(run)
    (run / name).unlink()
    os.mkfifo(run / name)
    with pytest.raises(StoreError, match="not a regular file"):
        load(run)


def test_history_is_bounded_and_checked(skops_run: Path, tmp_path: Path) -> None:
    from fmnist.runs.store import read_history

    run = _copy(skops_run, tmp_path)
    assert read_history(run) is None
    (run / "history.json").write_text(json.dumps({"history": [{"epoch": 1, "loss": 0.5}]}))
    assert read_history(run) == [{"epoch": 1, "loss": 0.5}]
    (run / "history.json").write_text(json.dumps({"history": [{"epoch": "one"}]}))
    with pytest.raises(StoreError, match="per-epoch objects of numbers"):
        read_history(run)
    (run / "history.json").unlink()
    (run / "history.json").symlink_to("/dev/zero")
    with pytest.raises(StoreError, match="not a regular file"):
        read_history(run)


# --- fuzz: any mutation of a valid model.json loads or is refused in one line ------------

def _mutations(meta: dict, rng: np.random.Generator) -> dict:
    """One random damage of a model.json: a field dropped, retyped, made huge or deep."""
    meta = json.loads(json.dumps(meta))
    paths = list(_leaf_paths(meta))
    path = paths[rng.integers(len(paths))]
    parent = meta
    for key in path[:-1]:
        parent = parent[key]
    junk = [None, True, -1, 0, 2**64, 1e308, -0.5, "", "x" * 300, [], {}, [1, 2], ["a"] * 12,
            {"a": {"b": {}}}, "[" * 3, [[[[[[[]]]]]]], 28, [28, 28], [0, 28], "28"]
    choice = rng.integers(3)
    if choice == 0 and isinstance(parent, dict):
        del parent[path[-1]]
    elif choice == 1:
        parent[path[-1]] = junk[rng.integers(len(junk))]
    else:
        value = parent[path[-1]]
        for _ in range(int(rng.integers(1, 200))):
            value = [value] if rng.integers(2) else {"k": value}
        parent[path[-1]] = value
    return meta


def _leaf_paths(node, prefix=()):
    if isinstance(node, dict) and node:
        for key, value in node.items():
            yield prefix + (key,)
            yield from _leaf_paths(value, prefix + (key,))
    elif isinstance(node, list) and node:
        for i, value in enumerate(node[:3]):
            yield prefix + (i,)
            yield from _leaf_paths(value, prefix + (i,))


@pytest.mark.parametrize("fixture", ["skops_run", "torch_run"])
def test_fuzzed_model_json_loads_or_is_refused(fixture: str, request: pytest.FixtureRequest,
                                               tmp_path: Path) -> None:
    run = _copy(request.getfixturevalue(fixture), tmp_path)
    valid = _meta(run)
    rng = np.random.default_rng(11)
    outcomes = {"loaded": 0, "refused": 0}
    for _ in range(150):
        _write_meta(run, _mutations(valid, rng))
        try:
            loaded = load(run)
        except FmnistError as exc:
            assert "\n" not in str(exc)
            outcomes["refused"] += 1
        else:
            assert len(loaded.class_names) == len(loaded.model.classes_)
            outcomes["loaded"] += 1
    assert outcomes["refused"] > 50 and outcomes["loaded"] > 5, outcomes


def test_checkpoints_are_bounded_and_never_run_code(tmp_path: Path) -> None:
    """`--resume` reads <run>/checkpoints/checkpoint.pt: a device, a pickle payload or a
    checkpoint of the wrong shape is one FmnistError, and the payload never runs."""
    import torch

    from fmnist.models.engine import load_checkpoint

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    link = tmp_path / "zero.pt"
    link.symlink_to("/dev/zero")
    payload = tmp_path / "payload.pt"
    torch.save({"net": Payload()}, payload)
    listed = tmp_path / "list.pt"
    torch.save([1, 2, 3], listed)
    for path, message in ((link, "not a regular file"), (payload, "cannot read checkpoint"),
                          (listed, "not a checkpoint of fmnist")):
        with pytest.raises(FmnistError, match=message) as info:
            load_checkpoint(path)
        assert "\n" not in str(info.value)
    assert not marker.exists()


def test_resume_reads_run_json_bounded(tmp_path: Path) -> None:
    """#15: `--resume` on a run.json that is a FIFO (it used to block), a device, or nested
    100,000 deep is one FmnistError."""
    from fmnist.runs.train import read_run_request

    run = tmp_path / "run"
    run.mkdir()
    os.mkfifo(run / "run.json")
    with pytest.raises(FmnistError, match="not a regular file"):
        read_run_request(run)
    (run / "run.json").unlink()
    (run / "run.json").symlink_to("/dev/zero")
    with pytest.raises(FmnistError, match="not a regular file"):
        read_run_request(run)
    (run / "run.json").unlink()
    (run / "run.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(FmnistError, match="nests 100000 levels deep"):
        read_run_request(run)


def test_json_depth_ignores_strings_and_spans_chunks() -> None:
    from fmnist.files import _CHUNK, json_depth

    assert json_depth(b'{"a": [1, {"b": "[[[\\"[{"}], "c": "]]]"}') == 3
    deep = b"[" * (_CHUNK + 5) + b"]" * (_CHUNK + 5)  # deepest point in the second chunk
    assert json_depth(deep) == _CHUNK + 5
