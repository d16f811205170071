"""`TrainedNet`: a trained torch network that names garments, with no scikit-learn in sight.

Why it exists: `TorchClassifier` is a scikit-learn estimator, and importing scikit-learn (which
pulls in scipy.stats, pandas and joblib) was 1.2 s of a 3.45 s cold `fmnist predict PHOTO` on
the 2-core development machine (2.21 s without it, benchmarks/RESULTS.md), for an API that
prediction never uses. So the inference half
of `TorchClassifier` lives here, once:

* `TorchClassifier` inherits it: `fit` sets the attributes below and predicts through them;
* `fmnist.runs.store` loads a run written from a `TorchClassifier` as a `TrainedNet`: the same
  network, weights and test-time views, so the same probabilities, without the estimator's
  training API (`fit`, `get_params`, `clone`, `score`).

Train, tune, compare and cross-validate `TorchClassifier`s; predict, evaluate, serve and export
either. `BoostedTorchClassifier` runs still load as themselves (AdaBoost's vote is
scikit-learn's code).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from fmnist.errors import FmnistError
from fmnist.images.arrays import as_uint8_images
from fmnist.models.nets import build_net, fuse_for_inference
from fmnist.models.training.config import pick_device
from fmnist.models.training.inference import TTA_MODES, place, predict_logits

STATE_FORMAT = 1
# The largest inference batch, in 28×28 images, whatever a run folder's `eval_batch_size` says:
# a hostile one of 1e9 with a 512×512 input once scored 32 images in one 1.9 GB batch. 4,096
# (a GPU's default) keeps one batch of the shipped ResNet-20's first layer near 200 MB.
MAX_EVAL_BATCH = 4096


def as_images(X: Any) -> np.ndarray:
    """Images as a uint8 array `[N, H, W]`; `[N, H, W, 1]` is squeezed; pixel values follow the
    package's one rule (`fmnist.images.arrays.as_uint8_images`: uint8 as is, floats in 0..1
    scaled by 255); anything else is a user error."""
    arr = np.asarray(X)
    if arr.ndim == 4 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim != 3:
        raise FmnistError(f"expected images shaped [N, H, W] (raw 0..255 pixels), got shape "
                          f"{arr.shape}; reshape flat rows with X.reshape(-1, 28, 28)")
    return np.ascontiguousarray(as_uint8_images(arr, "images"))


def as_tensor(images: np.ndarray) -> torch.Tensor:
    """`[N, 1, H, W]` sharing memory with `images` (copied first if read-only, as torch asks)."""
    if not images.flags.writeable:
        images = images.copy()
    return torch.from_numpy(images).unsqueeze(1)


def parse_hidden(h: Any) -> tuple[int, ...] | int | None:
    """Accept `512,256` (from `--set hidden=512,256`), a list, a tuple or an int."""
    if h is None or isinstance(h, int):
        return h
    if isinstance(h, str):
        return tuple(int(v) for v in h.split(",") if v.strip())
    return tuple(int(v) for v in h)


def build_from_params(params: Mapping[str, Any], input_shape: tuple[int, int],
                      n_classes: int) -> torch.nn.Module:
    """The untrained network a `TorchClassifier` with these parameters builds (the ones that
    shape the network; the rest shape training). Defaults are `TorchClassifier`'s."""
    return build_net(params.get("arch", "cnn"), input_shape, n_classes,
                     width=params.get("width"), depth=params.get("depth"),
                     hidden=parse_hidden(params.get("hidden")), dropout=params.get("dropout"),
                     batch_norm=params.get("batch_norm", True), whiten=params.get("whiten"))


def state_params(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The `TorchClassifier` parameters of a saved state (`TorchClassifier.state_meta()`), after
    checking that it is one, in a format this fmnist reads."""
    if meta.get("estimator") != "TorchClassifier" or meta.get("state_format") != STATE_FORMAT:
        raise FmnistError(f"not a TorchClassifier state (format {meta.get('state_format')}, "
                          f"estimator {meta.get('estimator')!r})")
    params = meta.get("params")
    if not isinstance(params, dict):
        raise FmnistError("a TorchClassifier state without its parameters")
    return {**params, "hidden": parse_hidden(params.get("hidden"))}


class TrainedNet:
    """A trained network on raw uint8 images `[N, H, W]` (see the module docstring).

    Attributes (set by `TorchClassifier.fit`, or by `from_state` from a saved run)
    ----------
    classes_ : ndarray
        The class labels, in the order of `predict_proba`'s columns.
    net_ : torch.nn.Module
        The trained network (prediction uses a BatchNorm-fused copy of it).
    input_shape_ : tuple of int
        `(H, W)` of the images it takes.
    device_ : str
        Where it runs.
    tta_, tta_mode_ : bool, str
        Whether and how prediction averages augmented views (`TTA_MODES`).
    n_params_ : int
        Its learned parameters.
    eval_batch_size : int or None
        Inference batch in 28×28 images: None = 256 on CPU, 4096 on a GPU, never more than
        `MAX_EVAL_BATCH` (`_eval_batch`).
    """

    eval_batch_size: int | None = None

    @classmethod
    def from_state(cls, meta: dict[str, Any], tensors: dict[str, torch.Tensor]) -> TrainedNet:
        """The network a saved `TorchClassifier` holds, predicting exactly like it."""
        params = state_params(meta)
        trained = cls()
        batch = params.get("eval_batch_size")
        if batch is not None and (type(batch) is not int or batch < 1):
            raise FmnistError(f"eval_batch_size must be a positive integer, got {batch!r:.40}")
        trained.eval_batch_size = batch
        trained._restore(meta, params, tensors)
        trained._state_meta = copy.deepcopy(dict(meta))
        return trained

    def state_meta(self) -> dict[str, Any]:
        """The state it was loaded from, so a loaded run saves back as the same
        `TorchClassifier` run (`TorchClassifier` describes its own fit instead)."""
        if getattr(self, "_state_meta", None) is None:
            raise FmnistError(f"{type(self).__name__} was not loaded from a saved state")
        return copy.deepcopy(self._state_meta)

    def _restore(self, meta: Mapping[str, Any], params: Mapping[str, Any],
                 tensors: dict[str, torch.Tensor]) -> None:
        """Set the attributes above from a saved state and its tensors."""
        self.classes_ = np.asarray(meta["classes"])
        self.input_shape_ = tuple(int(v) for v in meta["input_shape"])
        # Built on the meta device (no memory) and then given the loaded tensors, so the sizes
        # a model.json declares can never allocate more than the weights file holds.
        with torch.device("meta"):
            net = build_from_params(params, self.input_shape_, len(self.classes_))
        try:
            net.load_state_dict(tensors, strict=True, assign=True)
        except RuntimeError as exc:
            raise FmnistError(f"saved weights do not fit architecture {params.get('arch')!r}: "
                              f"{exc}") from exc
        net.eval()
        # A model trained on a GPU machine must still load on a laptop: fall back to auto.
        try:
            device = pick_device(params.get("device", "auto"))
        except FmnistError:
            device = pick_device("auto")
        self.net_ = place(net, device)
        self._inference_net = None
        self.device_ = str(device)
        self.tta_ = bool(meta["tta"])
        self.tta_mode_ = str(meta.get("tta_mode") or ("flip" if self.tta_ else "none"))
        if self.tta_mode_ not in TTA_MODES:
            raise FmnistError(f"unknown test-time augmentation {self.tta_mode_!r} in model.json")
        self.n_params_ = int(meta["n_params"])

    def _check_fitted(self) -> None:
        """Raise unless there is a network to run (`TorchClassifier` raises scikit-learn's
        NotFittedError instead, as its estimator checks expect)."""
        if getattr(self, "net_", None) is None:
            raise FmnistError(f"{type(self).__name__} holds no trained network")

    def _eval_batch(self, device: torch.device) -> int:
        """Images per inference batch: `eval_batch_size` (default 256 on CPU, 4096 on a GPU)
        counted in 28×28 images, so larger images go in proportionally smaller batches.
        Activations grow with the area: a 512×512 net (photo folders, `--size 512`, or a run
        folder that says so) at 256 a batch would ask for gigabytes per layer."""
        base = int(self.eval_batch_size or (256 if device.type == "cpu" else 4096))
        base = min(max(1, base), MAX_EVAL_BATCH)
        height, width = self.input_shape_
        return max(1, base * 28 * 28 // (height * width))

    def _logits(self, X: Any) -> torch.Tensor:
        self._check_fitted()
        images = as_images(X)
        if images.shape[1:] != tuple(self.input_shape_):
            raise FmnistError(f"this model was trained on {self.input_shape_[0]}×"
                              f"{self.input_shape_[1]} images, got {images.shape[1]}×"
                              f"{images.shape[2]}")
        device = pick_device(self.device_)
        fused = getattr(self, "_inference_net", None)
        if fused is None:  # built once per trained net; fit and from_state reset it
            fused = self._inference_net = place(fuse_for_inference(self.net_), device)
        return predict_logits(fused, as_tensor(images), device, self._eval_batch(device),
                              tta=self.tta_mode_)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities `[N, n_classes]`, columns in the order of `classes_`."""
        return self._logits(X).softmax(1).double().numpy()

    def predict(self, X: Any) -> np.ndarray:
        """The most probable class for each image."""
        best = self._logits(X).argmax(1).numpy()  # first: an unfitted model says so clearly
        return self.classes_[best]

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Every weight and buffer needed for inference (CPU, contiguous)."""
        self._check_fitted()
        return {k: v.detach().cpu().contiguous() for k, v in self.net_.state_dict().items()}
