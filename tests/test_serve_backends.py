"""The serving backends (`fmnist.serve.backends`): ONNX Runtime gives the model's own answers
through the real server, hostile input is still a 4xx on it, and without onnxruntime there is
one clear path (auto falls back, an explicit `--backend onnx` is a one-line error); the int8
graph (`--backend int8`) answers like the model on nearly every test image and refuses what it
cannot quantize.

The model is the shipped default (a ResNet-20 with flip test-time augmentation, so the graph
holds both views), loaded through the store like `fmnist serve` does.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from fmnist.errors import FmnistError
from fmnist.serve import create_app
from fmnist.serve.backends import make_backend
from fmnist.weights import load_default
from test_security_serve import connect, json_post, real_server

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def shipped():
    """The shipped network itself (the graph beside it is tested below)."""
    return load_default(graph=False)


def _answers(port: int, images: np.ndarray) -> list[dict]:
    """Every prediction for `images`, sent 16 to a request on one keep-alive connection."""
    out = []
    with connect(port) as sock:
        for start in range(0, len(images), 16):
            doc = json.dumps({"images": images[start:start + 16].tolist()})
            status, _, body = json_post(sock, doc)
            assert status == 200, body
            out += json.loads(body)["predictions"]
    return out


def test_onnx_backend_gives_the_models_answers_through_the_server(shipped, fmnist_test) -> None:
    images = fmnist_test.images[:96]
    answers = {}
    for backend in ("onnx", "native"):
        app = create_app(shipped, backend=backend)
        assert app.state.served.backend == backend
        with real_server(app) as port:
            answers[backend] = _answers(port, images)
    onnx, native = answers["onnx"], answers["native"]
    assert [a["label"] for a in onnx] == [a["label"] for a in native]
    for a, b in zip(onnx, native, strict=True):
        assert [t["label"] for t in a["top"]] == [t["label"] for t in b["top"]]
        assert abs(a["probability"] - b["probability"]) < 1e-4
    truth = [shipped.class_names[y] for y in fmnist_test.labels[:96]]
    assert np.mean([a["label"] == t for a, t in zip(onnx, truth, strict=True)]) > 0.85


def test_hostile_json_is_still_4xx_on_the_onnx_backend(shipped) -> None:
    app = create_app(shipped, backend="onnx")
    huge_row = "[" + ",".join(["1" + "0" * 400] + ["0"] * 27) + "]"
    cases = [('{"image": [' + ",".join([huge_row] * 28) + "]}", 422, "invalid_pixels"),
             ("[" * 10_000 + "]" * 10_000, 400, "invalid_json"),
             (json.dumps({"image": [[0] * 27] * 28}), 422, "invalid_shape"),
             (json.dumps({"image": [[True] * 28] * 28}), 422, "invalid_pixels")]
    with real_server(app) as port, connect(port) as sock:
        for doc, status, code in cases:
            got, _, body = json_post(sock, doc)
            assert (got, json.loads(body)["error"]) == (status, code)
        got, _, body = json_post(sock, json.dumps({"image": [[0] * 28] * 28}))  # still served
        assert got == 200 and json.loads(body)["predictions"]


def test_int8_backend_names_the_models_class_on_nearly_every_image(shipped,
                                                                  fmnist_test) -> None:
    int8 = make_backend(shipped.model, (28, 28), "int8")
    assert int8.name == "int8" and "of 2,000 test images" in int8.note
    images, labels = fmnist_test.images[-1000:], fmnist_test.labels[-1000:]  # not the check's
    fp32 = make_backend(shipped.model, (28, 28), "onnx").predict_proba(images)
    got = int8.predict_proba(images)
    assert got.shape == fp32.shape and np.allclose(got.sum(axis=1), 1, atol=1e-4)
    assert np.mean(got.argmax(1) == fp32.argmax(1)) >= 0.99
    assert abs(np.mean(got.argmax(1) == labels) - np.mean(fp32.argmax(1) == labels)) <= 0.01
    assert not np.array_equal(got, fp32)  # really another graph, not the fp32 one renamed


def test_int8_refuses_what_it_cannot_quantize(shipped, small_train, tmp_path,
                                              monkeypatch) -> None:
    from sklearn.neighbors import KNeighborsClassifier

    from fmnist.runs.quantize import int8_graph

    knn = KNeighborsClassifier(1).fit(small_train.images[:50].reshape(50, -1),
                                      small_train.labels[:50])
    with pytest.raises(FmnistError, match="torch networks only"):
        make_backend(knn, (28, 28), "int8")
    with pytest.raises(FmnistError, match="calibrated on 28×28 images"):
        make_backend(shipped.model, (32, 32), "int8")
    # run from a folder whose own `fmnist` package would take over a child started there
    (tmp_path / "fmnist").mkdir()
    (tmp_path / "fmnist" / "__init__.py").write_text("raise SystemExit('shadowed')")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FmnistError, match="cannot build the int8 graph: ") as error:
        int8_graph(b"not an ONNX graph")
    assert "\n" not in str(error.value) and "shadowed" not in str(error.value)


def test_auto_picks_onnx_for_a_network_and_native_for_a_classical_model(shipped,
                                                                        small_train) -> None:
    from sklearn.neighbors import KNeighborsClassifier

    assert make_backend(shipped.model, (28, 28)).name == "onnx"
    knn = KNeighborsClassifier(1).fit(small_train.images[:50].reshape(50, -1),
                                      small_train.labels[:50])
    assert make_backend(knn, (28, 28)).name == "native"
    with pytest.raises(FmnistError, match="unknown backend 'tensorrt'"):
        make_backend(shipped.model, (28, 28), "tensorrt")


def test_without_onnxruntime_auto_falls_back_and_onnx_is_an_error(shipped, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # what `import` sees when it is absent
    app = create_app(shipped)
    assert app.state.served.backend == "native"
    assert "onnxruntime not installed" in app.state.served.backend_note
    with pytest.raises(FmnistError, match="onnxruntime not installed"):
        create_app(shipped, backend="onnx")


def test_cli_backend_onnx_without_onnxruntime_is_one_line() -> None:
    script = ("import runpy, sys; sys.modules['onnxruntime'] = None; "
              "sys.argv = ['fmnist', 'serve', '--backend', 'onnx', '--port', '0']; "
              "runpy.run_module('fmnist', run_name='__main__')")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "onnxruntime not installed" in lines[0], out.stderr
