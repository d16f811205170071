"""`TorchClassifier`: any network of `nets.py` as a scikit-learn classifier on raw uint8 images.

It is an ordinary sklearn estimator (get_params/set_params/clone, `score`, cross-validation,
`AdaBoostClassifier` via a `sample_weight` that really weights the loss), and it implements the
project's torch state protocol (`state_tensors` / `state_meta` / `from_state`) so
`fmnist.runs.store` can save it as safetensors + JSON with no pickle. Its prediction is
`fmnist.models.torch_net.TrainedNet`'s, inherited: what a saved run loads as without importing
scikit-learn. `BoostedTorchClassifier` does the same for AdaBoost (SAMME) over torch networks.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.ensemble import AdaBoostClassifier
from sklearn.model_selection import train_test_split
from sklearn.utils.validation import check_is_fitted

from fmnist.data.dataset import stratified_indices
from fmnist.errors import ConfigError, FmnistError
from fmnist.fileio import json_safe
from fmnist.models import engine
from fmnist.models.nets import count_params, init_from_data
from fmnist.models.torch_net import (
    STATE_FORMAT,
    TrainedNet,
    as_images,
    as_tensor,
    build_from_params,
    parse_hidden,
    state_params,
)
from fmnist.models.training.inference import native_cpu_bf16

GPU_MIN_STEPS = 50
"""Steps an epoch that `batch_size=None` keeps on a GPU: 60k images (and the 54k of a 10 %
hold-out) train at 1024, the quick preset's 20k at 256."""


class TorchClassifier(ClassifierMixin, BaseEstimator, TrainedNet):
    """A torch network trained by `engine.train`, as a scikit-learn classifier on raw uint8
    images `[N, H, W]`.

    Parameters
    ----------
    arch : {"seed1", "seed2", "seed3", "cnn", "resnet", "vgg", "mlp", "speednet"}, default "cnn"
        The network (`fmnist.models.nets`).
    width, depth, hidden, dropout, whiten : optional
        Size and shape of the network; None = the architecture's default.
    batch_norm : bool, default True
        BatchNorm layers where the architecture has them.
    epochs : int, default 5
        Passes over the training data.
    batch_size : int or None, default 128
        None = 128 on CPU; on a GPU the largest of 1024, 512, 256 that still leaves
        `GPU_MIN_STEPS` steps an epoch (else 128), with `lr` (given for batch 128) scaled.
    lr_scaling : {"linear", "sqrt"}, default "linear"
        How `batch_size=None` scales `lr` to a larger GPU batch: linearly (Goyal et al.; the
        airbench recipe's mean-loss lr 0.19) or by the square root (a recipe whose lr is already
        high: the `cnn`'s 0.5 per 128 stayed as accurate at 1024 with 1.41 on 2 CPU cores).
    lr, momentum, weight_decay : float
        Peak learning rate; momentum; weight decay (weights only).
    optimizer : {"adam", "adamw", "sgd"}, default "sgd"
        "sgd" is Nesterov SGD.
    bn_bias_lr : float, default 1.0
        Learning-rate multiplier of the BatchNorm biases.
    schedule : {"constant", "linear", "cosine", "onecycle", "triangular"}, default "linear"
        Learning-rate schedule; `warmup` is its warm-up share of training.
    label_smoothing : float, default 0.1
        Cross-entropy label smoothing.
    lookahead : bool, default False
        airbench's weight averaging.
    cpu_bf16 : bool or "auto", default False
        Training steps on a CPU in bf16 autocast (weights, optimiser and prediction stay fp32):
        True (refused on a CPU that does not compute bf16 natively, where it would be slower),
        "auto" (when it does), False. No effect on a GPU, which trains in bf16 anyway.
    augment : bool or str, default False
        True, or a comma list of translate, flip, altflip, erase and registered names;
        `translate` is the largest shift in pixels.
    tta : bool or str, default "auto"
        Test-time augmentation: "auto" averages the flipped image in iff training used flips
        (flip TTA on a net never trained on flips costs 10 points of accuracy); True or "flip"
        demands flips in `augment`; "flip-shift" adds two 1-px shifted pairs; False or "none"
        never.
    val_fraction : float, default 0.1
        Stratified hold-out for early stopping and best-weight restore (0 = none).
    patience : int or None, default None
        Epochs without a better validation loss before stopping (None = never stop early).
    restore_best : bool, default True
        End with the best validation epoch's weights.
    max_train : int or None, default None
        Train on a stratified subset of this many images (quick runs).
    micro_batch : int or None, default 128
        CPU gradient accumulation, used only for nets without BatchNorm, where it is exact.
    eval_batch_size : int or None, default None
        Inference batch: None = 256 on CPU (small batches stay in cache and run ~2× faster than
        4096, measured), 4096 on a GPU; counted in 28×28 images (larger images, fewer a batch).
    random_state : int or None, default 0
        Seeds everything: weights, permutations, augmentation, dropout.
    device : {"auto", "cpu", "cuda", "mps"}, default "auto"
        "auto" = CUDA → MPS → CPU.
    num_threads : int or None, default None
        torch threads (None = one per core, measured best).
    compile : bool, default False
        torch.compile the training forward pass (measured: no gain on an H100 or on 2 CPU
        cores; overrides `cuda_graph`).
    cuda_graph : bool, default True
        On CUDA, replay each full batch's forward and backward as a CUDA graph (a small net is
        bound by Python and kernel launches there); no effect elsewhere.
    checkpoint_dir : str or None, default None
        Write checkpoint.pt there atomically after every epoch; `resume` continues from it.
    verbose : bool, default True
        A Rich progress bar and one line per epoch on stderr.

    Attributes
    ----------
    classes_ : ndarray
        The class labels seen in `fit`.
    net_ : torch.nn.Module
        The trained network (prediction uses a fused copy of it).
    n_params_ : int
        Its learned parameters.
    input_shape_ : tuple of int
        `(H, W)` of the training images.
    history_ : list of dict
        Per-epoch losses, accuracies, learning rate and speed.
    best_epoch_, stopped_early_, interrupted_ : int, bool, bool
        How training ended.
    fit_seconds_ : float
        Training time, across resumes.
    n_train_ : int
        Images trained on (after `max_train` and the validation hold-out).
    device_ : str
        Where it trained.
    train_bf16_ : bool
        Whether its training steps ran in bf16 (a GPU, or `cpu_bf16` on a CPU).
    tta_, tta_mode_ : bool, str
        Whether and how prediction averages augmented views.
    """

    def __init__(
        self,
        arch: str = "cnn",
        width: int | None = None,
        depth: int | None = None,
        hidden: Any = None,
        dropout: float | None = None,
        batch_norm: bool = True,
        whiten: bool | None = None,
        epochs: int = 5,
        batch_size: int | None = 128,
        lr_scaling: str = "linear",
        lr: float = 0.05,
        optimizer: str = "sgd",
        momentum: float = 0.9,
        weight_decay: float = 5e-4,
        bn_bias_lr: float = 1.0,
        schedule: str = "linear",
        warmup: float = 0.2,
        label_smoothing: float = 0.1,
        lookahead: bool = False,
        augment: bool | str = False,
        translate: int = 2,
        tta: bool | str = "auto",
        val_fraction: float = 0.1,
        patience: int | None = None,
        restore_best: bool = True,
        max_train: int | None = None,
        micro_batch: int | None = 128,
        eval_batch_size: int | None = None,
        random_state: int | None = 0,
        device: str = "auto",
        num_threads: int | None = None,
        compile: bool = False,
        cuda_graph: bool = True,
        cpu_bf16: bool | str = False,
        checkpoint_dir: str | None = None,
        resume: bool = False,
        verbose: bool = True,
    ) -> None:
        # scikit-learn: __init__ only stores the parameters (they are checked in fit).
        self.arch, self.width, self.depth, self.hidden = arch, width, depth, hidden
        self.dropout, self.batch_norm, self.whiten = dropout, batch_norm, whiten
        self.epochs, self.batch_size, self.lr, self.optimizer = epochs, batch_size, lr, optimizer
        self.lr_scaling = lr_scaling
        self.momentum, self.weight_decay, self.bn_bias_lr = momentum, weight_decay, bn_bias_lr
        self.schedule, self.warmup, self.label_smoothing = schedule, warmup, label_smoothing
        self.lookahead, self.augment, self.translate, self.tta = lookahead, augment, translate, tta
        self.val_fraction, self.patience, self.restore_best = val_fraction, patience, restore_best
        self.max_train, self.micro_batch = max_train, micro_batch
        self.eval_batch_size, self.random_state, self.device = eval_batch_size, random_state, device
        self.num_threads, self.compile, self.checkpoint_dir = num_threads, compile, checkpoint_dir
        self.cpu_bf16, self.resume, self.verbose = cpu_bf16, resume, verbose
        self.cuda_graph = cuda_graph

    # -- building ---
    def _build(self, input_shape: tuple[int, int], n_classes: int) -> torch.nn.Module:
        return build_from_params(self.get_params(deep=False), input_shape, n_classes)

    def _cpu_bf16(self, device: torch.device) -> bool:
        """Whether training steps run in bf16 on this device (see `cpu_bf16`)."""
        wanted = {"true": True, "false": False}.get(str(self.cpu_bf16).lower(), self.cpu_bf16)
        if wanted not in (True, False, "auto"):
            raise ConfigError(f"cpu_bf16 must be true, false or auto, got {self.cpu_bf16!r}")
        if device.type != "cpu" or wanted is False:
            return False
        native = native_cpu_bf16()
        if wanted is True and not native:
            raise ConfigError("cpu_bf16=true, but this CPU has no native bf16 (it would be "
                              "emulated and slower than fp32); use cpu_bf16=auto or false")
        return native

    def _tta_mode(self, ops: frozenset[str]) -> str:
        """The test-time views (`inference.TTA_MODES`) these settings ask for, checked against
        what training saw: a view the net never learnt costs accuracy instead of adding it."""
        flips = bool(ops & {"flip", "altflip"})
        mode = {True: "flip", "true": "flip", "True": "flip", False: "none", "false": "none",
                "False": "none", None: "auto"}.get(self.tta, self.tta)
        if mode == "auto":
            return "flip" if flips else "none"
        if mode not in engine.TTA_MODES:
            raise ConfigError(f"unknown tta {self.tta!r}; use auto, none, flip or flip-shift")
        if mode != "none" and not flips:
            raise ConfigError(f"tta={self.tta!r} needs flips in augment (flip TTA on a net never "
                              "trained on flips loses accuracy); use tta='auto' or add flip")
        if mode == "flip-shift" and "translate" not in ops:
            raise ConfigError("tta='flip-shift' needs translate in augment")
        return mode

    def batch_and_lr(self, device: torch.device, n_train: int) -> tuple[int, float]:
        """The batch and peak learning rate a fit on `n_train` images on `device` uses.

        `batch_size=None`: 128 on CPU (cache-sized); on a GPU the largest batch up to 1024
        (keeps it busy) that leaves `GPU_MIN_STEPS` steps an epoch — a small training set at
        batch 1024 would get a handful of steps (600 images: 0.34 against 0.65 accuracy) —
        with the learning rate scaled from batch 128 as `lr_scaling` says."""
        if self.lr_scaling not in ("linear", "sqrt"):
            raise ConfigError(f"lr_scaling must be linear or sqrt, got {self.lr_scaling!r}")
        if self.batch_size is not None:
            return int(self.batch_size), float(self.lr)
        batch = 128
        if device.type != "cpu":
            batch = next((b for b in (1024, 512, 256) if n_train // b >= GPU_MIN_STEPS), 128)
        factor = batch / 128
        return batch, float(self.lr) * (factor if self.lr_scaling == "linear" else factor ** 0.5)

    # -- fitting ---
    def fit(self, X: Any, y: Any, sample_weight: Any = None,
            on_epoch_end: Callable[[dict[str, Any]], None] | None = None) -> TorchClassifier:
        """Train on raw uint8 images `[N, H, W]`; `sample_weight` scales each image's loss;
        `on_epoch_end(record)` sees each epoch's history record (`fmnist tune` prunes with it).

        Seeding and `num_threads` stay inside: the caller's global torch RNG state and thread
        count are the same after `fit` as before (a library must not reseed its caller)."""
        threads = torch.get_num_threads()
        try:
            with torch.random.fork_rng():
                return self._fit(X, y, sample_weight, on_epoch_end)
        finally:
            torch.set_num_threads(threads)

    def _fit(self, X: Any, y: Any, sample_weight: Any,
             on_epoch_end: Callable[[dict[str, Any]], None] | None = None) -> TorchClassifier:
        images = as_images(X)
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != len(images):
            raise FmnistError(f"labels must be one per image: {len(images)} images, "
                              f"labels shaped {y.shape}")
        if len(images) == 0:
            raise FmnistError("cannot fit on zero images")
        self.classes_, y_idx = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise FmnistError("need at least two classes to train a classifier")
        weights = None
        if sample_weight is not None:
            weights = np.asarray(sample_weight, dtype=np.float64)
            if weights.shape != (len(images),) or not np.isfinite(weights).all() \
                    or (weights < 0).any() or weights.sum() <= 0:
                raise FmnistError("sample_weight must be one finite, non-negative weight per "
                                  "image, not all zero")
        seed = 0 if self.random_state is None else int(self.random_state)
        if self.num_threads:
            torch.set_num_threads(int(self.num_threads))
        idx = np.arange(len(images))
        if self.max_train is not None and self.max_train < len(idx):
            idx = idx[stratified_indices(y_idx[idx], int(self.max_train), seed)]
        if not 0 <= self.val_fraction < 1:
            raise ConfigError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        tr, va = idx, idx[:0]
        if self.val_fraction > 0:
            tr, va = _split(idx, y_idx, self.val_fraction, seed)
        w_tr = None
        if weights is not None:
            w = weights[tr]
            w_tr = torch.from_numpy((w / w.mean()).astype(np.float32))  # mean 1: lr unchanged

        ops = engine.parse_augment(self.augment)
        self.tta_mode_ = self._tta_mode(ops)
        self.tta_ = self.tta_mode_ != "none"
        self.input_shape_ = (int(images.shape[1]), int(images.shape[2]))
        torch.manual_seed(seed)  # the initial weights
        net = self._build(self.input_shape_, len(self.classes_))
        init_from_data(net, as_tensor(images[tr[:5000]]))
        device = engine.pick_device(self.device)
        self.train_bf16_ = self._cpu_bf16(device) or device.type == "cuda"
        cfg = self._config(ops, seed, device, len(tr),
                           self._fingerprint(images, y_idx, weights))
        t0 = time.perf_counter()
        result = engine.train(
            net, as_tensor(images[tr]), torch.from_numpy(y_idx[tr].astype(np.int64)), w_tr,
            as_tensor(images[va]), torch.from_numpy(y_idx[va].astype(np.int64)), cfg,
            on_epoch_end=on_epoch_end)
        self.fit_seconds_ = time.perf_counter() - t0
        self.net_ = net
        self._inference_net = None
        self.device_ = str(device)
        self.history_ = result.history
        self.best_epoch_ = result.best_epoch
        self.interrupted_ = result.interrupted
        self.stopped_early_ = result.stopped_early
        self.n_params_ = count_params(net)
        self.n_train_ = len(tr)
        return self

    def _config(self, ops: frozenset[str], seed: int, device: torch.device, n_train: int,
                fingerprint: dict[str, Any]) -> engine.TrainConfig:
        batch, lr = self.batch_and_lr(device, n_train)
        return engine.TrainConfig(
            epochs=int(self.epochs), batch_size=batch, lr=lr, optimizer=self.optimizer,
            momentum=float(self.momentum), weight_decay=float(self.weight_decay),
            bn_bias_lr=float(self.bn_bias_lr), schedule=self.schedule, warmup=float(self.warmup),
            label_smoothing=float(self.label_smoothing), augment=ops,
            translate=int(self.translate), lookahead=bool(self.lookahead),
            patience=self.patience, restore_best=bool(self.restore_best),
            micro_batch=self.micro_batch, seed=seed, device=device, compile=bool(self.compile),
            cuda_graph=bool(self.cuda_graph),
            cpu_bf16=self.train_bf16_ if device.type == "cpu" else False,
            eval_batch_size=self._eval_batch(device), val_tta=self.tta_mode_,
            checkpoint_dir=None if self.checkpoint_dir is None else str(self.checkpoint_dir),
            resume=bool(self.resume), verbose=bool(self.verbose), fingerprint=fingerprint)

    def _fingerprint(self, images: np.ndarray, y_idx: np.ndarray,
                     weights: np.ndarray | None) -> dict[str, Any]:
        """What a checkpoint must match to be resumed: parameters that shape the run + data."""
        skip = {"epochs", "checkpoint_dir", "resume", "verbose", "device", "num_threads",
                "eval_batch_size", "tta", "patience", "compile", "cuda_graph"}
        params = {k: _jsonable(v) for k, v in self.get_params().items() if k not in skip}
        digest = int(images[:: max(1, len(images) // 512)].astype(np.int64).sum()
                     + 31 * y_idx.sum())
        return {"params": params, "n": len(images), "data": digest,
                "weighted": weights is not None}

    # -- prediction (TrainedNet's predict_proba, predict) and the state protocol ---
    def _check_fitted(self) -> None:
        check_is_fitted(self, "net_")  # scikit-learn's NotFittedError, as its checks expect

    def state_meta(self) -> dict[str, Any]:
        """JSON-serialisable description: parameters, classes, input shape, history."""
        check_is_fitted(self, "net_")
        return {
            "estimator": "TorchClassifier", "state_format": STATE_FORMAT,
            "params": {k: _jsonable(v) for k, v in self.get_params().items()},
            "classes": self.classes_.tolist(), "input_shape": list(self.input_shape_),
            "tta": bool(self.tta_), "tta_mode": self.tta_mode_, "n_params": int(self.n_params_),
            "best_epoch": self.best_epoch_, "history": self.history_,
            "interrupted": bool(self.interrupted_), "n_train": int(self.n_train_),
            "fit_seconds": float(self.fit_seconds_),
            "train_precision": "bf16" if getattr(self, "train_bf16_", False) else "fp32",
        }

    @classmethod
    def from_state(cls, meta: dict[str, Any], tensors: dict[str, torch.Tensor]
                   ) -> TorchClassifier:
        """A fitted estimator that predicts exactly like the one that wrote `meta`/`tensors`
        (`fmnist.runs.store.load` restores the same state as the lighter `TrainedNet`)."""
        params = state_params(meta)
        est = cls(**params)
        est._restore(meta, params, tensors)
        est.best_epoch_ = meta.get("best_epoch")
        est.history_ = list(meta.get("history") or [])
        est.interrupted_ = bool(meta.get("interrupted", False))
        est.train_bf16_ = meta.get("train_precision") == "bf16"
        est.stopped_early_ = False
        est.n_train_ = int(meta.get("n_train", 0))
        est.fit_seconds_ = float(meta.get("fit_seconds", 0.0))
        return est


def _jsonable(v: Any) -> Any:
    """Parameters as JSON values (`fmnist.fileio.json_safe`); other objects are kept as they
    are, for the run's store to accept or refuse."""
    return json_safe(v, lambda kept: kept)


def _split(idx: np.ndarray, y: np.ndarray, fraction: float, seed: int
           ) -> tuple[np.ndarray, np.ndarray]:
    """Stratified when every class has at least two images, plain random otherwise."""
    strat = y[idx] if np.bincount(y[idx]).min(initial=2) >= 2 else None
    n_val = max(1, int(round(fraction * len(idx))))
    if strat is not None and n_val < len(np.unique(strat)):
        strat = None
    return tuple(train_test_split(idx, test_size=n_val, stratify=strat, random_state=seed))


class BoostedTorchClassifier(AdaBoostClassifier):
    """scikit-learn's AdaBoost (SAMME) over `TorchClassifier`s, plus the torch state protocol so
    `fmnist.runs.store` can save the whole ensemble as one safetensors file (each member's tensors
    prefixed `members.<i>.`) + JSON."""

    def state_tensors(self) -> dict[str, torch.Tensor]:
        """All members' weights, prefixed by their index."""
        check_is_fitted(self, "estimators_")
        return {f"members.{i}.{k}": v for i, est in enumerate(self.estimators_)
                for k, v in est.state_tensors().items()}

    def state_meta(self) -> dict[str, Any]:
        """Boosting parameters, member weights/errors and each member's own meta."""
        check_is_fitted(self, "estimators_")
        return {
            "estimator": "BoostedTorchClassifier", "state_format": STATE_FORMAT,
            "params": {"n_estimators": int(self.n_estimators),
                       "learning_rate": float(self.learning_rate),
                       "random_state": _jsonable(self.random_state)},
            "base": {k: _jsonable(v) for k, v in self.estimator.get_params().items()},
            "classes": self.classes_.tolist(), "n_features_in": int(self.n_features_in_),
            "estimator_weights": self.estimator_weights_.tolist(),
            "estimator_errors": self.estimator_errors_.tolist(),
            "members": [est.state_meta() for est in self.estimators_],
        }

    @classmethod
    def from_state(cls, meta: dict[str, Any], tensors: dict[str, torch.Tensor]
                   ) -> BoostedTorchClassifier:
        """A fitted ensemble that predicts exactly like the saved one."""
        if meta.get("estimator") != "BoostedTorchClassifier":
            raise FmnistError("not a BoostedTorchClassifier state")
        base = dict(meta["base"])
        base["hidden"] = parse_hidden(base.get("hidden"))
        ens = cls(estimator=TorchClassifier(**base), **meta["params"])
        ens.estimator_ = clone(ens.estimator)
        ens.estimators_ = []
        for i, member in enumerate(meta["members"]):
            prefix = f"members.{i}."
            own = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
            ens.estimators_.append(TorchClassifier.from_state(member, own))
        ens.classes_ = np.asarray(meta["classes"])
        ens.n_classes_ = len(ens.classes_)
        ens.n_features_in_ = int(meta["n_features_in"])
        ens.estimator_weights_ = np.asarray(meta["estimator_weights"], dtype=np.float64)
        ens.estimator_errors_ = np.asarray(meta["estimator_errors"], dtype=np.float64)
        return ens
