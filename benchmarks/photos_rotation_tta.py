"""Footwear-gated rotation test-time augmentation, measured before building it (issue 12).

When the shipped model puts at least `gate` of its probability on footwear (Sandal, Sneaker,
Ankle boot), the 28×28 is also scored turned by the listed angles and the probabilities are
averaged (mean, geometric mean, or re-ranked within footwear only). Scored on the development
photos (top-1/top-2), the 6 easy photos, 3,000 official test images, and the same images with
every footwear item turned by a uniform ±40° (tilted shoes, drawn the dataset's way).

    flock /tmp/fmnist-cpu.lock .venv/bin/python benchmarks/photos_rotation_tta.py
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from fmnist.data import load_fashion_mnist
from fmnist.footwear_views import turn
from fmnist.images.photo import prepare_photo
from fmnist.predict import predict_proba, resolve_model
from fmnist.weights import load_default

SHARED = Path(__file__).resolve().parents[2] / "shared" / "photos"
EASY = {"bag.jpg": "Bag", "dress.jpg": "Dress", "sandal.jpg": "Sandal", "shirt.jpg": "Shirt",
        "sneaker.png": "Sneaker", "trouser.jpg": "Trouser"}
FOOTWEAR = [5, 7, 9]
MODEL = resolve_model(load_default())


def with_rotations(images: np.ndarray, angles: list[int] | None, gate: float,
                   mode: str) -> np.ndarray:
    """Probabilities, averaged over turned views for the images the model calls footwear."""
    plain = predict_proba(MODEL, images)
    if angles is None:
        return plain
    idx = np.flatnonzero(plain[:, FOOTWEAR].sum(1) >= gate)
    if not len(idx):
        return plain
    views = np.stack([turn(images[i], a) for i in idx for a in angles])
    proba = predict_proba(MODEL, views).reshape(len(idx), len(angles), -1)
    out = plain.copy()
    if mode == "mean":
        out[idx] = proba.mean(1)
    elif mode == "geo":
        logp = np.log(proba + 1e-9).mean(1)
        e = np.exp(logp - logp.max(1, keepdims=True))
        out[idx] = e / e.sum(1, keepdims=True)
    else:  # "footmean": re-rank within footwear, keep the footwear mass of the plain view
        foot = proba[:, :, FOOTWEAR].mean(1)
        rows = out[idx]
        rows[:, FOOTWEAR] = foot / foot.sum(1, keepdims=True) * plain[idx][:, FOOTWEAR].sum(
            1, keepdims=True)
        out[idx] = rows
    return out


def hits(proba: np.ndarray, labels: np.ndarray) -> tuple[int, int]:
    top = np.argsort(-proba, 1)
    return int((top[:, 0] == labels).sum()), int((top[:, :2] == labels[:, None]).any(1).sum())


def converted(pairs: list[tuple[Path, int]]) -> tuple[np.ndarray, np.ndarray]:
    return (np.stack([prepare_photo(path).image for path, _ in pairs]),
            np.array([label for _, label in pairs]))


def main() -> None:
    names = list(MODEL.class_names)
    with open(SHARED / "real" / "labels.tsv", encoding="utf-8") as f:
        rows = [r for r in csv.reader(f, delimiter="\t") if r and not r[0].startswith("#")]
    dev_x, dev_y = converted([(SHARED / "real" / r[0], names.index(r[1])) for r in rows])
    easy_x, easy_y = converted([(SHARED / f, names.index(c)) for f, c in EASY.items()])
    test = load_fashion_mnist("test")
    rng = np.random.default_rng(0)
    pick = rng.choice(len(test.labels), 3000, replace=False)
    test_x, test_y = test.images[pick], test.labels[pick]
    angles_drawn = rng.uniform(-40, 40, len(test_y))
    tilted_x = np.stack([turn(x, a) if y in FOOTWEAR else x
                         for x, y, a in zip(test_x, test_y, angles_drawn, strict=True)])
    variants: list[tuple[str, list[int] | None, float, str]] = [("none", None, 1.0, "mean")]
    for angles in ([-30, -15, 0, 15, 30], [-40, -30, -20, -10, 0, 10, 20, 30, 40]):
        for gate in (0.5, 0.8):
            for mode in ("mean", "geo", "footmean"):
                variants.append((f"±{angles[-1]}/{len(angles)} g{gate} {mode}", angles, gate,
                                 mode))
    for name, angles, gate, mode in variants:
        dev = hits(with_rotations(dev_x, angles, gate, mode), dev_y)
        easy = hits(with_rotations(easy_x, angles, gate, mode), easy_y)
        plain = hits(with_rotations(test_x, angles, gate, mode), test_y)
        tilted = hits(with_rotations(tilted_x, angles, gate, mode), test_y)
        print(f"{name:26s} dev {dev[0]}/{dev[1]} of {len(dev_y)}  easy {easy[0]}/6  "
              f"test {plain[0] / len(test_y):.4f}  footwear tilted {tilted[0] / len(test_y):.4f}",
              flush=True)
    best = with_rotations(dev_x, [-30, -15, 0, 15, 30], 0.5, "mean").argmax(1)
    base = with_rotations(dev_x, None, 1.0, "mean").argmax(1)
    for r, b, n, y in zip(rows, base, best, dev_y, strict=True):
        if b != n:
            print(f"{r[0]}: {names[b]} → {names[n]} (label {names[y]})")


if __name__ == "__main__":
    main()
