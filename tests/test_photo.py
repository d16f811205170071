"""The photo pipeline: each step on synthetic images, the shared real photos, and a suite of
malformed or unusual files with the behaviour docs/predict.md documents for each."""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from crafted import png_header_only
from fmnist.images import photo
from fmnist.images.photo import PhotoError, prepare_photo

# The shared real photos sit beside the repository (../shared), wherever it is checked out.
PHOTOS = Path(__file__).resolve().parents[2] / "shared" / "photos"
PHOTO_FILES = sorted(p for p in PHOTOS.glob("*") if p.suffix in (".jpg", ".png"))


def _bbox(image: np.ndarray, threshold: float = 0) -> tuple[int, int, int, int]:
    rows = np.flatnonzero((image > threshold).any(axis=1))
    cols = np.flatnonzero((image > threshold).any(axis=0))
    return rows[0], rows[-1] + 1, cols[0], cols[-1] + 1


def _garment(height: int = 120, width: int = 200, box=(30, 90, 60, 110), fg=40, bg=250,
             mode: str = "L") -> Image.Image:
    """A dark rectangle (the "garment") on a light background."""
    arr = np.full((height, width), bg, np.uint8)
    top, bottom, left, right = box
    arr[top:bottom, left:right] = fg
    return Image.fromarray(arr, "L").convert(mode)


# -- each step --------------------------------------------------------------------------------
def test_orientation_follows_exif_tag() -> None:
    upright = _garment(120, 200, box=(20, 100, 90, 110))  # a tall thin bar
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # what a sideways camera writes
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    buffer = io.BytesIO()
    stored.save(buffer, "JPEG", exif=exif.tobytes())
    fixed = photo.apply_orientation(Image.open(io.BytesIO(buffer.getvalue())))
    assert fixed.size == upright.size


def test_composite_alpha_lays_transparency_on_the_dataset_background() -> None:
    rgba = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    rgba.putpixel((5, 5), (10, 20, 30, 255))
    out = photo.composite_alpha(rgba)
    assert out.mode == "RGB"
    assert out.getpixel((0, 0)) == (photo.DATASET_BACKGROUND,) * 3
    assert out.getpixel((5, 5)) == (10, 20, 30)


@pytest.mark.parametrize("mode", ["1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "I;16", "I", "F"])
def test_every_mode_becomes_8_bit(mode: str) -> None:
    base = _garment()
    if mode == "I;16":
        image = Image.fromarray(np.asarray(base).astype(np.uint16) * 257)
    elif mode == "I":
        image = Image.fromarray(np.asarray(base).astype(np.int32) * 257)
    elif mode == "F":
        image = Image.fromarray(np.asarray(base).astype(np.float32) / 255)
    else:
        image = base.convert(mode)
    out = photo.to_standard_mode(image)
    assert out.mode in ("L", "LA", "RGB", "RGBA")
    gray = photo.to_grayscale(photo.composite_alpha(out))
    if mode != "1":  # 1-bit dithers; the others keep the levels
        assert abs(gray[0, 0] - 250) < 3 and abs(gray[60, 80] - 40) < 3


def test_grayscale_uses_luma_weights() -> None:
    rgb = Image.new("RGB", (1, 1), (255, 0, 0))
    assert photo.to_grayscale(rgb)[0, 0] == pytest.approx(0.299 * 255, abs=0.01)


def test_background_is_the_border_median_even_when_the_garment_touches_an_edge() -> None:
    gray = np.full((100, 100), 240.0, np.float32)
    gray[:, :10] = 20  # a garment touching the left edge
    assert photo.estimate_background(gray) == 240


def test_foreground_inverts_light_backgrounds_only() -> None:
    light = np.array([[250.0, 50.0]], np.float32)
    fg, inverted = photo.to_foreground(light, 250.0)
    assert inverted and fg[0, 0] == 0 and fg[0, 1] > 200
    dark = np.array([[10.0, 200.0]], np.float32)
    fg, inverted = photo.to_foreground(dark, 10.0)
    assert not inverted and fg[0, 0] == 0 and fg[0, 1] > 190


def test_trim_ignores_specks_and_finds_the_object() -> None:
    fg = np.zeros((200, 200), np.float32)
    fg[50:150, 80:120] = 200
    fg[5, 5] = 255  # one noisy pixel
    assert photo.bounding_box(fg) == (50, 150, 80, 120)
    assert photo.trim(fg).shape == (100, 40)
    with pytest.raises(PhotoError, match="no object"):
        photo.trim(np.zeros((50, 50), np.float32))


def test_resize_keeps_the_aspect_ratio() -> None:
    assert photo.resize_longest(np.ones((300, 100), np.float32) * 100, 28).shape == (28, 9)
    assert photo.resize_longest(np.ones((10, 40), np.float32) * 100, 56).shape == (14, 56)


def test_sharpen_raises_edge_contrast() -> None:
    step = np.zeros((9, 9), np.float32)
    step[:, 4:] = 100
    out = photo.sharpen(step)
    assert out[4, 4] > 100 and out[4, 3] == 0


def test_centre_uses_the_bounding_box() -> None:
    out = photo.centre(np.ones((28, 10), np.float32), 28)
    top, bottom, left, right = _bbox(out)
    assert (top, bottom) == (0, 28) and left == 9 and 28 - right == 9


def test_shoes_are_turned_heel_right_like_the_dataset() -> None:
    shoe = np.zeros((10, 30), np.float32)
    shoe[6:, :] = 200  # sole
    shoe[:, :8] = 200  # a tall shaft on the LEFT: a mirrored ankle boot
    turned, mirrored = photo.face_like_dataset(shoe)
    assert mirrored and turned[:, -8:].min() == 200
    _, again = photo.face_like_dataset(turned)
    assert not again
    tall = np.zeros((30, 10), np.float32)
    tall[:, :3] = 200
    assert not photo.face_like_dataset(tall)[1]  # garments never flip


def test_stretch_peaks_at_255() -> None:
    out = photo.stretch(np.array([[0.0, 20.0, 100.0]]))
    assert out.dtype == np.uint8 and out.tolist() == [[0, 51, 255]]


# -- the whole recipe --------------------------------------------------------------------------
@pytest.mark.parametrize("background", ["light", "dark"])
def test_light_and_dark_backgrounds_give_the_same_polarity(background: str) -> None:
    fg, bg = (40, 250) if background == "light" else (230, 15)
    result = prepare_photo(_garment(fg=fg, bg=bg), pipeline="paper")
    out = result.image
    assert out.shape == (28, 28) and out.dtype == np.uint8
    assert result.inverted == (background == "light")
    top, bottom, left, right = _bbox(out)
    assert bottom - top == 28 and 22 <= right - left <= 24  # 60 tall, 50 wide → 28×23
    assert out[14, 14] == 255 and out[0, 0] == 0


def test_output_size_above_28() -> None:
    assert prepare_photo(_garment(), size=64).image.shape == (64, 64)


def test_steps_are_kept_and_saved(tmp_path: Path) -> None:
    result = prepare_photo(_garment(), keep_steps=True, pipeline="paper")
    names = [name for name, _ in result.steps]
    assert names[0] == "original" and names[-1] == "final"
    assert {"grayscale", "foreground", "trimmed", "resized", "sharpened"} <= set(names)
    written = photo.save_steps(result, tmp_path, "shirt")
    assert [p.name for p in written][-1] == f"{len(names):02d}-final.png"
    assert Image.open(written[-1]).size == (280, 280)  # 28×28 enlarged ×10


@pytest.mark.parametrize("path", PHOTO_FILES, ids=lambda p: p.name)
def test_real_photos_look_like_fashion_mnist(path: Path) -> None:
    """Bright garment on black, centred by its bounding box, aspect ratio of the photo kept
    (the paper's recipe; pipeline v2 is checked on the same photos in test_photo_v2.py)."""
    out = prepare_photo(path, pipeline="paper").image
    assert out.shape == (28, 28) and out.max() == 255
    top, bottom, left, right = _bbox(out)
    assert max(bottom - top, right - left) == 28  # longest edge fills the canvas
    assert abs(top - (28 - bottom)) <= 1 and abs(left - (28 - right)) <= 1  # centred
    inside = out[top:bottom, left:right]
    # Bright garment on black: much of the canvas is exactly 0, as in the dataset (50% there),
    # and the garment is clearly brighter (a light-blue shirt is faint, as light garments are).
    assert (out == 0).mean() >= 0.15 and inside.mean() > 25
    # Aspect ratio: compare with the object's box measured independently on the photo.
    original = Image.open(path).convert("RGBA")
    flat = Image.new("RGBA", original.size, (255, 255, 255, 255))
    flat.alpha_composite(original)
    gray = np.asarray(flat.convert("L"), np.float32)
    otop, obottom, oleft, oright = _bbox(255 - gray, threshold=40)
    expected = (oright - oleft) / (obottom - otop)
    got = (right - left) / (bottom - top)
    assert got == pytest.approx(expected, rel=0.15), f"aspect {got:.2f} vs photo {expected:.2f}"


# -- malformed and unusual files (documented in docs/predict.md) --------------------------------
def _jpeg_bytes(image: Image.Image, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=95, **kwargs)
    return buffer.getvalue()


def test_zero_byte_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(PhotoError, match=r"empty\.jpg: empty file"):
        prepare_photo(path)


def test_truncated_jpeg(tmp_path: Path) -> None:
    data = _jpeg_bytes(_garment(400, 600, box=(50, 350, 100, 500), mode="RGB"))
    path = tmp_path / "cut.jpg"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(PhotoError, match=r"cut\.jpg: damaged or truncated"):
        prepare_photo(path)


def test_text_file_named_png(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("this is not a picture\n")
    with pytest.raises(PhotoError, match=r"notes\.png: not an image"):
        prepare_photo(path)


@pytest.mark.parametrize("side", [20000, 9000])
def test_decompression_bomb_header_is_refused_unread(tmp_path: Path, side: int) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header_only(side, side))
    start = time.perf_counter()
    with pytest.raises(PhotoError, match=r"bomb\.png: .*pixels"):
        prepare_photo(path)
    assert time.perf_counter() - start < 1.0  # refused from the header, nothing allocated


def test_pixel_limit_is_adjustable(tmp_path: Path) -> None:
    path = tmp_path / "big.png"
    _garment(200, 300).save(path)
    with pytest.raises(PhotoError, match="over the limit of 1,000"):
        prepare_photo(path, max_pixels=1000)


def test_animated_gif_uses_the_first_frame(tmp_path: Path) -> None:
    tall = _garment(100, 100, box=(10, 90, 45, 55))
    wide = _garment(100, 100, box=(45, 55, 10, 90))
    square = _garment(100, 100, box=(20, 80, 20, 80))
    path = tmp_path / "anim.gif"
    tall.save(path, save_all=True, append_images=[wide, square], duration=100, loop=0)
    assert Image.open(path).n_frames == 3
    top, bottom, left, right = _bbox(prepare_photo(path).image)
    assert bottom - top == 28 and right - left < 10


def test_16_bit_png(tmp_path: Path) -> None:
    arr = np.asarray(_garment()).astype(np.uint16) * 257
    path = tmp_path / "deep.png"
    Image.fromarray(arr).save(path)
    assert Image.open(path).mode.startswith("I")
    out = prepare_photo(path, pipeline="paper").image  # exact paper values
    assert out[14, 14] == 255 and out[0, 0] == 0


def test_cmyk_jpeg(tmp_path: Path) -> None:
    path = tmp_path / "print.jpg"
    path.write_bytes(_jpeg_bytes(_garment(mode="RGB").convert("CMYK")))
    assert Image.open(path).mode == "CMYK"
    out = prepare_photo(path, pipeline="paper").image  # exact paper values
    assert out[14, 14] > 200 and out[0, 0] == 0


def test_exif_rotated_jpeg_comes_out_upright(tmp_path: Path) -> None:
    upright = _garment(300, 200, box=(20, 280, 80, 120), mode="RGB")  # a tall garment
    exif = Image.Exif()
    exif[0x0112] = 8  # "rotate 90° counter-clockwise to display"
    path = tmp_path / "phone.jpg"
    path.write_bytes(_jpeg_bytes(upright.transpose(Image.Transpose.ROTATE_270),
                                 exif=exif.tobytes()))
    top, bottom, left, right = _bbox(prepare_photo(path).image)
    assert bottom - top == 28 and right - left < 8


def test_palette_png_with_transparency(tmp_path: Path) -> None:
    rgba = Image.new("RGBA", (80, 120), (0, 0, 0, 0))
    rgba.paste((30, 30, 30, 255), (20, 10, 60, 110))
    path = tmp_path / "sticker.png"
    rgba.convert("P").save(path, transparency=0)
    out = prepare_photo(path, pipeline="paper").image  # exact paper values
    assert out[14, 14] == 255 and out[0, 0] == 0


def test_blank_photo_says_so(tmp_path: Path) -> None:
    path = tmp_path / "blank.png"
    Image.new("RGB", (50, 50), (250, 250, 250)).save(path)
    with pytest.raises(PhotoError, match=r"blank\.png: found no object"):
        prepare_photo(path)


def test_a_negated_real_photo_gives_the_same_image() -> None:
    """Light garment on a dark background (the photo negated) → the same 28×28 as the original:
    polarity comes from the background, not from an assumption."""
    original = Image.open(PHOTOS / "bag.jpg").convert("RGB")
    negated = Image.fromarray(255 - np.asarray(original))
    light, dark = (prepare_photo(original, pipeline="paper"),
                   prepare_photo(negated, pipeline="paper"))  # v2: test_photo_v2.py
    assert light.inverted and not dark.inverted
    assert np.abs(light.image.astype(int) - dark.image).max() <= 1
