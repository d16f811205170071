"""How the served model's forward pass runs: ONNX Runtime, or the model's own `predict_proba`.

Why: on 2 CPU cores the forward pass of a torch network through eager PyTorch costs far more per
call than the same graph in ONNX Runtime (measured per batch size in benchmarks/RESULTS.md,
"Serving backends"), and the micro-batcher's calls are small (1 to 64 images), where that fixed
overhead dominates. So `auto` serves a torch network through ONNX Runtime when `onnx` and
`onnxruntime` are importable, and through the model itself otherwise.

The ONNX graph is built in memory at start from the run that `fmnist.runs.store.load` already
verified (`fmnist.runs.export.onnx_bytes`); an `.onnx` file in a model folder is never read, so
the server runs nothing the store did not check (docs/security.md). The one exception is the
model shipped with the package, whose graph is pinned by its SHA-256 in the code
(`fmnist.weights`): `auto` and `onnx` serve that graph as it is. Before it is used, the
session must reproduce the model's own probabilities on a fixed probe batch within 1e-4 (the
export's own tolerance); otherwise `auto` falls back to the model and says why, and an explicit
`onnx` is an error.

`int8` (asked for, never automatic) serves that graph quantized to int8 (`fmnist.runs.quantize`):
≈ 2× the images per second of the batcher's thread, which is what limits a loaded server on 2
cores, for answers that differ from the model's on ≈ 0.5 % of test images (accuracy unchanged
within ±0.002). It needs the official images to calibrate on and to check that it names the
model's class on at least 99 % of 2,000 test images; anything short of that is an error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np

from fmnist.errors import FmnistError
from fmnist.runs.onnx_model import OnnxClassifier
from fmnist.runs.store import LoadedRun, is_torch_network

BACKENDS = ("auto", "onnx", "int8", "native")
MAX_PROBE_DIFF = 1e-4  # as `fmnist export`'s check


@dataclass(frozen=True)
class Backend:
    """The forward pass the micro-batcher calls, and a line saying what it is and why."""

    name: str  # "onnx", "int8" or "native"
    predict_proba: Callable[[np.ndarray], np.ndarray]
    note: str


def make_backend(model: Any, image_shape: tuple[int, int], choice: str = "auto",
                 threads: int = 1) -> Backend:
    """The backend for a fitted `model` of `image_shape` inputs by `choice` (see the module
    docstring); `threads` is ONNX Runtime's intra-op thread count (the caller sets torch's)."""
    if choice not in BACKENDS:
        raise FmnistError(f"unknown backend {choice!r}; choose one of {', '.join(BACKENDS)}")
    native = Backend("native", model.predict_proba,
                     f"the model's own predict_proba ({type(model).__name__})")
    if isinstance(model, OnnxClassifier) and choice in ("auto", "onnx"):
        return Backend("onnx", model.predict_proba, f"ONNX Runtime {_ort_version()}, "
                       f"{_threads(model.threads)}, the graph shipped with the model")
    if choice == "native":
        return native
    if choice == "auto" and not is_torch_network(model):
        return native  # classical models: their ONNX conversions were not measured to pay
    if choice == "int8":
        return _int8_backend(model, tuple(image_shape), threads)
    try:
        return _onnx_backend(model, tuple(image_shape), threads)
    except FmnistError as exc:
        if choice == "onnx":
            raise
        return Backend(native.name, native.predict_proba, f"{native.note}; not ONNX: {exc}")


def _onnx_backend(model: Any, shape: tuple[int, int], threads: int) -> Backend:
    predict_proba, _ = _fp32_graph(model, shape, threads)
    return Backend("onnx", predict_proba, f"ONNX Runtime {_ort_version()}, {_threads(threads)}, "
                   "built in memory from the loaded run")


def _int8_backend(model: Any, shape: tuple[int, int], threads: int) -> Backend:
    from fmnist.runs.quantize import CHECK_IMAGES, IMAGE_SHAPE, int8_graph

    if not is_torch_network(model):
        raise FmnistError("int8 serves torch networks only; this model is "
                          f"{type(model).__name__}")
    if shape != IMAGE_SHAPE:
        raise FmnistError(f"int8 is calibrated on 28×28 images; this model takes "
                          f"{shape[0]}×{shape[1]}")
    _, payload = _fp32_graph(model, shape, threads)  # checked against the model first
    graph, agreement = int8_graph(payload)
    quantized = OnnxClassifier(graph, shape, threads).predict_proba
    return Backend("int8", quantized, f"ONNX Runtime {_ort_version()} in int8, "
                   f"{_threads(threads)}, built in memory from the loaded run (names the "
                   f"model's class on {agreement:.1%} of {CHECK_IMAGES:,} test images)")


def _fp32_graph(model: Any, shape: tuple[int, int],
                threads: int) -> tuple[Callable[[np.ndarray], np.ndarray], bytes]:
    """The model's ONNX graph and its session's predict_proba, checked against the model on the
    probe images (an error when it differs)."""
    missing = [m for m in ("onnx", "onnxruntime") if find_spec(m) is None]
    if missing:
        raise FmnistError(f"{' and '.join(missing)} not installed (pip install onnx onnxruntime)")
    from fmnist.runs.export import onnx_bytes

    try:  # `onnx_bytes` reads the model and its input size; the rest of a run is not needed
        payload = onnx_bytes(LoadedRun(model, {"image_shape": list(shape)}, Path(".")))
    except FmnistError:
        raise
    except Exception as exc:  # torch's exporter raises many types for what it cannot trace
        raise FmnistError(f"the network cannot be exported to ONNX ({type(exc).__name__}: "
                          f"{exc})") from exc
    predict_proba = OnnxClassifier(payload, shape, threads).predict_proba
    diff = _probe_difference(model, shape, predict_proba)
    if not diff <= MAX_PROBE_DIFF:  # NaN fails too
        raise FmnistError(f"ONNX Runtime differs from the model by {diff:.1e} on the probe "
                          f"images (limit {MAX_PROBE_DIFF:.0e})")
    return predict_proba, payload


def _threads(threads: int) -> str:
    return f"{threads} thread{'s' if threads > 1 else ''}"


def _probe_difference(model: Any, shape: tuple[int, int], predict_proba: Callable) -> float:
    """Largest probability difference between ONNX Runtime and the model on 16 fixed images
    (black, white, and seeded noise at several contrasts): cheap, and needs no data files."""
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, size=(14, *shape)) * np.linspace(0.1, 1, 14)[:, None, None]
    probe = np.concatenate([np.zeros((1, *shape)), np.full((1, *shape), 255), noise])
    probe = probe.astype(np.uint8)
    expected = np.asarray(model.predict_proba(probe), dtype=np.float64)
    got = np.asarray(predict_proba(probe), dtype=np.float64)
    if got.shape != expected.shape:
        return float("inf")
    return float(np.abs(got - expected).max())


def _ort_version() -> str:
    import onnxruntime as ort

    return ort.__version__

