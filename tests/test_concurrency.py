"""Photo conversions on threads (`fmnist.concurrency`): same answers, same order, same errors.

`fmnist predict` and `fmnist evaluate --photos` convert photos on one thread per core; this
checks the helper's order and error rules, and that a folder of photos (one broken) is answered
exactly as on one thread.
"""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image, ImageDraw

from fmnist import weights
from fmnist.concurrency import default_workers, ordered_map
from fmnist.evaluation.photos import evaluate_photos
from fmnist.predict import InputFailure, predict_paths, resolve_model


def _slow_square(n: int) -> int:
    time.sleep(0.002 * (n % 3))  # later items often finish first
    if n == 7:
        raise ValueError("seven")
    return n * n


def test_ordered_map_keeps_the_input_order_and_raises_at_the_failing_item() -> None:
    assert list(ordered_map(_slow_square, range(7), workers=3)) == [n * n for n in range(7)]
    got = []
    with pytest.raises(ValueError, match="seven"):
        for value in ordered_map(_slow_square, range(20), workers=3):
            got.append(value)
    assert got == [n * n for n in range(7)]
    assert list(ordered_map(_slow_square, range(5), workers=1)) == [0, 1, 4, 9, 16]
    first = next(ordered_map(_slow_square, iter(range(10**9)), workers=2))  # bounded lookahead
    assert first == 0 and 1 <= default_workers() <= 4


def _photos(folder) -> list:
    """Six drawn garments on different backgrounds, and a file that is not an image."""
    folder.mkdir()
    rng = np.random.default_rng(0)
    paths = []
    for i in range(6):
        back = tuple(int(v) for v in rng.integers(0, 256, 3))
        image = Image.new("RGB", (160 + 20 * i, 200), back)
        ink = tuple(255 - v for v in back)
        draw = ImageDraw.Draw(image)
        draw.rectangle((40, 30, 120 + 10 * i, 170), fill=ink)  # a body
        draw.rectangle((10, 30, 40, 90 + 10 * i), fill=ink)  # a sleeve
        path = folder / f"item{i}.png"
        image.save(path)
        paths.append(path)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    return paths


def test_threads_give_the_same_answers_in_the_same_order(tmp_path) -> None:
    paths = _photos(tmp_path / "photos")
    shipped = resolve_model(weights.load_default())
    one = list(predict_paths(shipped, [tmp_path / "photos"], top_k=10, workers=1))
    three = list(predict_paths(shipped, [tmp_path / "photos"], top_k=10, workers=3))
    assert [type(r) for r in one] == [type(r) for r in three]
    assert sum(isinstance(r, InputFailure) for r in one) == 1 and len(one) == 7
    assert [r.to_dict() for r in one] == [r.to_dict() for r in three]
    pairs = [(p, "Shirt") for p in paths] + [(tmp_path / "photos" / "broken.jpg", "Bag")]
    alone = evaluate_photos(shipped, pairs, keep_steps=False, workers=1).outcomes
    threaded = evaluate_photos(shipped, pairs, keep_steps=False, workers=3).outcomes
    assert [(o.path, o.top, o.error) for o in alone] == [(o.path, o.top, o.error)
                                                         for o in threaded]
    assert threaded[-1].error and not threaded[0].error


def test_threaded_predict_prints_no_library_warnings(tmp_path) -> None:
    """A fresh `fmnist predict` on several threads must not print SciPy's "one of the clusters
    is empty" (a blank strip gives k-means one colour). It did: the photo modules, which
    silence it, were first imported on one thread while another sat in
    `warnings.catch_warnings()` decoding a large photo, and that block's exit put back the
    filter list from before the import."""
    folder = tmp_path / "photos"
    folder.mkdir()
    noise = np.random.default_rng(0).integers(0, 256, (3000, 4000), dtype=np.uint8)
    Image.fromarray(noise).save(folder / "a_noise.png", compress_level=1)  # a slow decode
    for i in range(3):
        item = Image.new("RGB", (300, 200), "white")
        ImageDraw.Draw(item).rectangle((100, 40, 200 + 20 * i, 160), fill="navy")
        item.save(folder / f"b_item_{i}.png")
    for i in range(3):
        Image.new("RGB", (3000, 2), "white").save(folder / f"c_strip_{i}.png")
    proc = subprocess.run([sys.executable, "-m", "fmnist", "predict", str(folder)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr  # noise and strips are errors, items answered
    assert len(proc.stdout.splitlines()) == 3
    errors = proc.stderr.splitlines()  # one line each, and nothing else
    assert len(errors) == 4 and all("no object" in line for line in errors), proc.stderr
