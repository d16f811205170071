"""Items on busy backgrounds: a labelled photo folder's items pasted on busy backdrops, scored
with and without GrabCut (`fmnist.images.grabcut`), by the shipped model.

A development set has few photos on patterned fabric, leaves or floors, so this makes more:
every photo of the folder (`labels.tsv`) whose own backdrop is calm (border noise < 5 ΔE) or
transparent gives its item (v2's cleaned mask) and every photo whose border is busy gives a
backdrop (a strip of its left edge, or its top edge for `--top-strip` photos, stretched to
320×320); each item, scaled to 70 % of the frame, is pasted in the middle of each backdrop.
Then the whole conversion runs twice — GrabCut off (`BUSY_NOISE` = ∞) and on — and the shipped
model's top-1/top-2 are counted per backdrop, with the conversion's p50/p90 time.

    flock /tmp/fmnist-cpu.lock .venv/bin/python benchmarks/photos_busy.py [PHOTO_DIR] \\
        [--backdrops sandal_1.jpg,bag_4.jpg,...] [--json OUT.jsonl]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "shared" / "photos" / "real"
# The development set's busy photos that give a backdrop, and the one whose busy part is on top.
BACKDROPS = "sandal_1.jpg,bag_4.jpg,trouser_1.jpg,trouser_2.jpg,tshirt_1.jpg,ankleboot_1.jpg"
TOP_STRIP = {"trouser_2.jpg"}
SIDE = 320


def labelled(folder: Path) -> list[tuple[str, str]]:
    lines = (folder / "labels.tsv").read_text().splitlines()
    return [tuple(x.strip() for x in line.split("\t")) for line in lines
            if line.strip() and not line.startswith("#")]


def rgb_of(path: Path) -> np.ndarray:
    from fmnist.images.decode import read_image
    from fmnist.images.photo import composite_alpha

    return np.asarray(composite_alpha(read_image(path, 40_000_000)).convert("RGB"))


def item_cutout(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """The item's pixels and mask from a photo with a calm or transparent backdrop, else None."""
    from skimage.color import rgb2lab

    from fmnist.images import convert_v2
    from fmnist.images.background import fit_background
    from fmnist.images.decode import read_image
    from fmnist.images.mask import clean_mask
    from fmnist.images.photo import composite_alpha

    work = convert_v2.working_copy(composite_alpha(read_image(path, 40_000_000)))
    rgb, alpha = convert_v2.split_alpha(work)
    if alpha is None:
        if fit_background(rgb2lab(rgb).astype(np.float32)).noise >= 5:
            return None
        raw, _ = convert_v2.item_mask(rgb, lambda *_: None)
        alpha = raw
    mask = clean_mask(alpha)
    ys, xs = np.nonzero(mask)
    box = (slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))
    return rgb[box], mask[box]


def backdrop(path: Path) -> np.ndarray:
    rgb = rgb_of(path)
    band = max(8, int(0.18 * min(rgb.shape[:2])))
    strip = rgb[:band] if path.name in TOP_STRIP else rgb[:, :band]
    return np.asarray(Image.fromarray(strip).resize((SIDE, SIDE), Image.Resampling.BILINEAR))


def paste(item: np.ndarray, mask: np.ndarray, back: np.ndarray) -> np.ndarray:
    scale = 0.7 * SIDE / max(item.shape[:2])
    h, w = max(1, int(item.shape[0] * scale)), max(1, int(item.shape[1] * scale))
    pixels = np.asarray(Image.fromarray(item).resize((w, h), Image.Resampling.LANCZOS))
    inside = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize(
        (w, h), Image.Resampling.BILINEAR)) > 127
    canvas = back.copy()
    y0, x0 = (SIDE - h) // 2, (SIDE - w) // 2
    canvas[y0:y0 + h, x0:x0 + w][inside] = pixels[inside]
    return canvas


def score(photos: list[tuple[Path, str, str]], grabcut_on: bool) -> dict:
    from fmnist.footwear_views import with_footwear_views
    from fmnist.images import grabcut
    from fmnist.images.photo import prepare_photo
    from fmnist.weights import load_default

    grabcut.BUSY_NOISE = 4.0 if grabcut_on else float("inf")
    run = load_default()
    names = run.class_names
    top1 = top2 = 0
    per: dict[str, list[int]] = {}
    seconds = []
    for path, label, group in photos:
        start = time.perf_counter()
        image = prepare_photo(path).image
        seconds.append(time.perf_counter() - start)
        proba = with_footwear_views(run.model.predict_proba(image[None]), image[None], names,
                                    run.model.predict_proba)  # as `fmnist predict` scores
        order = np.argsort(proba[0])[::-1]
        first, second = names[order[0]] == label, label in (names[order[0]], names[order[1]])
        top1, top2 = top1 + first, top2 + second
        per.setdefault(group, [0, 0])
        per[group][0] += first
        per[group][1] += 1
    return {"grabcut": grabcut_on, "photos": len(photos), "top1": top1, "top2": top2,
            "per_backdrop": {g: f"{a}/{n}" for g, (a, n) in per.items()},
            "p50_ms": round(1000 * float(np.median(seconds)), 1),
            "p90_ms": round(1000 * float(np.percentile(seconds, 90)), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, nargs="?", default=DEFAULT_DIR)
    parser.add_argument("--backdrops", default=BACKDROPS)
    parser.add_argument("--json", type=Path, help="also append the results here")
    args = parser.parse_args()
    rows = labelled(args.folder)
    backs = {name: backdrop(args.folder / name) for name in args.backdrops.split(",")}
    with tempfile.TemporaryDirectory(prefix="fmnist-busy-") as tmp:
        photos = []
        for name, label in rows:
            cut = item_cutout(args.folder / name)
            if cut is None:
                continue
            for back_name, back in backs.items():
                out = Path(tmp) / f"{Path(name).stem}__{Path(back_name).stem}.png"
                Image.fromarray(paste(*cut, back)).save(out)
                photos.append((out, label, Path(back_name).stem))
        for on in (False, True):
            result = score(photos, on)
            print(json.dumps(result))
            if args.json:
                with args.json.open("a") as fh:
                    fh.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
