"""Real photos under ordinary changes: the shipped model's top-1 on the development photos after
each change a photo meets on its way to us (greyscale, small, heavy JPEG, a frame of padding,
a tighter crop, under- or over-exposure, low contrast, blur, a mirror, warm light, noise).

A set of 41 photos is small; asking whether each answer survives changes that should not matter
finds fragile steps of the conversion that the photos alone do not show (a uniform frame around
a photo was one: benchmarks/RESULTS.md, 2026-11-27 13:22).

    flock /tmp/fmnist-cpu.lock .venv/bin/python benchmarks/photos_robust.py [PHOTO_DIR] \\
        [--changes grey,pad_black,...]
"""

from __future__ import annotations

import argparse
import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "shared" / "photos" / "real"


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue()))


def _pad(image: Image.Image, share: float, colour: tuple[int, int, int]) -> Image.Image:
    return ImageOps.expand(image, int(share * max(image.size)), fill=colour)


def _crop(image: Image.Image, share: float) -> Image.Image:
    w, h = image.size
    return image.crop((int(share * w), int(share * h), int((1 - share) * w), int((1 - share) * h)))


def _shrink(image: Image.Image, edge: int) -> Image.Image:
    scale = edge / max(image.size)
    return image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                        Image.Resampling.LANCZOS)


def _tilt(image: Image.Image, degrees: float) -> Image.Image:
    """The camera turned by `degrees`: the photo rotated and cut to the largest upright
    rectangle of its shape that holds no corner of fill."""
    theta = np.radians(abs(degrees))
    w, h = image.size
    scale = 1 / (np.cos(theta) + np.sin(theta) * max(w / h, h / w))
    turned = image.rotate(degrees, resample=Image.Resampling.BICUBIC)
    dw, dh = w * (1 - scale) / 2, h * (1 - scale) / 2
    return turned.crop((round(dw), round(dh), round(w - dw), round(h - dh)))


def _noise(image: Image.Image, sigma: float) -> Image.Image:
    pixels = np.asarray(image, np.float32)
    noisy = pixels + np.random.default_rng(0).normal(0, sigma, pixels.shape)
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


CHANGES: dict[str, Callable[[Image.Image], Image.Image]] = {
    "none": lambda im: im,
    "grey": lambda im: ImageOps.grayscale(im).convert("RGB"),
    "small_200px": lambda im: _shrink(im, 200),
    "jpeg_q15": lambda im: _jpeg(im, 15),
    "pad_white_10%": lambda im: _pad(im, 0.10, (255, 255, 255)),
    "pad_black_10%": lambda im: _pad(im, 0.10, (0, 0, 0)),
    "pad_grey_25%": lambda im: _pad(im, 0.25, (128, 128, 128)),
    "crop_5%": lambda im: _crop(im, 0.05),
    "dark_x0.6": lambda im: ImageEnhance.Brightness(im).enhance(0.6),
    "bright_x1.3": lambda im: ImageEnhance.Brightness(im).enhance(1.3),
    "contrast_x0.6": lambda im: ImageEnhance.Contrast(im).enhance(0.6),
    "blur": lambda im: im.filter(ImageFilter.GaussianBlur(2 * max(im.size) / 1000)),
    "mirror": ImageOps.mirror,
    "rotate_90": lambda im: im.transpose(Image.Transpose.ROTATE_90),
    "tilt_10deg": lambda im: _tilt(im, 10),
    "warm_light": lambda im: Image.merge("RGB", [
        band.point(lambda v, k=k: min(255, int(v * k)))
        for band, k in zip(im.split(), (1.08, 1.0, 0.85), strict=True)]),
    "noise_12": lambda im: _noise(im, 12),
}


def main() -> None:
    from fmnist.evaluation.photos import read_labelled_folder
    from fmnist.images.decode import read_image
    from fmnist.images.photo import composite_alpha, prepare_photo
    from fmnist.predict import photo_views, predict_proba, resolve_model
    from fmnist.weights import load_default

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, nargs="?", default=DEFAULT_DIR)
    parser.add_argument("--changes", default=",".join(CHANGES))
    args = parser.parse_args()
    model = resolve_model(load_default())
    pairs = read_labelled_folder(args.folder, model.class_names)
    photos = [composite_alpha(read_image(path)).convert("RGB") for path, _ in pairs]
    truth = np.array([model.class_names.index(label) for _, label in pairs])
    right: dict[str, np.ndarray] = {}
    for name in args.changes.split(","):
        images = np.stack([prepare_photo(CHANGES[name](photo)).image for photo in photos])
        proba = photo_views(model, predict_proba(model, images), images)
        right[name] = proba.argmax(axis=1) == truth  # scored as `fmnist predict` scores
    base = right.get("none", next(iter(right.values())))
    print(f"| change | top-1 of {len(pairs)} | lost | gained |\n| --- | ---: | --- | --- |")
    for name, hits in right.items():
        lost = [pairs[i][0].name for i in np.flatnonzero(base & ~hits)]
        gained = [pairs[i][0].name for i in np.flatnonzero(~base & hits)]
        print(f"| {name} | {int(hits.sum())} | {', '.join(lost)} | {', '.join(gained)} |")


if __name__ == "__main__":
    main()
