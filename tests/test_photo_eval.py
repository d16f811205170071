"""The shipped default model and real-photo evaluation (`fmnist evaluate --photos DIR`).

The shipped model is real package data (safetensors + model.json + its ONNX graph, checksummed);
these tests load it with no run folder, check the checksum guards and that the graph is the
network, and score small labelled folders whose right counts are known by construction (one
deliberately wrong label, one unreadable file).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from fmnist import weights
from fmnist.cli.app import app
from fmnist.errors import DataError, FmnistError
from fmnist.evaluation.photos import evaluate_photo_folder, read_labelled_folder
from fmnist.predict import predict
from fmnist.runs.store import StoreError

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "photos"
needs_photos = pytest.mark.skipif(not (SHARED / "bag.jpg").is_file(),
                                  reason="../shared/photos is not beside the repository")
EASY = {"bag.jpg": "Bag", "dress.jpg": "Dress", "trouser.jpg": "Trouser"}


@pytest.fixture(scope="module")
def shipped():
    return weights.load_default()


def test_shipped_model_loads_and_predicts_without_a_run_folder(shipped) -> None:
    meta = shipped.meta
    assert meta["metrics"]["test_accuracy"] >= 0.930  # the floor on the official test
    total = sum(p.stat().st_size for p in weights.default_run_dir().iterdir())
    assert total <= 5 * 2**20
    image = np.zeros((28, 28), np.uint8)
    image[4:24, 9:19] = 200  # a tall bright block: trousers, roughly
    (prediction,) = predict(shipped, image)
    assert len(prediction.top_k) == 3 and prediction.top_k[0][1] > 0


def test_shipped_model_json_is_checksummed(tmp_path, monkeypatch) -> None:
    copy = tmp_path / "default"
    shutil.copytree(weights.default_run_dir(), copy)
    meta = json.loads((copy / "model.json").read_text())
    meta["class_names"][0] = "Evil"
    (copy / "model.json").write_text(json.dumps(meta))
    monkeypatch.setattr(weights, "default_run_dir", lambda: copy)
    with pytest.raises(StoreError, match="model.json was changed"):
        weights.load_default()


def test_shipped_graph_is_the_shipped_network(fmnist_test) -> None:
    """The default model runs from its ONNX graph where ONNX Runtime is installed; that graph
    gives the network's own answers (ship_model.py checked all 10k test images; here 2,000)."""
    pytest.importorskip("onnxruntime")
    from fmnist.models.torch_net import TrainedNet
    from fmnist.runs.onnx_model import OnnxClassifier

    graph, network = weights.load_default(), weights.load_default(graph=False)
    assert isinstance(graph.model, OnnxClassifier) and isinstance(network.model, TrainedNet)
    assert graph.class_names == network.class_names and graph.meta == network.meta
    images = fmnist_test.images[:2000]
    got, expected = graph.model.predict_proba(images), network.model.predict_proba(images)
    assert got.shape == expected.shape == (2000, 10)
    assert np.abs(got - expected).max() < 1e-4
    assert (got.argmax(1) == expected.argmax(1)).all()


def test_shipped_graph_is_checksummed(tmp_path, monkeypatch) -> None:
    pytest.importorskip("onnxruntime")
    copy = tmp_path / "default"
    shutil.copytree(weights.default_run_dir(), copy)
    graph = bytearray((copy / weights.GRAPH_FILE).read_bytes())
    graph[len(graph) // 2] ^= 0x01  # one bit of one weight
    (copy / weights.GRAPH_FILE).write_bytes(bytes(graph))
    monkeypatch.setattr(weights, "default_run_dir", lambda: copy)
    with pytest.raises(StoreError, match="graph was changed"):
        weights.load_default()
    (copy / weights.GRAPH_FILE).unlink()
    with pytest.raises(StoreError, match="no such shipped ONNX graph"):
        weights.load_default()
    assert weights.load_default(graph=False).model is not None  # the network needs no graph


def test_evaluate_never_writes_into_the_shipped_model_folder() -> None:
    """`fmnist evaluate RUN` writes its figures into RUN; the package's own folder is pinned
    package data, so it is refused before anything is written."""
    before = sorted(p.name for p in weights.default_run_dir().iterdir())
    result = CliRunner().invoke(app, ["evaluate", str(weights.default_run_dir())])
    assert isinstance(result.exception, FmnistError) and "shipped inside" in str(result.exception)
    assert sorted(p.name for p in weights.default_run_dir().iterdir()) == before


@needs_photos
def test_predict_cli_uses_the_shipped_model_and_keeps_the_old_form(tmp_path) -> None:
    runner = CliRunner()
    new = runner.invoke(app, ["predict", str(SHARED / "bag.jpg"), "--json"])
    assert new.exit_code == 0, new.output
    assert json.loads(new.output)["results"][0]["label"] == "Bag"
    old = runner.invoke(app, ["predict", str(weights.default_run_dir()), str(SHARED / "bag.jpg"),
                              "--pipeline", "paper"])
    assert old.exit_code == 0 and "Bag" in old.output


def _labelled_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in EASY:
        shutil.copy(SHARED / name, folder / name)
    (folder / "broken.jpg").write_bytes(b"not a jpeg at all")
    lines = [f"{name}\t{label}" for name, label in EASY.items()]
    lines[0] = "bag.jpg\tCoat"  # deliberately wrong: the model's right answer counts as wrong
    (folder / "labels.tsv").write_text("\n".join([*lines, "broken.jpg\tShirt"]) + "\n")
    return folder


@needs_photos
def test_photo_evaluation_counts(tmp_path, shipped) -> None:
    folder = _labelled_folder(tmp_path)
    report = tmp_path / "sheet.html"
    summary = evaluate_photo_folder(shipped, folder, report=report).summary()
    assert (summary["photos"], summary["scored"], summary["unreadable"]) == (4, 3, 1)
    assert summary["top1"] == 2 and summary["wrong"] == 1
    assert summary["per_class"]["Coat"] == {"photos": 1, "top1": 0, "top2": 0}
    low, high = summary["top1_ci"]
    assert low < 2 / 3 < high
    page = report.read_text()
    assert page.count("data:image/png;base64,") > 3 * 5 and "broken.jpg" in page
    assert "http://" not in page and "https://" not in page  # self-contained


@needs_photos
def test_evaluate_cli_on_class_subfolders(tmp_path) -> None:
    folder = tmp_path / "byclass"
    for name, label in EASY.items():
        (folder / label).mkdir(parents=True)
        shutil.copy(SHARED / name, folder / label / name)
    result = CliRunner().invoke(app, ["evaluate", "--photos", str(folder),
                                      "--report", str(tmp_path / "r.html")])
    assert result.exit_code == 0, result.output
    assert "top-1: 3/3" in result.output and (tmp_path / "r.html").is_file()


def test_labels_must_name_known_classes_and_files_in_the_folder(tmp_path) -> None:
    (tmp_path / "labels.tsv").write_text("a.jpg\tSocks\n")
    with pytest.raises(DataError, match="labels.tsv:1"):
        read_labelled_folder(tmp_path, ("Bag", "Coat"))
    (tmp_path / "labels.tsv").write_text("../outside.jpg\tBag\n")
    with pytest.raises(DataError, match="not a file in this folder"):
        read_labelled_folder(tmp_path, ("Bag", "Coat"))


@needs_photos
def test_serve_without_a_run_uses_the_shipped_model(shipped) -> None:
    """`fmnist serve` with no RUN serves the shipped model; the answer carries the 28×28 seen."""
    from fastapi.testclient import TestClient

    from fmnist.serve import create_app

    with TestClient(create_app(shipped), base_url="http://127.0.0.1") as client:
        upload = {"file": ("trouser.jpg", (SHARED / "trouser.jpg").read_bytes(), "image/jpeg")}
        answer = client.post("/predict", files=upload).json()["predictions"][0]
    assert answer["label"] == "Trouser" and answer["image_png"]
