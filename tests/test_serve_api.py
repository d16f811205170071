"""The HTTP API of `fmnist serve`, through FastAPI's TestClient: every endpoint, every bad input.

The served model is a real run (kNN on 2,000 real training images, saved and loaded back through
`fmnist.runs.store`), so these tests exercise the same path as `fmnist serve RUN`.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from crafted import png_header_only
from fmnist.data import CLASS_NAMES
from fmnist.images.photo import prepare_photo
from fmnist.predict import UNSURE_BELOW
from fmnist.runs.store import load
from fmnist.runs.train import train_run
from fmnist.serve import create_app
from fmnist.serve.app import Limits
from fmnist.serve.batching import MicroBatcher

REPO = Path(__file__).resolve().parents[1]


def shared_photos() -> Path:
    """`<repo>/../shared/photos`, or `$FMNIST_SHARED/photos`; the tests using it skip without."""
    root = Path(os.environ.get("FMNIST_SHARED", REPO.parent / "shared"))
    return root / "photos"


def photo_path(name: str) -> Path:
    path = shared_photos() / name
    if not path.is_file():
        pytest.skip(f"{path} is absent: the shared product photos are not checked out next to "
                    "the repository (set FMNIST_SHARED to their folder's parent)")
    return path


@pytest.fixture(scope="module")
def run_dir(small_train, small_test, tmp_path_factory) -> Path:
    """A saved kNN run: fits instantly, and its skops file goes through the store's loader."""
    out = tmp_path_factory.mktemp("serve-runs")
    return train_run("knn", {}, small_train, small_test, out_root=out).run_dir


@pytest.fixture(scope="module")
def client(run_dir):
    with TestClient(create_app(run_dir), raise_server_exceptions=False) as c:
        yield c


def png_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def decode_png(b64: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(b64))))


def assert_still_serving(client: TestClient) -> None:
    assert client.get("/healthz").json()["status"] == "ok"


# --- endpoints ------------------------------------------------------------------------------

def test_healthz(client):
    body = client.get("/healthz").json()
    assert body["status"] == "ok" and body["model"] == "knn"


def test_model_describes_the_run(client, run_dir):
    body = client.get("/model").json()
    meta = json.loads((run_dir / "model.json").read_text())
    assert body["name"] == "knn"
    assert body["class_names"] == list(CLASS_NAMES)
    assert body["image_shape"] == [28, 28]
    assert body["metrics"]["test_accuracy"] == pytest.approx(meta["metrics"]["test_accuracy"])
    assert 0.6 < body["metrics"]["test_accuracy"] <= 1.0
    assert body["params"] == meta["params"]
    assert body["run"] == run_dir.name


def test_page_and_its_assets_are_served_locally(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for asset, kind in (("/static/app.js", "javascript"), ("/static/style.css", "text/css")):
        assert f'"{asset}"' in page.text
        response = client.get(asset)
        assert response.status_code == 200 and kind in response.headers["content-type"]
        assert "http://" not in response.text and "https://" not in response.text
    assert "http://" not in page.text and "https://" not in page.text  # no CDN, no fonts


def test_json_predictions_match_the_model(client, run_dir, small_test):
    images = small_test.images[::100]  # 10 images, one per class in the stratified subset
    response = client.post("/predict?top_k=10", json={"images": images.tolist()})
    assert response.status_code == 200
    body = response.json()
    model = load(run_dir).model
    expected = model.predict_proba(images)
    assert len(body["predictions"]) == len(images)
    for pred, probs, image in zip(body["predictions"], expected, images, strict=True):
        assert pred["label"] == CLASS_NAMES[int(np.argmax(probs))]
        assert [t["probability"] for t in pred["top"]] == sorted(
            (round(float(p), 6) for p in probs), reverse=True)
        assert {t["label"] for t in pred["top"]} == set(CLASS_NAMES)
        assert pred["low_confidence"] == (pred["probability"] < UNSURE_BELOW)
        np.testing.assert_array_equal(decode_png(pred["image_png"]), image)
    assert set(body["timing"]) >= {"decode_ms", "queue_ms", "inference_ms", "total_ms"}


def test_json_that_only_the_standard_library_reads_is_read_the_same(client, small_test):
    """A byte-order mark and a lone surrogate in an unused string: orjson refuses both, `json`
    reads both, and the server answers as `json` would (fmnist.serve.inputs._load_json)."""
    image = small_test.images[0].tolist()
    plain = client.post("/predict", json={"image": image}).json()["predictions"][0]
    with_bom = b"\xef\xbb\xbf" + json.dumps({"image": image}).encode()
    answer = client.post("/predict", content=with_bom,
                         headers={"content-type": "application/json"})
    assert answer.status_code == 200 and answer.json()["predictions"][0]["top"] == plain["top"]
    surrogate = json.dumps({"image": image, "note": "\ud800"}).encode()
    refused = client.post("/predict", content=surrogate,
                          headers={"content-type": "application/json"})
    assert (refused.status_code, refused.json()["error"]) == (422, "invalid_request")


def test_predict_is_documented_with_its_top_k_bounds(client):
    operation = client.get("/openapi.json").json()["paths"]["/predict"]["post"]
    (top_k,) = operation["parameters"]
    assert top_k["name"] == "top_k" and top_k["schema"]["maximum"] == 100
    assert set(operation["requestBody"]["content"]) == {"multipart/form-data",
                                                         "application/json"}
    assert client.get("/predict").status_code == 405


def test_json_bare_array_and_top_k(client, small_test):
    body = client.post("/predict?top_k=2", json=small_test.images[0].tolist()).json()
    (pred,) = body["predictions"]
    assert len(pred["top"]) == 2 and pred["top"][0]["label"] == pred["label"]
    single = client.post("/predict", json={"image": small_test.images[0].tolist()}).json()
    assert single["predictions"][0]["label"] == pred["label"]
    assert len(single["predictions"][0]["top"]) == 3  # the default


def test_photo_upload_goes_through_the_photo_pipeline(client):
    path = photo_path("trouser.jpg")
    response = client.post("/predict", files={"file": (path.name, path.read_bytes(), "image/jpeg")})
    assert response.status_code == 200
    (pred,) = response.json()["predictions"]
    assert pred["source"] == "trouser.jpg"
    # the same 28×28 image `fmnist predict` would feed the model
    np.testing.assert_array_equal(decode_png(pred["image_png"]), prepare_photo(path).image)


def test_several_uploads_in_one_request_keep_their_order(client, small_test):
    files = [("file", (f"img{i}.png", png_bytes(255 - small_test.images[i]), "image/png"))
             for i in (0, 500, 900)]
    body = client.post("/predict", files=files).json()
    assert [p["source"] for p in body["predictions"]] == ["img0.png", "img500.png", "img900.png"]


def test_drawing_on_black_is_not_inverted(client):
    """The page's canvas sends white strokes on black: already the dataset's way round."""
    canvas = np.zeros((280, 280), np.uint8)
    canvas[40:240, 100:180] = 255  # a tall white block, like a trouser leg pair
    body = client.post("/predict", files={"file": ("drawing.png", png_bytes(canvas))}).json()
    seen = decode_png(body["predictions"][0]["image_png"])
    assert seen.shape == (28, 28) and seen[14, 14] > 200 and seen[14, 0] == 0


# --- bad input: a clear JSON error, the right status, and the server keeps serving ----------

TRUNCATED_JPEG = "truncated"
BAD_UPLOADS = [
    ("empty upload", b"", 400, "empty_file"),
    ("text file named .png", b"this is not an image\n" * 10, 415, "not_an_image"),
    ("truncated JPEG", TRUNCATED_JPEG, 400, "unreadable_image"),
    ("20000x20000 PNG header", png_header_only(20000, 20000), 413, "too_many_pixels"),
    ("7000x7000 PNG header (under Pillow's own bomb limit)", png_header_only(7000, 7000), 413,
     "too_many_pixels"),
    ("blank image", png_bytes(np.full((60, 40), 200, np.uint8)), 422, "no_object"),
]


@pytest.mark.parametrize(("case", "data", "status", "code"), BAD_UPLOADS,
                         ids=[c[0] for c in BAD_UPLOADS])
def test_bad_uploads(client, case, data, status, code):
    if data is TRUNCATED_JPEG:
        jpeg = io.BytesIO()
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (200, 200, 3), np.uint8)
                        ).save(jpeg, format="JPEG")
        data = jpeg.getvalue()[: len(jpeg.getvalue()) // 2]
    response = client.post("/predict", files={"file": ("photo.png", data, "image/png")})
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == code
    assert "photo.png" in body["detail"]  # names the file
    assert "Traceback" not in response.text
    assert_still_serving(client)


def _json(doc) -> dict:
    return {"content": json.dumps(doc), "headers": {"content-type": "application/json"}}


ROW = [0] * 28
BAD_REQUESTS = [
    ("text/plain body", {"content": b"hello", "headers": {"content-type": "text/plain"}},
     415, "unsupported_media_type"),
    ("no content type", {"content": b"hello"}, 415, "unsupported_media_type"),
    ("form-urlencoded", {"data": {"image": "x"}}, 415, "unsupported_media_type"),
    ("invalid JSON", {"content": b"{not json", "headers": {"content-type": "application/json"}},
     400, "invalid_json"),
    ("empty JSON body", {"content": b"", "headers": {"content-type": "application/json"}},
     400, "empty_body"),
    ("27x28 array", _json([ROW] * 27), 422, "invalid_shape"),
    ("28x28x3 array", _json([[[0, 0, 0]] * 28] * 28), 422, "invalid_shape"),
    ("empty list of images", _json({"images": []}), 422, "invalid_shape"),
    ("ragged rows", _json([ROW] * 27 + [[0] * 27]), 422, "invalid_pixels"),
    ("strings for pixels", _json([["a"] * 28] * 28), 422, "invalid_pixels"),
    ("pixel value 300", _json([ROW] * 27 + [[300] * 28]), 422, "invalid_pixels"),
    ("negative pixel", _json([ROW] * 27 + [[-1] * 28]), 422, "invalid_pixels"),
    ("NaN pixel", {"content": json.dumps([ROW] * 27 + [[float("nan")] * 28]),
                   "headers": {"content-type": "application/json"}}, 422, "invalid_pixels"),
    ("unknown key", _json({"pixels": [ROW] * 28}), 422, "invalid_request"),
    ("17 images", _json({"images": [[ROW] * 28] * 17}), 422, "too_many_images"),
    ("form without a file", {"files": {"note": (None, "hello")}}, 400, "no_file"),
    ("17 files", {"files": [("file", (f"{i}.png", b"x")) for i in range(17)]}, 400,
     "bad_request"),
    ("top_k=0", _json([ROW] * 28) | {"params": {"top_k": 0}}, 422, "invalid_request"),
    ("top_k not a number", _json([ROW] * 28) | {"params": {"top_k": "many"}}, 422,
     "invalid_request"),
    ("top_k=101", _json([ROW] * 28) | {"params": {"top_k": 101}}, 422, "invalid_request"),
    ("top_k with an underscore", _json([ROW] * 28) | {"params": {"top_k": "1_0"}}, 422,
     "invalid_request"),
    ("top_k in Arabic digits", _json([ROW] * 28) | {"params": {"top_k": "\u0663"}}, 422,
     "invalid_request"),
    ("infinite pixel", {"content": "[" + ",".join(["[1e400" + ",0" * 27 + "]"] * 28) + "]",
                        "headers": {"content-type": "application/json"}}, 422, "invalid_pixels"),
]


@pytest.mark.parametrize(("case", "kwargs", "status", "code"), BAD_REQUESTS,
                         ids=[c[0] for c in BAD_REQUESTS])
def test_bad_requests(client, case, kwargs, status, code):
    response = client.post("/predict", **kwargs)
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == code and body["detail"]
    assert "Traceback" not in response.text
    assert_still_serving(client)


def test_body_over_the_limit_is_413_declared_or_streamed(run_dir):
    app = create_app(run_dir, limits=Limits(max_body_bytes=100_000))
    with TestClient(app) as client:
        big = b"\0" * 100_001
        declared = client.post("/predict", files={"file": ("big.png", big)})
        assert declared.status_code == 413 and declared.json()["error"] == "payload_too_large"
        # a chunked body has no Content-Length: it is counted as it arrives
        streamed = client.post("/predict", content=iter([b"[" * 60_000, b"[" * 60_000]),
                               headers={"content-type": "application/json"})
        assert streamed.status_code == 413 and streamed.json()["error"] == "payload_too_large"
        assert_still_serving(client)


def test_default_body_limit_is_10_mb(client):
    response = client.post("/predict", content=b"0" * 10_000_001,
                           headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert "10,000,000" in response.json()["detail"]
    assert_still_serving(client)


def test_unknown_route_and_wrong_method_are_json(client):
    missing = client.get("/nope")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    wrong = client.get("/predict")
    assert wrong.status_code == 405 and wrong.json()["error"] == "method_not_allowed"


class Broken:
    """A fitted-looking model whose predict_proba fails: a bug on the server's side."""

    classes_ = np.arange(10)

    def predict_proba(self, images):
        raise RuntimeError("secret internal detail")


def test_a_failing_model_gives_500_json_without_trace_and_keeps_serving():
    with TestClient(create_app(Broken()), raise_server_exceptions=False) as client:
        for _ in range(2):  # the batch worker survives the first failure
            response = client.post("/predict", json=[ROW] * 28)
            assert response.status_code == 500
            assert response.json()["error"] == "internal_error"
            assert "secret" not in response.text and "Traceback" not in response.text
        assert_still_serving(client)


# --- concurrency: batched, never dropped, never mixed up -------------------------------------

class Slow:
    """Wraps a model so each call takes ≥ 20 ms: requests pile up while it runs."""

    def __init__(self, model):
        self.model, self.classes_, self.calls = model, model.classes_, []

    def predict_proba(self, images):
        self.calls.append(len(images))
        time.sleep(0.02)
        return self.model.predict_proba(images)


def test_concurrent_requests_are_batched_and_each_gets_its_own_answer(run_dir, small_test):
    slow = Slow(load(run_dir).model)
    app = create_app(slow, meta={"model": "slow-knn"})
    images = small_test.images[:64]
    expected = [CLASS_NAMES[i] for i in np.argmax(slow.model.predict_proba(images), axis=1)]

    async def fire() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            return await asyncio.gather(*(c.post("/predict", json=img.tolist())
                                          for img in images))

    responses = asyncio.run(fire())
    assert [r.status_code for r in responses] == [200] * 64
    assert [r.json()["predictions"][0]["label"] for r in responses] == expected
    assert sum(slow.calls) == 64 and len(slow.calls) <= 16  # merged into few model calls
    assert max(r.json()["timing"]["batch_images"] for r in responses) > 1
    app.state.batcher.close()


def test_batcher_groups_shapes_and_reports_failures():
    calls = []

    def proba(images):
        calls.append(images.shape)
        if images.shape[1] == 5:
            raise ValueError("bad size")
        return np.tile([0.25, 0.75], (len(images), 1))

    batcher = MicroBatcher(proba, max_batch=8)

    async def run():
        ok = batcher.predict(np.zeros((2, 28, 28), np.uint8))
        bad = batcher.predict(np.zeros((1, 5, 5), np.uint8))
        return await asyncio.gather(ok, bad, return_exceptions=True)

    good, failed = asyncio.run(run())
    batcher.close()
    assert good.probabilities.shape == (2, 2)
    assert isinstance(failed, ValueError)
    assert all(shape[1:] in ((28, 28), (5, 5)) for shape in calls)


# --- the command ------------------------------------------------------------------------------

def test_cli_serve_missing_run_is_a_clear_error(tmp_path):
    result = subprocess.run([sys.executable, "-m", "fmnist", "serve", str(tmp_path / "nope")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "no such run folder" in result.stderr and "Traceback" not in result.stderr


def test_a_bad_photo_costs_only_itself(client, small_test):
    """Each unreadable photo of a request is its own error entry; the others are scored."""
    good = [png_bytes(255 - small_test.images[i]) for i in (0, 1)]
    files = [("file", ("a.png", good[0], "image/png")),
             ("file", ("notes.png", b"not an image\n" * 10, "image/png")),
             ("file", ("b.png", good[1], "image/png")),
             ("file", ("empty.png", b"", "image/png"))]
    response = client.post("/predict", files=files)
    assert response.status_code == 200, response.text
    a, bad, b, empty = response.json()["predictions"]
    assert (a["source"], b["source"]) == ("a.png", "b.png") and a["label"] and b["label"]
    assert (bad["status"], bad["error"]) == (415, "not_an_image") and "notes.png" in bad["detail"]
    assert (empty["status"], empty["error"]) == (400, "empty_file")
    alone = client.post("/predict", files=[files[2]]).json()["predictions"][0]
    assert alone["top"] == b["top"]
    # when no photo can be read, the answer is the first one's error, as for a single photo
    response = client.post("/predict", files=[files[1], files[3]])
    assert response.status_code == 415 and response.json()["error"] == "not_an_image"


def test_a_request_s_photos_share_one_pixel_budget(run_dir):
    """Past `max_request_pixels` decoded, a photo is refused (413) before decoding; the photos
    before it are scored, and a smaller one after it may still fit."""
    big = png_bytes(np.pad(np.full((400, 300), 220, np.uint8), 100))  # 600×500 = 300,000
    small = png_bytes(np.pad(np.full((40, 20), 200, np.uint8), 20))  # 80×60 = 4,800
    app = create_app(run_dir, limits=Limits(max_request_pixels=700_000))
    with TestClient(app) as client:
        files = [("file", (f"{name}.png", data, "image/png"))
                 for name, data in (("big1", big), ("big2", big), ("big3", big),
                                    ("small", small))]
        entries = client.post("/predict", files=files).json()["predictions"]
        assert [e.get("status", 200) for e in entries] == [200, 200, 413, 200]
        assert entries[2]["error"] == "request_too_many_pixels"
        assert "big3.png" in entries[2]["detail"] and "700,000" in entries[2]["detail"]
        # a new request starts with the whole budget again
        assert client.post("/predict", files=files[2:3]).status_code == 200
        assert_still_serving(client)
