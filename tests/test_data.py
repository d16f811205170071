"""The data layer: official files, IDX format, corruption cases, Kaggle CSV, splits, CLI errors."""

from __future__ import annotations

import gzip
import http.server
import shutil
import socket
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from fmnist.data import Dataset, load_csv, load_fashion_mnist, read_idx, split, write_idx
from fmnist.data.facts import verify_files
from fmnist.data.idx import idx_bytes, parse_idx
from fmnist.data.sources import OFFICIAL_FILES, SYSTEM_DIR, download, find_or_download
from fmnist.errors import DataError

# --- the real files -------------------------------------------------------------------------

def test_official_train_split(fmnist_train: Dataset) -> None:
    assert fmnist_train.images.shape == (60_000, 28, 28)
    assert fmnist_train.images.dtype == np.uint8
    assert fmnist_train.labels.dtype == np.int64
    assert fmnist_train.labels[0] == 9
    assert np.bincount(fmnist_train.labels).tolist() == [6000] * 10
    assert fmnist_train.class_names[9] == "Ankle boot"


def test_official_test_split(fmnist_test: Dataset) -> None:
    assert fmnist_test.images.shape == (10_000, 28, 28)
    assert fmnist_test.labels[:3].tolist() == [9, 2, 1]
    assert fmnist_test.labels[-3:].tolist() == [8, 1, 5]
    assert np.bincount(fmnist_test.labels).tolist() == [1000] * 10


def test_checksums_of_installed_files(fmnist_train: Dataset) -> None:
    rows = verify_files(allow_download=False)
    assert [r["file"] for r in rows] == [f.name for f in OFFICIAL_FILES.values()]
    assert all(r["status"] == "verified" for r in rows)


# --- IDX format ----------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_round_trip(tmp_path: Path, dtype: type, suffix: str) -> None:
    array = (np.arange(2 * 3 * 4) - 5).astype(dtype).reshape(2, 3, 4)
    path = write_idx(array, tmp_path / f"a.idx{suffix}")
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.shape == (2, 3, 4)
    np.testing.assert_array_equal(back, array)


def test_bad_magic_is_named(tmp_path: Path) -> None:
    path = tmp_path / "x-idx3-ubyte"
    path.write_bytes(b"\x12\x34\x08\x03" + bytes(12))
    with pytest.raises(DataError, match=r"x-idx3-ubyte.*bad IDX magic"):
        read_idx(path)


def test_wrong_count_is_named(tmp_path: Path) -> None:
    data = idx_bytes(np.zeros((5, 28, 28), np.uint8))[:-1]
    with pytest.raises(DataError, match=r"short\.idx: IDX size mismatch.*\(5, 28, 28\)"):
        parse_idx(data, "short.idx")


def test_truncated_gzip_is_named(tmp_path: Path) -> None:
    path = tmp_path / "t.idx.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.ones((50, 28, 28), np.uint8)))[:-30])
    with pytest.raises(DataError, match=r"t\.idx\.gz: not a valid gzip file"):
        read_idx(path)


def _official_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    for spec in OFFICIAL_FILES.values():
        shutil.copy(SYSTEM_DIR / spec.name, folder / spec.name)
    return folder


def test_checksum_mismatch_names_file_and_digests(tmp_path: Path, fmnist_test: Dataset) -> None:
    folder = _official_copy(tmp_path)
    labels = fmnist_test.labels.astype(np.uint8).copy()
    labels[0] = (labels[0] + 1) % 10  # one flipped label: right size, wrong content
    write_idx(labels, folder / "t10k-labels-idx1-ubyte.gz")
    with pytest.raises(DataError) as info:
        load_fashion_mnist("test", data_dir=folder)
    message = str(info.value)
    assert "t10k-labels-idx1-ubyte.gz: checksum mismatch" in message
    assert OFFICIAL_FILES["test-labels"].sha256 in message


def test_uncompressed_official_files_load(tmp_path: Path, fmnist_test: Dataset) -> None:
    folder = tmp_path / "raw"
    for key in ("test-images", "test-labels"):
        raw = gzip.decompress((SYSTEM_DIR / OFFICIAL_FILES[key].name).read_bytes())
        (folder / OFFICIAL_FILES[key].name.removesuffix(".gz")).parent.mkdir(exist_ok=True)
        (folder / OFFICIAL_FILES[key].name.removesuffix(".gz")).write_bytes(raw)
    ds = load_fashion_mnist("test", data_dir=folder)
    np.testing.assert_array_equal(ds.labels, fmnist_test.labels)


def test_missing_files_list_every_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "nowhere").mkdir()  # an existing folder without the files (a missing one is an
    monkeypatch.setenv("FMNIST_DATA", str(tmp_path / "nowhere"))  # error: test_security_data)
    monkeypatch.setattr("fmnist.data.sources.SYSTEM_DIR", tmp_path / "system")
    with pytest.raises(DataError) as info:
        find_or_download("train-images", allow_download=False)
    message = str(info.value)
    for place in (tmp_path / "nowhere", tmp_path / "system"):
        assert str(place / "train-images-idx3-ubyte.gz") in message
    assert "apt-get install dataset-fashion-mnist" in message


# --- download: bad mirrors never poison the cache --------------------------------------------

class _WrongBytes(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        body = b"not the file you want"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_download_rejects_bad_md5_and_dead_mirror(tmp_path: Path) -> None:
    server = http.server.HTTPServer(("127.0.0.1", 0), _WrongBytes)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with socket.socket() as probe:  # a closed port: connection refused at once
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    try:
        with pytest.raises(DataError) as info:
            download("test-labels", dest_dir=tmp_path, timeout=5, urls=(
                f"http://127.0.0.1:{dead}/", f"http://127.0.0.1:{server.server_port}/"))
    finally:
        server.shutdown()
    message = str(info.value)
    assert f"127.0.0.1:{dead}" in message
    assert "does not match the published bb300cfdad3c16e7a12a480ee83cd310" in message
    assert list(tmp_path.iterdir()) == []


# --- Kaggle CSV ----------------------------------------------------------------------------

def _write_csv(path: Path, labels: list[int], images: np.ndarray) -> Path:
    header = "label," + ",".join(f"pixel{i + 1}" for i in range(images[0].size))
    rows = [f"{lab}," + ",".join(map(str, img.ravel())) for lab, img in zip(labels, images,
                                                                            strict=True)]
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


def test_csv_matches_idx(tmp_path: Path, small_test: Dataset) -> None:
    part = small_test.subset(np.arange(20))
    ds = load_csv(_write_csv(tmp_path / "f.csv", part.labels.tolist(), part.images))
    np.testing.assert_array_equal(ds.images, part.images)
    np.testing.assert_array_equal(ds.labels, part.labels)
    assert ds.class_names == part.class_names and len(ds.checksum) == 64


@pytest.mark.parametrize(("text", "expected"), [
    ("pixel1,pixel2\n1,2\n", "header starting with 'label'"),
    ("label,p1,p2,p3\n1,2,3,4\n", "not a square image"),
    ("label,p1,p2,p3,p4\n1,2,3,4\n", "rows have 4 columns, header has 5"),
    ("label,p1,p2,p3,p4\n1,2,3,4,5\n1,2\n", r"malformed CSV row \(the number of columns "
     r"changed from 5 to 2 at row 2\)$"),  # NumPy's `usecols` advice is not for our users
    ("label,p1,p2,p3,p4\n1,2,x,4,5\n", "malformed CSV row"),
    ("label,p1,p2,p3,p4\n1,2,3,4,999\n", "pixel values must lie in 0..255"),
    ("label,p1,p2,p3,p4\n12,2,3,4,5\n", "labels must lie in 0..9"),
])
def test_csv_errors(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(DataError, match=expected):
        load_csv(path)


# --- splits --------------------------------------------------------------------------------

def test_split_is_stratified_and_deterministic(fmnist_train: Dataset) -> None:
    train, val = split(fmnist_train, 0.2, seed=7)
    assert (len(train), len(val)) == (48_000, 12_000)
    assert np.bincount(val.labels).tolist() == [1200] * 10
    again, _ = split(fmnist_train, 0.2, seed=7)
    np.testing.assert_array_equal(train.labels, again.labels)
    np.testing.assert_array_equal(train.images[:50], again.images[:50])
    other, _ = split(fmnist_train, 0.2, seed=8)
    assert not np.array_equal(train.images[:50], other.images[:50])


def test_dataset_rejects_wrong_shapes() -> None:
    with pytest.raises(ValueError, match="uint8"):
        Dataset(np.zeros((2, 28, 28), np.float32), np.zeros(2))
    with pytest.raises(ValueError, match="labels have shape"):
        Dataset(np.zeros((2, 28, 28), np.uint8), np.zeros(3))


# --- the command line ----------------------------------------------------------------------

def _fmnist(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fmnist", *args], capture_output=True,
                          text=True, timeout=120)


def test_cli_info_json(fmnist_train: Dataset) -> None:
    import json

    result = _fmnist("data", "info", "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["splits"]["train"]["images"] == 60_000
    assert info["splits"]["test"]["per_class"]["Bag"] == 1_000
    assert all(f["status"].startswith("verified") for f in info["files"])


def test_cli_corrupt_file_clear_error(tmp_path: Path, fmnist_train: Dataset) -> None:
    folder = _official_copy(tmp_path)
    target = folder / "train-labels-idx1-ubyte.gz"
    target.write_bytes(target.read_bytes()[:1000])
    result = _fmnist("data", "verify", "--data-dir", str(folder))
    assert result.returncode == 2
    assert "train-labels-idx1-ubyte.gz: not a valid gzip file" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
