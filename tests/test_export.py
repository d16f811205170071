"""ONNX export: the file onnxruntime runs gives the model's own top-1 and probabilities, and a
model that cannot be exported faithfully is refused with no file written."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
from typer.testing import CliRunner

from fmnist.cli.app import app
from fmnist.data import Dataset
from fmnist.runs.export import INPUT, OUTPUT, ExportError, export_onnx, onnx_probabilities
from fmnist.runs.store import load, save
from test_store import fast_model

# Measured: every neural model, AdaBoost, logistic regression, the SVMs and the perceptron
# export exactly; see docs/predict.md for the full list and why the others are refused.
EXPORTED = ["cnn", "adaboost-cnn", "mlp", "logistic", "svm", "perceptron"]
REFUSED = {"random-forest": "does not reproduce", "knn": "does not reproduce",
           "bayes-1": "skl2onnx cannot convert", "hog-svm": "skl2onnx cannot convert"}


@pytest.fixture(scope="module")
def tiny(small_train: Dataset) -> Dataset:
    return small_train.head(n_per_class=60, seed=1)


def _saved(name: str, tiny: Dataset, folder: Path):
    model = fast_model(name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(tiny.images, tiny.labels)
    return load(save(model, folder, {"model": name, "image_shape": [28, 28]}))


@pytest.mark.parametrize("name", EXPORTED)
def test_export_reproduces_the_model(name: str, tiny: Dataset, small_test: Dataset,
                                     tmp_path: Path) -> None:
    run = _saved(name, tiny, tmp_path)
    path, report = export_onnx(run, tmp_path / "model.onnx", images=small_test.images)
    graph = onnx.load(str(path)).graph
    assert [i.name for i in graph.input] == [INPUT] and [o.name for o in graph.output] == [OUTPUT]
    assert graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    got = onnx_probabilities(path, small_test.images)
    expected = run.model.predict_proba(small_test.images)
    assert np.array_equal(got.argmax(1), expected.argmax(1))
    assert np.abs(got - expected).max() < 1e-4
    assert report == {"n_images": len(small_test), "top1_agreement": 1.0,
                      "max_abs_diff": pytest.approx(np.abs(got - expected).max())}


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_unfaithful_exports_are_refused(name: str, tiny: Dataset, small_test: Dataset,
                                        tmp_path: Path) -> None:
    run = _saved(name, tiny, tmp_path)
    with pytest.raises(ExportError, match=REFUSED[name]):
        export_onnx(run, tmp_path / "model.onnx", images=small_test.images)
    assert not list(tmp_path.glob("*.onnx")) and not list(tmp_path.glob(".*checking"))


def test_cli_export_checks_on_the_official_test_set(tiny: Dataset, fmnist_test: Dataset,
                                                    tmp_path: Path) -> None:
    run = _saved("logistic", tiny, tmp_path / "run")
    result = CliRunner().invoke(app, ["export", str(run.path), "--format", "onnx"])
    assert result.exit_code == 0, result.output
    assert "checked with onnxruntime on 10,000 test images: top-1 agreement 100.00%" \
        in result.stdout
    assert (run.path / "model.onnx").is_file()
    bad = CliRunner().invoke(app, ["export", str(run.path), "--format", "tflite"])
    assert bad.exit_code != 0 and "supported: onnx" in str(bad.exception)


def test_default_cnn_exports_with_the_same_answers(cnn_run, fmnist_test: Dataset,
                                                   tmp_path: Path) -> None:
    """The acceptance check on the real default model: same top-1 on all 10k test images."""
    run = load(cnn_run.run_dir)
    _, report = export_onnx(run, tmp_path / "cnn.onnx")
    assert report["n_images"] == len(fmnist_test) == 10_000
    assert report["top1_agreement"] == 1.0 and report["max_abs_diff"] < 1e-5


def test_int8_export_is_checked_and_refuses_classical_models(cnn_run, tiny: Dataset,
                                                             tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["export", str(cnn_run.run_dir), "--int8",
                                      "--out", str(tmp_path / "cnn.int8.onnx")])
    assert result.exit_code == 0, result.output
    agreement = float(result.stdout.split("top-1 agreement ")[1].split("%")[0])
    assert 99.0 <= agreement < 100.0  # checked, and really quantized (not the fp32 graph)
    ops = {node.op_type for node in onnx.load(tmp_path / "cnn.int8.onnx").graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    run = _saved("logistic", tiny, tmp_path / "run")
    with pytest.raises(ExportError, match="torch networks of 28×28 images only"):
        export_onnx(run, tmp_path / "logistic.onnx", int8=True)
    assert not list(tmp_path.glob("logistic*")) and not list(tmp_path.glob(".*checking"))
