"""An int8 copy of an exported ONNX graph, and the check that it still answers like the model.

Why: on this project's 2-core CPUs ONNX Runtime's fp32 forward pass is what limits
`fmnist serve` under load (benchmarks/RESULTS.md, "int8 serving"); the same graph with int8
weights and activations in its convolutions and matrix products (ONNX Runtime's static QDQ
quantization: per-channel int8 weights, uint8 activations, min–max calibration) runs ≈ 2.3×
faster per image for the default `cnn` and for the shipped ResNet-20, with the same test
accuracy within ±0.002. Its answers are not bit-identical to the model's, so it is only used
when asked for (`fmnist serve --backend int8`) and only after `check_agreement` passes.

Calibration and the check read the verified official images (never downloaded here): a
quantized graph is only as good as the images its activation ranges were measured on, and the
served models take Fashion-MNIST's 28×28 format. Both run in a child process
(`python -m fmnist.runs.quantize FP32 OUT`): reading 60k images and calibrating left the server
≈ 260 MB larger for its whole life (memory the allocator keeps), and the child gives it back.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from fmnist.data.dataset import stratified_indices
from fmnist.errors import FmnistError

CALIBRATION_IMAGES = 1024  # a stratified or a random 1,024: test accuracy within ±0.002
CHECK_IMAGES = 2000
MIN_AGREEMENT = 0.99  # measured 99.4–99.8 % (cnn, ResNet-20) on the whole test set
IMAGE_SHAPE = (28, 28)
BUILD_TIMEOUT_S = 300


def int8_graph(fp32: bytes) -> tuple[bytes, float]:
    """The int8 copy of `fp32` (a serialised ONNX graph of `fmnist.runs.export`'s contract)
    and the share of `CHECK_IMAGES` official test images on which it names fp32's class; built
    in a child process (see the module docstring). Any failure is one `FmnistError`."""
    import fmnist

    env = dict(os.environ)  # the child imports this same fmnist, wherever it was found
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(fmnist.__file__).parents[1]),
                                                      env.get("PYTHONPATH")]))
    with tempfile.TemporaryDirectory(prefix="fmnist-int8-") as tmp:
        source, target = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        source.write_bytes(fp32)
        try:
            # cwd: `-m` puts the working directory first on the child's path, so it is the
            # temporary folder, where no other `fmnist` can shadow this one
            done = subprocess.run([sys.executable, "-m", "fmnist.runs.quantize", str(source),
                                   str(target)], capture_output=True, text=True, env=env,
                                  cwd=tmp, timeout=BUILD_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired as exc:
            raise FmnistError(f"building the int8 graph took over {BUILD_TIMEOUT_S} s") from exc
        if done.returncode != 0:
            lines = done.stderr.strip().splitlines() or [f"exit status {done.returncode}"]
            raise FmnistError(f"cannot build the int8 graph: {lines[-1]}")
        last = (done.stdout.strip().splitlines() or ["{}"])[-1]  # after anything a library printed
        return target.read_bytes(), float(json.loads(last)["agreement"])


def int8_onnx_bytes(fp32: bytes, calibration: np.ndarray, reduce_range: bool = False) -> bytes:
    """`fp32` (a serialised ONNX graph whose one input takes uint8 images) quantized to int8,
    its activation ranges measured on the uint8 `calibration` images; `reduce_range`: 7-bit
    weights (see `_build`)."""
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    input_name = onnx.load_from_string(fp32).graph.input[0].name

    class Batches(CalibrationDataReader):
        def __init__(self) -> None:
            self._batches = iter(calibration[i:i + 64] for i in range(0, len(calibration), 64))

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self._batches, None)
            return None if batch is None else {input_name: batch}

    with tempfile.TemporaryDirectory(prefix="fmnist-int8-") as tmp, _quiet_root_logger():
        folder = Path(tmp)
        (folder / "fp32.onnx").write_bytes(fp32)
        # shape inference and BatchNorm folding first, as ONNX Runtime's quantizer recommends
        quant_pre_process(str(folder / "fp32.onnx"), str(folder / "pre.onnx"),
                          skip_symbolic_shape=True)
        quantize_static(str(folder / "pre.onnx"), str(folder / "int8.onnx"), Batches(),
                        quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8, per_channel=True,
                        reduce_range=reduce_range,
                        # only the layers with weights: quantizing everything also rounds the
                        # probabilities to steps of 1/255, for no measurable speed
                        op_types_to_quantize=["Conv", "MatMul", "Gemm"],
                        calibrate_method=CalibrationMethod.MinMax)
        return (folder / "int8.onnx").read_bytes()


def official_images(split: str, n: int) -> np.ndarray:
    """A stratified `n` of the verified official `split` images (seed 0), or one clear error."""
    from fmnist.data.official import load_fashion_mnist

    try:
        data = load_fashion_mnist(split, allow_download=False)
    except FmnistError as exc:
        raise FmnistError(f"int8 needs the official Fashion-MNIST images to calibrate and check "
                          f"against ({exc})") from exc
    return data.images[np.sort(stratified_indices(data.labels, n, seed=0))]


def check_agreement(reference: Callable[[np.ndarray], np.ndarray],
                    candidate: Callable[[np.ndarray], np.ndarray], images: np.ndarray) -> float:
    """The share of `images` on which `candidate` names the same class as `reference`; an
    error below `MIN_AGREEMENT`, so a graph that quantized badly is never served."""
    same = 0
    for start in range(0, len(images), 250):
        batch = images[start:start + 250]
        same += int((reference(batch).argmax(1) == candidate(batch).argmax(1)).sum())
    agreement = same / len(images)
    if agreement < MIN_AGREEMENT:
        raise FmnistError(f"the int8 graph names the model's class on only {agreement:.1%} of "
                          f"{len(images):,} test images (at least {MIN_AGREEMENT:.0%} needed)")
    return agreement


@contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """ONNX Runtime's quantizer logs a warning per BatchNorm it leaves in float through the
    root logger; they say nothing a user can act on."""
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


def _build(source: Path, target: Path) -> float:
    """The child's job: calibrate, quantize, check against fp32, then write `target`."""
    from fmnist.runs.onnx_model import OnnxClassifier

    def predictor(graph: bytes) -> Callable[[np.ndarray], np.ndarray]:
        return OnnxClassifier(graph, IMAGE_SHAPE, threads=0).predict_proba  # 0: every core

    fp32 = source.read_bytes()
    reference = predictor(fp32)
    calibration = official_images("train", CALIBRATION_IMAGES)
    check = official_images("test", CHECK_IMAGES)
    int8 = int8_onnx_bytes(fp32, calibration)
    try:
        agreement = check_agreement(reference, predictor(int8), check)
    except FmnistError:
        # A processor without VNNI (AVX2) multiplies uint8 × int8 pairs into saturating int16
        # sums: 8-bit weights overflow there (agreement on an AVX2 EPYC, 2026-11-27: the
        # shipped ResNet-20 97.5 %, a small `cnn` 96.2 %; the ResNet 99.5 % with 7 bits).
        # ONNX Runtime's answer is 7-bit weights, tried second so that VNNI processors keep
        # the full range.
        int8 = int8_onnx_bytes(fp32, calibration, reduce_range=True)
        agreement = check_agreement(reference, predictor(int8), check)
    target.write_bytes(int8)
    return agreement


if __name__ == "__main__":
    try:
        print(json.dumps({"agreement": _build(Path(sys.argv[1]), Path(sys.argv[2]))}))
    except FmnistError as error:
        sys.exit(f"{error}")  # one line on stderr, exit status 1
