"""Export a saved model to ONNX and check the export with onnxruntime.

Every exported graph has the same contract as the Python model: input `images`, uint8
`[N, H, W]` raw pixels (the model's own scaling is inside the graph), output `probabilities`,
float32 `[N, n_classes]` in the order of `model.json`'s class names. So a program using the
ONNX file needs neither torch nor scikit-learn, only the photo recipe (`fmnist.images.photo`)
to turn photos into pixels.

* Torch estimators (`TorchClassifier`): the network, wrapped to take uint8 images and end in a
  softmax (and the flip test-time augmentation when the model uses it), exported with
  `torch.onnx.export` (the TorchScript exporter: the dynamo one needs onnxscript);
  `BoostedTorchClassifier` likewise, with scikit-learn's SAMME vote written in torch.
* Classical models (`PixelClassifier`): the fitted scikit-learn pipeline converted with
  skl2onnx, after `PixelScaler` → an equivalent `StandardScaler` and `PCAReducer` → its inner
  `PCA`; a Cast + Reshape in front turns uint8 images into the flat float rows it expects.
  Models with steps skl2onnx cannot convert (HOG features, fmnist's own Bayes and k-means
  classifiers) or whose probabilities are a softmax of decision values are refused with a
  message saying why.

The export is checked before it is kept: onnxruntime must give the same top-1 class on at
least 99.9% of the official test images and probabilities within 1e-4. Tree ensembles and kNN
convert but fail this check (float32 thresholds and distances flip some decisions), so they
are refused rather than exported subtly wrong.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fmnist.errors import FmnistError
from fmnist.fileio import atomic_write_bytes
from fmnist.models.training.inference import tta_logits
from fmnist.runs.onnx_model import INPUT, OUTPUT, OnnxClassifier
from fmnist.runs.store import LoadedRun, is_torch_network

OPSET = 17


class ExportError(FmnistError):
    """The model cannot be exported, or the export does not reproduce it."""


def export_onnx(run: LoadedRun, out: Path | str, *, check: bool = True,
                images: np.ndarray | None = None,
                int8: bool = False) -> tuple[Path, dict[str, Any] | None]:
    """Write `run.model` as ONNX to `out`; with `check`, only after onnxruntime reproduces the
    model on `images` (default: the official test set), so a bad export never lands on disk.
    With `int8`, the graph quantized by `fmnist.runs.quantize` (a torch network of 28×28
    images), and its check asks for the same class on ≥ 99 % of the images instead of 99.9 %
    and no probability bound: its answers are close to the model's, not the model's.

    Returns the path and the check's report (None without `check`).
    """
    if int8 and (not is_torch_network(run.model) or _image_shape(run) != (28, 28)):
        raise ExportError("int8 exports torch networks of 28×28 images only")  # before any work
    payload = onnx_bytes(run)
    limits: dict[str, float] = {}
    if int8:
        from fmnist.runs.quantize import MIN_AGREEMENT, int8_graph

        payload, _ = int8_graph(payload)
        limits = {"min_agreement": MIN_AGREEMENT, "max_abs_diff": 1.0}
    out = Path(out)
    staging = out.with_name(f".{out.name}.checking")
    atomic_write_bytes(staging, payload)
    try:
        report = check_onnx(run, staging, images, **limits) if check else None
        os.replace(staging, out)
    finally:
        staging.unlink(missing_ok=True)
    return out, report


def onnx_bytes(run: LoadedRun) -> bytes:
    """The serialised ONNX model for a loaded run (see the module docstring for what works)."""
    model = run.model
    shape = _image_shape(run)
    if hasattr(model, "net_") and hasattr(model, "state_tensors"):
        return _torch_onnx(_Single(model), shape)
    if hasattr(model, "estimators_") and all(hasattr(m, "net_") for m in model.estimators_):
        return _torch_onnx(_Boosted(model), shape)
    if hasattr(model, "pipeline_"):
        return _sklearn_onnx(model, shape)
    raise ExportError(f"{type(model).__name__} cannot be exported to ONNX (supported: torch "
                      "networks, AdaBoost over them, and classical pixel models)")


def onnx_probabilities(path: Path | str, images: np.ndarray) -> np.ndarray:
    """Run an exported model with onnxruntime on uint8 images `[N, H, W]`."""
    graph = OnnxClassifier(Path(path).read_bytes(), images.shape[1:], threads=0)  # every core
    return graph.predict_proba(images)


def check_onnx(run: LoadedRun, path: Path | str, images: np.ndarray | None = None,
               max_abs_diff: float = 1e-4, min_agreement: float = 0.999) -> dict[str, Any]:
    """Compare onnxruntime with the saved model: top-1 agreement and the largest probability
    difference, on `images` (default: the official test set). Raises `ExportError` when the
    export does not reproduce the model within the limits."""
    if images is None:
        from fmnist.data.official import load_fashion_mnist

        if tuple(_image_shape(run)) != (28, 28):
            raise ExportError("the check runs on the official 28×28 test images; for a model "
                              "of another image size pass images= (Python) or --no-check")
        images = load_fashion_mnist("test").images
    expected = np.asarray(run.model.predict_proba(images), dtype=np.float64)
    try:
        got = onnx_probabilities(path, images)
    except Exception as exc:  # onnxruntime's own error types
        raise ExportError(f"{type(run.model).__name__}: onnxruntime cannot run the converted "
                          f"model ({exc})") from exc
    if got.shape != expected.shape:
        raise ExportError(f"ONNX output has shape {got.shape}, expected {expected.shape}")
    report = {
        "n_images": int(len(images)),
        "top1_agreement": float(np.mean(got.argmax(1) == expected.argmax(1))),
        "max_abs_diff": float(np.abs(got - expected).max(initial=0.0)),
    }
    if report["top1_agreement"] < min_agreement or report["max_abs_diff"] > max_abs_diff:
        raise ExportError(f"{type(run.model).__name__}: the ONNX conversion does not reproduce "
                          f"the model (top-1 agreement {report['top1_agreement']:.2%}, max "
                          f"probability difference {report['max_abs_diff']:.2e} on "
                          f"{len(images):,} images), so no file was written")
    return report


def _image_shape(run: LoadedRun) -> tuple[int, int]:
    shape = run.meta.get("image_shape") or getattr(run.model, "input_shape_", None) \
        or getattr(run.model, "image_shape_", None) or (28, 28)
    return int(shape[-2]), int(shape[-1])


class _Member(torch.nn.Module):
    """What `TorchClassifier._logits` computes, from uint8 `[N, H, W]` images."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.net = model.net_.to("cpu").eval()
        self.tta = getattr(model, "tta_mode_", "flip" if getattr(model, "tta_", False)
                           else "none")

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        # The model's own test-time views, computed by the same function as `predict_proba`.
        return tta_logits(self.net, images.unsqueeze(1).float(), self.tta)


class _Single(torch.nn.Module):
    """softmax(logits): `TorchClassifier.predict_proba`."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.member = _Member(model)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.member(images).softmax(1)


class _Boosted(torch.nn.Module):
    """scikit-learn's SAMME `predict_proba` (weighted votes, softmax of the decision / (K−1))."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        for member in model.estimators_:
            if not np.array_equal(member.classes_, model.classes_):
                raise ExportError("an AdaBoost member saw fewer classes than the ensemble")
        self.k = len(model.classes_)
        self.members = torch.nn.ModuleList(_Member(m) for m in model.estimators_)
        weights = np.asarray(model.estimator_weights_[:len(model.estimators_)])
        self.register_buffer("weights", torch.tensor(weights, dtype=torch.float32))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        k = self.k
        decision = torch.zeros((images.shape[0], k), dtype=torch.float32)
        for i, member in enumerate(self.members):
            votes = torch.nn.functional.one_hot(member(images).argmax(1), k).float()
            w = self.weights[i]
            decision = decision + votes * w + (1 - votes) * (-w / (k - 1))
        decision = decision / self.weights.sum()
        if k == 2:
            margin = decision[:, 1] - decision[:, 0]
            return torch.stack([-margin, margin], 1).div(2).softmax(1)
        return (decision / (k - 1)).softmax(1)


def _torch_onnx(module: torch.nn.Module, shape: tuple[int, int]) -> bytes:
    example = torch.zeros((2, *shape), dtype=torch.uint8)
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(module, (example,), buffer, dynamo=False, opset_version=OPSET,
                          input_names=[INPUT], output_names=[OUTPUT],
                          dynamic_axes={INPUT: {0: "batch"}, OUTPUT: {0: "batch"}})
    return buffer.getvalue()


def _sklearn_onnx(model: Any, shape: tuple[int, int]) -> bytes:
    import onnx
    from onnx import TensorProto, helper
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    pipeline = _plain_pipeline(model)
    classifier = pipeline.steps[-1][1]
    has_proba = hasattr(classifier, "predict_proba")
    n_features = shape[0] * shape[1]
    # Classifiers differ in the options they accept: try the full set, then the one they need.
    wanted = [{"zipmap": False}] if has_proba else [{"zipmap": False, "raw_scores": True},
                                                     {"raw_scores": True}]
    proto = None
    for options in wanted:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # skl2onnx reads deprecated attrs
                proto = convert_sklearn(pipeline, initial_types=[("pixels", FloatTensorType(
                    [None, n_features]))], target_opset={"": OPSET, "ai.onnx.ml": 3},
                    options={id(classifier): options})
            break
        except NameError:  # an option this converter does not know
            continue
        except Exception as exc:  # skl2onnx raises many types for an unsupported model
            raise ExportError(f"{type(model).__name__}: skl2onnx cannot convert it "
                              f"({type(exc).__name__}: {exc})") from exc
    if proto is None:
        raise ExportError(f"{type(model).__name__}: skl2onnx cannot give its raw scores")
    graph = proto.graph
    prob_name = graph.output[1].name  # skl2onnx classifiers output (label, probabilities)
    if prob_name == OUTPUT:  # free the name for the graph's final output
        prob_name = "sklearn_scores"
        for node in graph.node:
            node.input[:] = [prob_name if name == OUTPUT else name for name in node.input]
            node.output[:] = [prob_name if name == OUTPUT else name for name in node.output]
    prelude = [
        helper.make_node("Cast", [INPUT], ["pixels_float"], to=TensorProto.FLOAT),
        helper.make_node("Reshape", ["pixels_float", "flat_shape"], ["pixels"]),
    ]
    if has_proba:
        final = [helper.make_node("Identity", [prob_name], [OUTPUT])]
    else:  # skl2onnx gives the decision values; fmnist's predict_proba is their softmax
        final = [helper.make_node("Softmax", [prob_name], [OUTPUT], axis=1)]
    graph.initializer.append(helper.make_tensor("flat_shape", TensorProto.INT64, [2],
                                                [-1, n_features]))
    nodes = [*prelude, *graph.node, *final]
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.input[:]
    graph.input.append(helper.make_tensor_value_info(INPUT, TensorProto.UINT8,
                                                     ["batch", *shape]))
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT,
                                                      ["batch", len(model.classes_)]))
    try:
        onnx.checker.check_model(proto)
    except onnx.checker.ValidationError as exc:
        raise ExportError(f"{type(model).__name__}: skl2onnx produced an invalid graph "
                          f"({exc})") from exc
    return proto.SerializeToString()


def _plain_pipeline(model: Any) -> Any:
    """The model's fitted pipeline with fmnist's wrappers replaced by their sklearn equivalents."""
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    from fmnist.models.features import PCAReducer, PixelScaler

    steps = []
    for name, step in model.pipeline_.steps:
        if isinstance(step, PixelScaler):
            scaler = StandardScaler()
            scaler.mean_ = step.mean_.astype(np.float64)
            scaler.scale_ = step.scale_.astype(np.float64)
            scaler.var_ = scaler.scale_ ** 2
            scaler.n_features_in_ = len(step.mean_)
            scaler.n_samples_seen_ = 1
            step = scaler
        elif isinstance(step, PCAReducer):
            step = step.pca_
        steps.append((name, step))
    return Pipeline(steps)
