"""Hostile array files (issue 11 #9, #20, #27): `.npy` and IDX inputs are sized from their
header before anything is allocated, never unpickled, and an empty one is an error.

The files are real `.npy`/IDX files whose headers were edited the way an attacker would; the
model is a real logistic regression fitted on 200 Fashion-MNIST images.
"""

from __future__ import annotations

import gzip
import re
import struct
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from fmnist.data import Dataset
from fmnist.data.idx import gunzip, gunzip_idx, idx_bytes, parse_idx, read_bytes
from fmnist.errors import DataError
from fmnist.models import create_model
from fmnist.predict import InputFailure, Prediction, predict_paths
from fmnist.runs.store import save


@pytest.fixture(scope="module")
def model(fmnist_train: Dataset):
    few = fmnist_train.head(n_per_class=20, seed=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return create_model("logistic", max_iter=10).fit(few.images, few.labels)


def _npy_claiming(path: Path, shape: tuple[int, ...], dtype: str = "|u1") -> Path:
    """A real .npy header promising `shape`, followed by only 784 bytes."""
    header = np.lib.format.header_data_from_array_1_0(np.zeros(1, np.uint8))
    header.update(shape=shape, descr=dtype)
    with open(path, "wb") as handle:
        np.lib.format.write_array_header_1_0(handle, header)
        handle.write(bytes(784))
    return path


def test_npy_header_claiming_78_gb_costs_nothing_and_the_batch_goes_on(model, tmp_path: Path
                                                                       ) -> None:
    bad = _npy_claiming(tmp_path / "a-huge.npy", (100_000_000, 28, 28))
    good = tmp_path / "b-good.npy"
    np.save(good, np.zeros((28, 28), np.uint8))
    results = list(predict_paths(model, [bad, good]))
    assert isinstance(results[0], InputFailure)
    assert re.search(r"claims shape \(100000000, 28, 28\) \(78,400,000,000 bytes\) but the "
                     r"file holds 784", results[0].error)
    assert isinstance(results[1], Prediction)


def test_npy_objects_and_odd_dtypes_are_refused_unread(model, tmp_path: Path) -> None:
    objects = tmp_path / "objects.npy"
    np.save(objects, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    strings = _npy_claiming(tmp_path / "strings.npy", (1,), "<U196")
    broken = tmp_path / "broken.npy"
    broken.write_bytes(b"\x93NUMPY\x01\x00\x10\x00{'descr': 'x'}  \n")
    results = list(predict_paths(model, [objects, strings, broken]))
    assert all(isinstance(r, InputFailure) for r in results)
    assert "object arrays would need pickle" in results[0].error
    assert "only numeric pixels" in results[1].error
    assert "not a readable .npy array" in results[2].error


def test_npy_headers_numpy_cannot_tokenize_are_refused_and_the_batch_goes_on(model, tmp_path: Path
                                                                          ) -> None:
    """Found by fuzzing: an unclosed bracket in the header made NumPy's header filter raise
    tokenize.TokenError, which escaped the per-file guard and ended the whole batch."""
    unclosed = tmp_path / "a-unclosed.npy"
    header = b"{'descr': '|u1', 'fortran_order': False, 'shape': (1, 28, 28, }"
    header += b" " * (63 - (10 + len(header)) % 64) + b"\n"
    unclosed.write_bytes(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header
                         + bytes(784))
    good = tmp_path / "b-good.npy"
    np.save(good, np.zeros((28, 28), np.uint8))
    results = list(predict_paths(model, [unclosed, good]))
    assert isinstance(results[0], InputFailure)
    assert "not a readable .npy array (EOF in multi-line statement)" in results[0].error
    assert isinstance(results[1], Prediction)


def test_empty_arrays_are_an_error_not_silence(model, tmp_path: Path) -> None:
    """#20: a 0-image .npy or IDX used to print nothing and exit 0."""
    npy = tmp_path / "empty.npy"
    np.save(npy, np.zeros((0, 28, 28), np.uint8))
    idx = tmp_path / "empty-images-idx3-ubyte"
    idx.write_bytes(idx_bytes(np.zeros((0, 28, 28), np.uint8)))
    results = list(predict_paths(model, [npy, idx]))
    assert [type(r) for r in results] == [InputFailure, InputFailure]
    assert all("holds no images" in r.error for r in results)
    run = save(model, tmp_path / "run", {"image_shape": [28, 28]})
    done = subprocess.run([sys.executable, "-m", "fmnist", "predict", str(run), str(npy)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "holds no images" in done.stdout + done.stderr


def test_idx_size_overflow_reports_the_true_size() -> None:
    """#27: 4 dimensions of 2^32-1 overflowed int64 and printed a negative byte count."""
    dims = (2**32 - 1,) * 4
    data = struct.pack(">HBB", 0, 0x0D, 4) + struct.pack(">4I", *dims) + bytes(16)
    with pytest.raises(DataError) as info:
        parse_idx(data, "huge.idx")
    claimed = re.search(r"\(([\d,]+) bytes\)", str(info.value))
    assert claimed and int(claimed.group(1).replace(",", "")) == 16 + 4 * (2**32 - 1) ** 4 + 4


def test_a_gzipped_idx_inflates_no_further_than_its_header_says(tmp_path: Path) -> None:
    """A 1–2 MB bomb once inflated to the 1 GiB cap (2 GB held) before `parse_idx` refused it:
    now the header is read first, and inflating stops at the size it announces."""
    small = idx_bytes(np.zeros((2, 28, 28), np.uint8))
    bomb = gzip.compress(small + bytes(200 << 20), compresslevel=1)  # 200 MB past the end
    with pytest.raises(DataError, match="decompresses to more than 1,584 bytes"):
        gunzip_idx(bomb, "bomb.gz")
    huge = struct.pack(">HBB", 0, 0x08, 3) + struct.pack(">3I", 2**20, 2**10, 2**10)
    with pytest.raises(DataError, match="its IDX header announces 1,099,511,627,792 bytes"):
        gunzip_idx(gzip.compress(huge + bytes(1 << 20)), "huge.gz")
    with pytest.raises(DataError, match="not an IDX file"):
        gunzip_idx(gzip.compress(bytes(50 << 20)), "zeros.gz")
    assert parse_idx(gunzip_idx(gzip.compress(small), "ok.gz")).shape == (2, 28, 28)
    (tmp_path / "x.idx.gz").write_bytes(bomb)
    with pytest.raises(DataError, match="decompresses to more than"):
        read_bytes(tmp_path / "x.idx.gz")


def test_gzip_bombs_and_devices_are_bounded(tmp_path: Path) -> None:
    bomb = gzip.compress(bytes(20 << 20))  # 20 MB of zeros in ~20 KB
    with pytest.raises(DataError, match="decompresses to more than 1,048,576 bytes"):
        gunzip(bomb, "bomb.gz", 1 << 20)
    assert gunzip(bomb + gzip.compress(b"xy"), "two.gz", 21 << 20)[-2:] == b"xy"
    with pytest.raises(DataError, match="truncated or corrupt"):
        gunzip(bomb[:-100], "cut.gz")
    link = tmp_path / "train-images-idx3-ubyte"
    link.symlink_to("/dev/zero")
    with pytest.raises(DataError, match="not a regular file"):
        read_bytes(link)
