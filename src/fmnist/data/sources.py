"""Where the data comes from: the official files (found or downloaded, always verified) and
Kaggle's CSV layout.

Verification is by SHA-256 of the *decompressed* IDX bytes, because other copies (Debian's
package among them) recompress the .gz files. Every load hashes again: nothing is remembered
between runs. A memo keyed by path, size and modification time was fooled by an in-place edit
with the mtime put back, and hashing is cheap next to reading: SHA-256 of the 47 MB training
images takes ~26 ms where gunzipping them takes ~315 ms (2-core machine).
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import urllib.error
import urllib.request
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fmnist.data.dataset import CLASS_NAMES, Dataset
from fmnist.data.idx import parse_idx, read_bytes
from fmnist.errors import DataError
from fmnist.fileio import atomic_write_bytes


@dataclass(frozen=True)
class OfficialFile:
    """One of the four published files with its published digests and decompressed size."""

    name: str
    md5_gz: str
    sha256: str
    size: int


OFFICIAL_FILES: dict[str, OfficialFile] = {
    "train-images": OfficialFile(
        "train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888", 47_040_016),
    "train-labels": OfficialFile(
        "train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe",
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9", 60_008),
    "test-images": OfficialFile(
        "t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79",
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b", 7_840_016),
    "test-labels": OfficialFile(
        "t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310",
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34", 10_008),
}

# The official release, then a mirror of the same bytes.
DOWNLOAD_URLS: tuple[str, ...] = (
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
)
SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")
APT_HINT = (
    "On Debian/Ubuntu: sudo apt-get install dataset-fashion-mnist. "
    "Or put the four official .gz files in a folder and pass --data-dir (or set FMNIST_DATA)."
)


def cache_dir() -> Path:
    """The user cache folder for downloads (`$FMNIST_CACHE` wins; platformdirs is imported only
    when it is needed, so training runs on machines without it, e.g. a bare GPU box)."""
    if os.environ.get("FMNIST_CACHE"):
        return Path(os.environ["FMNIST_CACHE"])
    import platformdirs

    return Path(platformdirs.user_cache_dir("fmnist"))


def search_dirs(data_dir: Path | None = None) -> list[Path]:
    """Folders searched for the official files, in order."""
    dirs: list[Path] = []
    if data_dir is not None:
        if not Path(data_dir).is_dir():
            what = "is a file, not a folder" if Path(data_dir).exists() else "does not exist"
            raise DataError(f"--data-dir {data_dir} {what}; give the folder holding the four "
                            "official .gz files")
        return [Path(data_dir)]
    if os.environ.get("FMNIST_DATA"):
        dirs.append(env_data_dir(os.environ["FMNIST_DATA"]))
    dirs += [cache_dir() / "fashion-mnist", SYSTEM_DIR]
    return dirs


def env_data_dir(value: str) -> Path:
    """`$FMNIST_DATA` as a folder; a file or a missing folder is a `DataError` (a setting the
    user made on purpose and that cannot work must not be skipped in silence)."""
    folder = Path(value).expanduser()
    if folder.is_dir():
        return folder
    what = "is a file, not a folder" if folder.exists() else "does not exist"
    raise DataError(f"FMNIST_DATA={value} {what}; point it at the folder holding the four "
                    "official .gz files, or unset it")


def _candidates(folder: Path, spec: OfficialFile) -> list[Path]:
    return [folder / spec.name, folder / spec.name.removesuffix(".gz")]


def locate(key: str, data_dir: Path | None = None) -> Path | None:
    """The first existing copy of an official file (gzipped or not) in the search folders."""
    for folder in search_dirs(data_dir):
        for path in _candidates(folder, OFFICIAL_FILES[key]):
            if path.is_file():
                return path
    return None


def read_verified(key: str, path: Path, verify: bool = True) -> tuple[np.ndarray, bool]:
    """Load an official file; with `verify`, its decompressed bytes must match the SHA-256.

    Returns the array and whether a checksum was compared (always, with `verify`).
    """
    spec = OFFICIAL_FILES[key]
    data = read_bytes(path)
    if verify:
        digest = hashlib.sha256(data).hexdigest()
        if digest != spec.sha256:
            raise DataError(
                f"{path}: checksum mismatch — SHA-256 of the decompressed content is {digest}, "
                f"expected {spec.sha256} ({len(data):,} bytes, expected {spec.size:,}). "
                "The file is corrupt or not the official Fashion-MNIST; delete it and reinstall."
            )
    return parse_idx(data, str(path)), verify


def download(key: str, dest_dir: Path | None = None, urls: Sequence[str] = DOWNLOAD_URLS,
             progress: Callable[[int, int], None] | None = None, timeout: float = 30.0) -> Path:
    """Download one official file into the cache, checking the published MD5.

    The bytes go to a temporary file and are renamed only after the MD5 matches, so an
    interrupted or corrupt download never poisons the cache. Tries each URL in turn.
    """
    spec = OFFICIAL_FILES[key]
    dest = Path(dest_dir or cache_dir() / "fashion-mnist") / spec.name
    errors: list[str] = []
    for base in urls:
        url = base + spec.name
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                total = int(response.headers.get("Content-Length") or 0)
                buffer = io.BytesIO()
                while chunk := response.read(1 << 16):
                    buffer.write(chunk)
                    if progress:
                        progress(buffer.tell(), total)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            errors.append(f"{url}: {getattr(exc, 'reason', exc)}")
            continue
        payload = buffer.getvalue()
        digest = hashlib.md5(payload).hexdigest()
        if digest != spec.md5_gz:
            errors.append(f"{url}: MD5 {digest} does not match the published {spec.md5_gz}")
            continue
        atomic_write_bytes(dest, payload)
        return dest
    raise DataError(f"could not download {spec.name}:\n  " + "\n  ".join(errors))


def find_or_download(key: str, data_dir: Path | None = None, allow_download: bool = True,
                     progress: Callable[[int, int], None] | None = None) -> Path:
    """Path to an official file: found in the search folders, else downloaded into the cache."""
    path = locate(key, data_dir)
    if path is not None:
        return path
    searched = [str(p) for folder in search_dirs(data_dir)
                for p in _candidates(folder, OFFICIAL_FILES[key])]
    reasons = ""
    if allow_download and data_dir is None:
        try:
            return download(key, progress=progress)
        except DataError as exc:
            reasons = f"\nDownloading failed: {exc}"
    raise DataError(
        f"Fashion-MNIST file {OFFICIAL_FILES[key].name} not found. Looked in:\n  "
        + "\n  ".join(searched) + reasons + "\n" + APT_HINT
    )


def load_csv(path: Path, class_names: Sequence[str] = CLASS_NAMES) -> Dataset:
    """Kaggle's layout: a header `label,pixel1..pixel784`, then one image per row.

    Any square image size works; a UTF-8 byte-order mark (as spreadsheet programs write) is
    accepted. A file with no pixel columns or no rows is a `DataError`, not an empty dataset.
    """
    path = Path(path)
    if path.exists() and not path.is_file():  # a FIFO would block the open, a device never end
        raise DataError(f"{path}: not a regular file (a FIFO, device or folder); "
                        "give a CSV file")
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            header = next(csv.reader(handle), None)
            width = _pixel_columns(path, header)
            with warnings.catch_warnings():  # numpy warns on a file with no rows: we say so
                warnings.simplefilter("ignore", UserWarning)
                # int16 holds every valid value (pixels 0..255, labels) at a quarter of int64's
                # memory: a 60k-row Kaggle file takes 94 MB, not 377 MB; larger values are
                # refused by the parser itself.
                table = np.loadtxt(handle, delimiter=",", dtype=np.int16, ndmin=2)
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read CSV ({exc})") from exc
    except (ValueError, csv.Error) as exc:  # csv.Error: e.g. a header field over 128 KiB
        # NumPy's advice to pass `usecols` is for its own callers, not for ours
        reason = str(exc).split("; use `usecols`")[0]
        raise DataError(f"{path}: malformed CSV row ({reason})") from exc
    if table.size == 0:
        raise DataError(f"{path}: a header but no image rows")
    if table.shape[1] != width + 1:
        raise DataError(f"{path}: rows have {table.shape[1]} columns, header has {width + 1}")
    pixels, labels = table[:, 1:], table[:, 0]
    if pixels.min() < 0 or pixels.max() > 255:
        raise DataError(f"{path}: pixel values must lie in 0..255")
    if labels.min() < 0 or labels.max() >= len(class_names):
        raise DataError(f"{path}: labels must lie in 0..{len(class_names) - 1}")
    side = int(round(width ** 0.5))
    images = pixels.astype(np.uint8).reshape(-1, side, side)
    digest = hashlib.sha256(images.tobytes() + labels.astype(np.int64).tobytes()).hexdigest()
    return Dataset(images, labels, tuple(class_names), source=str(path), checksum=digest)


def _pixel_columns(path: Path, header: list[str] | None) -> int:
    """The number of pixel columns the header announces: at least one, and a square count."""
    if not header or header[0].strip().lower() != "label":
        raise DataError(f"{path}: expected a header starting with 'label' (Kaggle layout)")
    width = len(header) - 1
    if width == 0:
        raise DataError(f"{path}: the header has a 'label' column but no pixel columns")
    side = int(round(width ** 0.5))
    if side * side != width:
        raise DataError(f"{path}: {width} pixel columns is not a square image")
    return width
