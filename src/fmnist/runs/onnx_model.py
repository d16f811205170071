"""A classifier that is an ONNX graph run by ONNX Runtime, and the one way fmnist opens a session.

Why: importing torch is most of a cold `fmnist predict PHOTO` (1.0–1.5 s of ≈ 2.3 s on 2 cores,
benchmarks/RESULTS.md), and a network's forward pass in ONNX Runtime is as fast or faster. So
the model shipped with the package carries its graph (`fmnist.weights`), and the server builds
one in memory from a torch run (`fmnist.serve.backends`); both open it here. Every graph has
`fmnist.runs.export`'s contract: uint8 images `[N, H, W]` in, float32 probabilities out.

ONNX Runtime runs only the operators of the ONNX standard from a graph (no custom-op libraries
are registered), and fmnist opens only graphs it built or pinned by SHA-256 (docs/security.md).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from fmnist.errors import FmnistError

INPUT = "images"
OUTPUT = "probabilities"
# Images per session call: bounds one call's activations (the shipped ResNet-20's first layer
# holds 1,024 × 16 × 28 × 28 floats = 51 MB) whatever the caller passes.
BATCH = 1024


def ort_session(payload: bytes, threads: int) -> Any:
    """One ONNX Runtime CPU session: `threads` intra-op threads that sleep when idle (spinning
    would take the core a web server or the next photo needs), nodes run one after another."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3  # errors only: its warnings are about graph rewrites
    try:
        return ort.InferenceSession(payload, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's own error types
        raise FmnistError(f"ONNX Runtime cannot load the graph ({exc})") from exc


class OnnxClassifier:
    """`predict_proba` over uint8 images through an ONNX graph, with the attributes the rest of
    fmnist reads from a fitted model (`classes_`, `input_shape_`; the classes counted from the
    graph's output)."""

    def __init__(self, payload: bytes, image_shape: tuple[int, int], threads: int = 1) -> None:
        self._session = ort_session(payload, threads)
        width = self._session.get_outputs()[0].shape[-1]
        if not isinstance(width, int) or width < 1:
            raise FmnistError(f"the graph's output has no fixed number of classes ({width!r})")
        self.classes_ = np.arange(width)
        self.input_shape_ = tuple(image_shape)
        self.threads = threads

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        """Probabilities `[N, n_classes]` (float64) for uint8 images `[N, H, W]`."""
        images = np.ascontiguousarray(images, dtype=np.uint8)
        outs = [self._session.run([OUTPUT], {INPUT: images[i:i + BATCH]})[0]
                for i in range(0, len(images), BATCH)]
        if not outs:
            return np.zeros((0, len(self.classes_)))
        return np.concatenate(outs).astype(np.float64)

    def predict(self, images: np.ndarray) -> np.ndarray:
        """Class indices, the highest probability of each image."""
        return self.predict_proba(images).argmax(1)
