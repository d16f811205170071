"""Hostile and unusual images through the one decoder (`fmnist.images.decode`), and the one pixel
rule for arrays (`fmnist.images.arrays`): issue 11 #6, #7, #18, #19, #21 and issue 14 #1.

Every file here is made by the test itself with Pillow (real encoders, real files on disk); the
fuzzing test mutates real PNG/JPEG/WebP/GIF/BMP/TIFF files and checks that each case is either
an image or a `PhotoError`, within a time bound.
"""

from __future__ import annotations

import io
import os
import random
import struct
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from PIL import Image, ImageOps

from crafted import png_header_only
from fmnist.data.folder import load_image_folder
from fmnist.errors import DataError, FmnistError
from fmnist.images import decode, photo
from fmnist.images.arrays import as_uint8_images
from fmnist.images.decode import PhotoError, TooManyPixels, UnreadableImage, UnsupportedImage
from fmnist.models.registry import create_model
from fmnist.predict import InputFailure, expand_paths, predict, predict_paths, read_input
from fmnist.serve import photos as serve_photos


def _encode(image: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _garment(width: int = 60, height: int = 40) -> Image.Image:
    arr = np.full((height, width, 3), 240, np.uint8)
    arr[height // 4: 3 * height // 4, width // 3: 2 * width // 3] = 30
    return Image.fromarray(arr)


# -- one limit, one list of formats (#6, #18; issue 14 #1) ----------------------------------------
def test_one_pixel_limit_for_cli_folders_and_server() -> None:
    assert photo.DEFAULT_MAX_PIXELS == decode.MAX_PIXELS == serve_photos.MAX_PIXELS
    over = png_header_only(7000, 7000)  # 49 MP: over the limit, under Pillow's own bomb guard
    with pytest.raises(TooManyPixels, match="over the limit of 40,000,000"):
        decode.read_image(over)
    with pytest.raises(Exception) as info:
        serve_photos.photo_to_image(over, "x.png", (28, 28))
    assert info.value.status == 413


REFUSED = [("AVIF", ".avif", "AVIF"), ("JPEG2000", ".jp2", "JPEG 2000"), ("PPM", ".ppm", "PPM"),
           ("ICO", ".ico", "ICO"), ("PCX", ".pcx", "PCX"), ("TGA", ".tga", "TGA"),
           ("QOI", ".qoi", "QOI"), ("SGI", ".sgi", "SGI")]


@pytest.mark.parametrize(("fmt", "suffix", "kind"), REFUSED, ids=[r[0] for r in REFUSED])
def test_formats_outside_the_list_are_refused_by_name(tmp_path, fmt, suffix, kind) -> None:
    """Pillow can decode all of these; fmnist refuses them, and says which format it saw."""
    data = _encode(_garment(), fmt)
    Image.open(io.BytesIO(data)).load()  # a valid file of that format
    path = tmp_path / f"garment{suffix}"
    path.write_bytes(data)
    with pytest.raises(UnsupportedImage, match=f"{kind}.*not accepted"):
        decode.read_image(path)
    disguised = tmp_path / "garment.png"  # the name lies; the bytes are judged (TGA has no magic)
    disguised.write_bytes(data)
    with pytest.raises(UnsupportedImage, match="not accepted|not an image"):
        decode.read_image(disguised)
    with pytest.raises(Exception) as info:
        serve_photos.photo_to_image(data, f"up{suffix}", (28, 28))
    assert info.value.status == 415 and kind in info.value.detail


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF"])
def test_the_six_accepted_formats_decode(fmt) -> None:
    image = decode.read_image(_encode(_garment(), fmt))
    assert image.size == (60, 40) and image.mode in ("L", "LA", "RGB", "RGBA")


def test_a_folder_of_refused_formats_says_so(tmp_path) -> None:
    for cls in ("boots", "bags"):
        (tmp_path / cls).mkdir()
        (tmp_path / cls / "a.avif").write_bytes(_encode(_garment(), "AVIF"))
        (tmp_path / cls / "b.ico").write_bytes(_encode(_garment(), "ICO"))
    with pytest.raises(DataError, match="AVIF, ICO files, which are not accepted"):
        load_image_folder(tmp_path)
    (failure,) = [p for p in expand_paths([tmp_path / "boots"]) if isinstance(p, InputFailure)]
    assert "holds no images or arrays" in failure.error and "AVIF, ICO" in failure.error


# -- decode cost (#6) --------------------------------------------------------------------------
_MEASURE = """
import resource, sys, time
from pathlib import Path
from fmnist.images.decode import read_image
from fmnist.serve.photos import photo_to_image
data = Path(sys.argv[1]).read_bytes()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
photo_to_image(data, "big.png", (28, 28))  # what one upload costs the server
seconds = time.perf_counter() - start
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
image = read_image(data)
print(seconds, (after - before) / 1024, image.size[0], image.size[1])
"""


def test_a_6300px_png_decodes_in_bounded_memory(tmp_path) -> None:
    """The issue's case: a small PNG declaring 6300×6300 cost ~1.1 GB in the photo pipeline.

    Decoded RGB it is 119 MB; reduced to the 1024-pixel working size before any float copy, the
    whole upload path (decode + photo recipe) peaks near that (measured in a fresh process:
    ru_maxrss is a high-water mark).
    """
    arr = np.full((6300, 6300), 250, np.uint8)
    arr[1500:4800, 2000:4300] = 40
    path = tmp_path / "big.png"
    Image.fromarray(arr).convert("RGB").save(path, compress_level=1)
    out = subprocess.run([sys.executable, "-c", _MEASURE, str(path)], capture_output=True,
                         text=True, timeout=120, check=True)
    seconds, peak_mb, width, height = (float(v) for v in out.stdout.split())
    assert max(width, height) <= decode.WORKING_EDGE
    assert peak_mb < 350, f"upload peak {peak_mb:.0f} MB over the baseline (was ~800)"
    assert seconds < 20  # ~0.5 s alone; generous for a loaded 2-core machine


def test_a_large_jpeg_is_decoded_at_reduced_scale() -> None:
    big = Image.new("RGB", (6000, 4000), (240, 240, 240))
    data = _encode(big, "JPEG", quality=70)
    with Image.open(io.BytesIO(data)) as probe:
        assert probe.size == (6000, 4000)
    image = decode.read_image(data)
    assert image.size == (1000, 667) or max(image.size) <= decode.WORKING_EDGE


# -- damaged EXIF (#7) -------------------------------------------------------------------------
def _jpeg_with_bad_exif() -> bytes:
    """Orientation 6 plus a Make tag typed RATIONAL: Pillow's `exif_transpose` raises on it."""
    base = _encode(_garment(60, 40), "JPEG")
    entries = [struct.pack("<HHII", 0x0112, 3, 1, 6), struct.pack("<HHII", 0x010F, 5, 1, 38)]
    ifd = struct.pack("<H", len(entries)) + b"".join(entries) + b"\0\0\0\0"
    payload = b"Exif\0\0" + b"II*\0" + struct.pack("<I", 8) + ifd + struct.pack("<II", 3, 2)
    return base[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + base[2:]


def test_damaged_exif_is_ignored_not_raised(tmp_path, small_train) -> None:
    data = _jpeg_with_bad_exif()
    with pytest.raises(AttributeError):  # the old code path: escaped every per-file guard
        ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    image = decode.read_image(data)
    assert image.size == (40, 60)  # the orientation tag was still honoured
    # the CLI batch keeps going, a --data folder loads, the server answers
    (tmp_path / "bad.jpg").write_bytes(data)
    (tmp_path / "good.png").write_bytes(_encode(_garment(), "PNG"))
    assert all(not isinstance(e, InputFailure) for e in read_input(tmp_path / "bad.jpg", 28))
    for cls in ("a", "b"):
        (tmp_path / "data" / cls).mkdir(parents=True)
        (tmp_path / "data" / cls / "bad.jpg").write_bytes(data)
    assert len(load_image_folder(tmp_path / "data")) == 2
    assert serve_photos.photo_to_image(data, "bad.jpg", (28, 28)).shape == (28, 28)


def test_sources_that_are_not_images_are_photo_errors(tmp_path) -> None:
    for source in ([[0] * 28] * 28, 3, None, {"image": 1}):
        with pytest.raises(UnsupportedImage, match="expected a path, bytes"):
            decode.read_image(source)
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with text.open() as handle, pytest.raises(PhotoError):  # a text-mode file object
        decode.read_image(handle)
    data = _encode(_garment(), "PNG")
    lazy = Image.open(io.BytesIO(data[: len(data) // 2]))  # a PIL image opened, not yet loaded
    with pytest.raises(UnreadableImage, match="truncated"):
        decode.read_image(lazy)


# -- FIFOs and devices (#19) -------------------------------------------------------------------
@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_a_fifo_is_refused_without_blocking(tmp_path) -> None:
    fifo = tmp_path / "photo.png"
    os.mkfifo(fifo)
    results: list[object] = []

    def attempt() -> None:
        try:
            decode.read_image(fifo)
        except PhotoError as exc:
            results.append(exc)
        results.append(read_input(fifo, 28))

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(5)
    if worker.is_alive():  # unblock the thread before failing
        with open(fifo, "wb"):
            pass
        pytest.fail("reading a FIFO blocked")
    assert isinstance(results[0], UnreadableImage) and "not a regular file" in str(results[0])
    (failure,) = results[1]
    assert isinstance(failure, InputFailure) and "not a regular file" in failure.error


def test_devices_are_refused() -> None:
    with pytest.raises(UnreadableImage, match="not a regular file"):
        decode.read_image("/dev/zero")


# -- odd TIFFs (#21) ---------------------------------------------------------------------------
def test_nan_in_a_float_tiff_is_a_clear_error() -> None:
    values = np.linspace(0, 1, 40 * 60, dtype=np.float32).reshape(40, 60)
    values[3, 3] = np.nan
    with pytest.raises(UnreadableImage, match="NaN"):
        decode.read_image(_encode(Image.fromarray(values, "F"), "TIFF"))


def test_32_bit_integer_tiffs_are_scaled_not_saturated() -> None:
    values = np.zeros((40, 60), np.int32)
    values[:, 20:40] = 1_000_000_000
    values[:, 40:] = 2_000_000_000
    image = np.asarray(decode.read_image(_encode(Image.fromarray(values, "I"), "TIFF")))
    assert image[0, 0] == 0 and 50 < image[0, 30] < 70 and 110 < image[0, 50] < 130


def test_16_bit_and_float_scaling_rules() -> None:
    sixteen = np.full((4, 4), 65535, np.uint16)
    assert np.asarray(decode.read_image(Image.fromarray(sixteen))).max() == 255
    unit = np.full((4, 4), 0.5, np.float32)
    assert np.asarray(decode.read_image(Image.fromarray(unit, "F")))[0, 0] == 128
    with pytest.raises(UnreadableImage, match="above 255"):
        decode.read_image(Image.fromarray(np.full((4, 4), 300.0, np.float32), "F"))


# -- fuzzing the decoder ------------------------------------------------------------------------
def _seeds() -> list[bytes]:
    base = _garment(48, 32)
    seeds = [_encode(base, fmt) for fmt in ("PNG", "JPEG", "WEBP", "BMP", "GIF", "TIFF")]
    seeds.append(_encode(base.convert("P"), "GIF", save_all=True,
                         append_images=[base.convert("P").rotate(90)]))
    for mode in ("1", "L", "LA", "P", "RGBA", "I;16", "I", "F", "CMYK"):
        seeds.append(_encode(base.convert("L").convert(mode) if mode != "I;16" else
                             Image.fromarray(np.asarray(base.convert("L"), np.uint16) * 257),
                             "TIFF" if mode in ("I;16", "I", "F", "CMYK", "1") else "PNG"))
    seeds.append(png_header_only(65535, 65535))
    seeds.append(_jpeg_with_bad_exif())
    return seeds


def _mutations(rng: random.Random, seed: bytes) -> list[bytes]:
    out = [seed[:rng.randrange(1, len(seed))] for _ in range(3)]  # truncations
    for _ in range(6):  # bit flips, a few at a time
        data = bytearray(seed)
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        out.append(bytes(data))
    data = bytearray(seed)  # overwrite a header field with 0xFF…
    start = rng.randrange(min(len(data), 64))
    data[start:start + 4] = b"\xff\xff\xff\x7f"
    out.append(bytes(data))
    return out


def test_fuzzed_images_give_an_image_or_a_photo_error() -> None:
    rng = random.Random(20261126)
    cases = [bytes(rng.randrange(256) for _ in range(rng.randint(1, 300))) for _ in range(40)]
    for seed in _seeds():
        cases.append(seed)
        cases.extend(_mutations(rng, seed))
    outcomes = {"image": 0, "error": 0}
    slowest = 0.0
    for index, data in enumerate(cases):
        start = time.perf_counter()
        try:
            image = decode.read_image(data)
            assert image.mode in ("L", "LA", "RGB", "RGBA")
            assert max(image.size) <= decode.WORKING_EDGE
            outcomes["image"] += 1
        except PhotoError:
            outcomes["error"] += 1
        except Exception as exc:  # noqa: BLE001 — the point of the test
            pytest.fail(f"case {index} ({data[:16]!r}…): {type(exc).__name__}: {exc}")
        slowest = max(slowest, time.perf_counter() - start)
    assert outcomes["image"] > 20 and outcomes["error"] > 100, outcomes
    assert slowest < 5.0, f"slowest case took {slowest:.2f} s"


# -- one pixel rule for arrays (issue 14 #1) ----------------------------------------------------
def test_array_rule() -> None:
    uint8 = np.array([[0, 128, 255]], np.uint8)
    assert as_uint8_images(uint8) is uint8
    np.testing.assert_array_equal(as_uint8_images(uint8 / 255.0), uint8)
    np.testing.assert_array_equal(as_uint8_images(uint8.astype(np.float32)), uint8)
    np.testing.assert_array_equal(as_uint8_images(uint8.astype(np.int64)), uint8)
    for bad, why in ((np.array([[300]]), "0..255"), (np.array([[-0.5]]), "0..255"),
                     (np.array([[np.nan]]), "NaN"), (np.array([[True]]), "boolean"),
                     (np.array([["a"]]), "numeric")):
        with pytest.raises(DataError, match=why):
            as_uint8_images(bad)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("name", ["knn", "logistic"])
def test_classical_models_answer_the_same_for_floats_in_0_1(name, small_train, small_test
                                                             ) -> None:
    """Before: fitted on uint8, asked with floats in 0..1, a kNN answered at chance (~0.1)."""
    train = small_train.head(n_per_class=30, seed=0)
    test = small_test.head(n_per_class=20, seed=0)
    params = {"max_iter": 30} if name == "logistic" else {"n_jobs": 1}  # quick, same contract
    model = create_model(name, reduce="none", **params).fit(train.images, train.labels)
    as_uint8 = model.predict(test.images)
    as_float = model.predict(test.images / 255.0)
    flat = model.predict(test.images.reshape(len(test), -1).astype(np.float32) / 255)
    np.testing.assert_array_equal(as_float, as_uint8)
    np.testing.assert_array_equal(flat, as_uint8)
    assert (as_uint8 == test.labels).mean() > 0.6
    answers = predict(model, small_test.images[:20] / 255.0)
    assert [p.label for p in answers] == [p.label for p in predict(model, small_test.images[:20])]


def test_torch_models_answer_the_same_for_floats_in_0_1(small_train, small_test) -> None:
    """`TorchClassifier` used to refuse floats in 0..1; it now reads them by the same rule."""
    from fmnist.models.torch_estimator import TorchClassifier

    train = small_train.head(n_per_class=20, seed=0)
    model = TorchClassifier(arch="cnn", width=4, depth=2, epochs=1, verbose=False,
                            random_state=0).fit(train.images / 255.0, train.labels)
    images = small_test.images[:100]
    np.testing.assert_array_equal(model.predict(images / 255.0), model.predict(images))
    with pytest.raises(FmnistError, match="0..255"):
        model.predict(images * 2.0)


def test_predict_paths_reads_float_npy_by_the_same_rule(tmp_path, small_train) -> None:
    train = small_train.head(n_per_class=20, seed=0)
    model = create_model("knn", reduce="none", n_jobs=1).fit(train.images, train.labels)
    np.save(tmp_path / "u8.npy", train.images[:5])
    np.save(tmp_path / "f.npy", train.images[:5].astype(np.float64) / 255)
    by_file = {}
    for result in predict_paths(model, [tmp_path / "u8.npy", tmp_path / "f.npy"]):
        assert not isinstance(result, InputFailure), result
        by_file.setdefault(result.source.split("[")[0], []).append(result.label)
    assert by_file[str(tmp_path / "u8.npy")] == by_file[str(tmp_path / "f.npy")]
    with pytest.raises(FmnistError):
        predict(model, np.full((28, 28), 2.0e3))


# -- names in the command's output (#22) --------------------------------------------------------
def test_predict_output_escapes_control_characters_in_names(tmp_path, small_train, small_test
                                                            ) -> None:
    from fmnist.runs.train import train_run

    run = train_run("knn", {"reduce": "none", "n_jobs": 1},
                    small_train.head(n_per_class=20, seed=0),
                    small_test.head(n_per_class=5, seed=0), out_root=tmp_path / "runs").run_dir
    names = ["tab\there.png", "new\nline.png", "\x1b[31mred.png"]
    for name in names:
        (tmp_path / name).write_bytes(_encode(_garment(), "PNG"))
    (tmp_path / "bad\x1b[2J[bold].png").write_text("not an image")
    files = [str(tmp_path / n) for n in [*names, "bad\x1b[2J[bold].png"]]
    out = subprocess.run([sys.executable, "-m", "fmnist", "predict", str(run), *files],
                         capture_output=True, text=True, timeout=180)
    assert out.returncode == 1, out.stderr  # one input failed, the others were predicted
    rows = out.stdout.splitlines()
    assert len(rows) == 3 and all(len(row.split("\t")) == 3 for row in rows), rows
    shown = [row.split("\t")[0].rsplit("/", 1)[-1] for row in rows]
    assert shown == ["tab\\there.png", "new\\nline.png", "\\x1b[31mred.png"]
    assert "\x1b" not in out.stdout + out.stderr
    assert "bad\\x1b[2J[bold].png" in out.stderr  # escaped, not stripped, markup kept literal
