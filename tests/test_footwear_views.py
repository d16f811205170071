"""Tilted shoes: photos the model calls footwear are also scored turned (`fmnist.footwear_views`).

The unit tests pin the gate and the averaging; the shipped model shows that the views pay on
the dataset's own shoes turned by 40° and cost nothing on upright images; and one tilted-shoe
photo, made here from a test-set shoe, shows that `fmnist predict`, `fmnist evaluate --photos`
and `fmnist serve` all score a photo the same way, and a pixel array without the views.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from fmnist import weights
from fmnist.data.dataset import CLASS_NAMES
from fmnist.evaluation.photos import evaluate_photos
from fmnist.footwear_views import (
    ANGLES,
    GATE,
    merge_views,
    turn,
    turned_views,
    with_footwear_views,
)
from fmnist.images.photo import prepare_photo
from fmnist.predict import predict_paths, predict_proba, resolve_model

FOOTWEAR = [CLASS_NAMES.index(n) for n in ("Sandal", "Sneaker", "Ankle boot")]


@pytest.fixture(scope="module")
def shipped():
    return resolve_model(weights.load_default())


def _rows(*footwear_mass: float) -> np.ndarray:
    """Probability rows with the given mass on Sneaker and the rest on Coat."""
    proba = np.zeros((len(footwear_mass), 10))
    proba[:, CLASS_NAMES.index("Sneaker")] = footwear_mass
    proba[:, CLASS_NAMES.index("Coat")] = 1 - np.asarray(footwear_mass)
    return proba


def test_only_what_the_plain_view_calls_footwear_is_turned() -> None:
    images = np.random.default_rng(0).integers(0, 256, (3, 28, 28), dtype=np.uint8)
    views = turned_views(images, _rows(0.9, GATE - 0.01, GATE), CLASS_NAMES)
    assert views.rows.tolist() == [0, 2]
    assert views.images.shape == (2 * len(ANGLES), 28, 28) and views.images.dtype == np.uint8
    assert np.array_equal(views.images[len(ANGLES) + 1], turn(images[2], ANGLES[1]))
    custom = ("boot", "hat", *(f"c{i}" for i in range(8)))  # no footwear class of the dataset
    assert len(turned_views(images, _rows(0.9, 0.9, 0.9), custom)) == 0


def test_turned_rows_are_the_mean_of_plain_and_turned_views() -> None:
    images = np.zeros((3, 28, 28), np.uint8)
    proba = _rows(0.9, 0.1, 0.6)
    views = turned_views(images, proba, CLASS_NAMES)
    view_proba = np.random.default_rng(1).dirichlet(np.ones(10), len(views.images))
    merged = merge_views(proba, views, view_proba)
    assert np.array_equal(merged[1], proba[1])
    for k, row in enumerate(views.rows):
        own = view_proba[k * len(ANGLES):(k + 1) * len(ANGLES)]
        assert np.allclose(merged[row], (proba[row] + own.sum(0)) / (len(ANGLES) + 1))
    assert np.allclose(merged.sum(1), 1)


def test_turn_is_counter_clockwise_about_the_centre_on_black() -> None:
    bar = np.zeros((28, 28), np.uint8)
    bar[13:15, 4:24] = 255
    turned = turn(bar, 30.0)
    ys, xs = np.nonzero(turned > 128)
    assert ys[xs.argmax()] < 13 and ys[xs.argmin()] > 14  # the right end went up
    assert turned[0, 0] == 0 and abs(int(turned.sum()) - int(bar.sum())) < 0.1 * bar.sum()


def test_views_win_back_tilted_test_set_shoes_and_cost_nothing_upright(shipped,
                                                                      fmnist_test) -> None:
    def right(images: np.ndarray, labels: np.ndarray) -> tuple[int, int]:
        """Right answers without and with the turned views."""
        plain = predict_proba(shipped, images)
        both = with_footwear_views(plain, images, shipped.class_names,
                                   lambda x: predict_proba(shipped, x))
        return int((plain.argmax(1) == labels).sum()), int((both.argmax(1) == labels).sum())

    foot = np.flatnonzero(np.isin(fmnist_test.labels, FOOTWEAR))[:200]
    for degrees in (40.0, -40.0):
        tilted = np.stack([turn(image, degrees) for image in fmnist_test.images[foot]])
        plain, both = right(tilted, fmnist_test.labels[foot])
        # measured with the shipped model: 166 → 184 (+40°) and 138 → 181 (−40°) of 200
        assert both >= plain + 10, (degrees, plain, both)
    plain, both = right(fmnist_test.images[:1000], fmnist_test.labels[:1000])
    assert both >= plain  # upright images: footwear is already level


def _tilted_shoe_photo(fmnist_test) -> bytes:
    """A test-set sneaker turned by 40°, drawn as a photo: dark on white, 4× the size, JPEG."""
    index = int(np.flatnonzero(fmnist_test.labels == CLASS_NAMES.index("Sneaker"))[0])
    shoe = Image.fromarray(255 - turn(fmnist_test.images[index], 40.0))
    buffer = io.BytesIO()
    shoe.resize((112, 112), Image.LANCZOS).convert("RGB").save(buffer, "JPEG", quality=92)
    return buffer.getvalue()


def test_predict_evaluate_and_serve_score_a_photo_the_same_way(
        shipped, fmnist_test, tmp_path) -> None:
    from fastapi.testclient import TestClient

    from fmnist.serve import create_app

    photo = tmp_path / "shoe.jpg"
    photo.write_bytes(_tilted_shoe_photo(fmnist_test))
    image = prepare_photo(photo).image
    plain = predict_proba(shipped, image[None])
    expected = with_footwear_views(plain, image[None], shipped.class_names,
                                   lambda x: predict_proba(shipped, x))[0]
    assert plain[0, FOOTWEAR].sum() >= GATE and not np.allclose(expected, plain[0], atol=1e-3)

    def top(pairs) -> dict[str, float]:
        return dict(pairs)

    array = tmp_path / "shoe.npy"
    np.save(array, image)
    from_photo, from_array = predict_paths(shipped, [photo, array], top_k=10)
    want = {shipped.class_names[i]: p for i, p in enumerate(expected)}
    assert top(from_photo.top_k) == pytest.approx(want, abs=1e-6)
    unturned = {shipped.class_names[i]: p for i, p in enumerate(plain[0])}
    assert top(from_array.top_k) == pytest.approx(unturned, abs=1e-6)  # arrays: as they are

    (outcome,) = evaluate_photos(shipped, [(photo, "Sneaker")], keep_steps=False).outcomes
    assert top(outcome.top) == pytest.approx({n: want[n] for n, _ in outcome.top}, abs=1e-6)

    with TestClient(create_app(weights.load_default()), base_url="http://127.0.0.1") as client:
        upload = {"file": ("shoe.jpg", photo.read_bytes(), "image/jpeg")}
        body = client.post("/predict?top_k=10", files=upload).json()
        pixels = client.post("/predict?top_k=10", json={"image": image.tolist()}).json()
    served = {t["label"]: t["probability"] for t in body["predictions"][0]["top"]}
    assert body["timing"]["turned_views"] == len(ANGLES)
    assert served == pytest.approx(want, abs=1e-4)
    assert pixels["timing"]["turned_views"] == 0
    assert {t["label"]: t["probability"] for t in pixels["predictions"][0]["top"]} \
        == pytest.approx(unturned, abs=1e-4)
