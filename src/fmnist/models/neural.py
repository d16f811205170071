"""Registry entries of the neural family: the seed's three Keras CNNs, our fast `cnn`, a ResNet,
a VGG16, the MLP, and AdaBoost over a small CNN. Defaults are documented in docs/neural.md with
the measurements that chose them; `quick` overrides keep each model near 40 s on 2 CPU cores
for the comparison's quick preset (a stratified `max_train` subset and/or fewer epochs), sized
from measured per-image costs (benchmarks/RESULTS.md)."""

from __future__ import annotations

from typing import Any

from fmnist.models.registry import ModelSpec, register
from fmnist.models.torch_estimator import BoostedTorchClassifier, TorchClassifier

SEED_PROTOCOL: dict[str, Any] = {
    # The seed notebook: Adam 1e-3, batch 512, 20 % validation, plain cross-entropy, final
    # weights kept (Keras' fit does not restore the best epoch), no augmentation.
    "batch_size": 512, "lr": 1e-3, "optimizer": "adam", "weight_decay": 0.0,
    "schedule": "constant", "warmup": 0.0, "label_smoothing": 0.0, "augment": False,
    "val_fraction": 0.2, "restore_best": False,
}

FAST_SGD: dict[str, Any] = {
    # Measured best accuracy per CPU-second for BN nets (../shared/notes/cpu-training-speed.md):
    # SGD-Nesterov, linear warm-up 20 % then linear decay to 0, label smoothing 0.1.
    "optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4, "schedule": "linear",
    "warmup": 0.2, "label_smoothing": 0.1, "batch_size": 128,
}


def _torch(**params: Any) -> TorchClassifier:
    return TorchClassifier(**params)


def build_adaboost(n_estimators: int = 5, learning_rate: float = 1.0,
                   random_state: int | None = 0, **base: Any) -> BoostedTorchClassifier:
    """AdaBoost (SAMME) over `TorchClassifier(**base)`; the flat `base` parameters (epochs,
    lr, width, ...) go to every member, so `fmnist train adaboost-cnn --epochs 2` works."""
    return BoostedTorchClassifier(estimator=TorchClassifier(**base), n_estimators=n_estimators,
                                  learning_rate=learning_rate, random_state=random_state)


for _name, _arch, _epochs, _quick, _desc in (
    ("cnn-seed1", "seed1", 10, {"epochs": 3},
     "seed notebook CNN 1: Conv32-Pool-Dense128 (693,962 params), Adam, batch 512"),
    ("cnn-seed2", "seed2", 20, {"epochs": 5, "max_train": 30000},
     "seed notebook CNN 2: Conv32-Conv64 + Dense 128-256-128 with dropout"),
    ("cnn-seed3", "seed3", 50, {"epochs": 2, "max_train": 20000},
     "seed notebook CNN 3: Conv64-128-64 + Dense 128-256-256-128 with dropout"),
):
    register(ModelSpec(
        name=_name, family="neural", description=_desc, build=_torch,
        defaults={"arch": _arch, "epochs": _epochs, **SEED_PROTOCOL}, quick=_quick,
    ))

register(ModelSpec(
    name="cnn", family="neural",
    description="our fast CNN: 3×[Conv-BN-Pool-ReLU] 32-64-128, SGD-Nesterov, label smoothing",
    build=_torch,
    defaults={"arch": "cnn", "width": 32, "depth": 3, "epochs": 5, "val_fraction": 0.1,
              "augment": False, **FAST_SGD},
    quick={"width": 16, "epochs": 2, "max_train": 30000},
))

register(ModelSpec(
    name="resnet", family="neural",
    description="ResNet-20 for 28×28 (3 stages × 3 basic blocks, 16-32-64), flips + shifts",
    build=_torch,
    defaults={"arch": "resnet", "width": 16, "depth": 3, "epochs": 30, "val_fraction": 0.1,
              "augment": "translate,flip", **{**FAST_SGD, "lr": 0.1}},
    quick={"width": 8, "depth": 1, "epochs": 2, "max_train": 20000},
))

register(ModelSpec(
    name="vgg", family="neural",
    description="VGG16-BN adapted to 28×28 (13 convs in 5 blocks + 3 FC), channels ÷4",
    build=_torch,
    defaults={"arch": "vgg", "width": 16, "hidden": 256, "batch_norm": True, "epochs": 20,
              "val_fraction": 0.1, "augment": "translate,flip", **FAST_SGD},
    quick={"width": 8, "hidden": 128, "epochs": 2, "max_train": 20000},
))

register(ModelSpec(
    name="mlp", family="neural",
    description="back-propagation network: 784-512-256-10, ReLU, dropout 0.2, Adam",
    build=_torch,
    defaults={"arch": "mlp", "hidden": (512, 256), "dropout": 0.2, "epochs": 20,
              "batch_size": 256, "lr": 1e-3, "optimizer": "adam", "weight_decay": 0.0,
              "schedule": "cosine", "warmup": 0.0, "label_smoothing": 0.0, "augment": False,
              "val_fraction": 0.1},
    quick={"epochs": 5},
))

register(ModelSpec(
    name="adaboost-cnn", family="neural",
    description=("AdaBoost (SAMME) over small CNNs (width 8, 2 blocks); "
                 "measured: worse than one CNN"),
    build=build_adaboost,
    defaults={"n_estimators": 5, "arch": "cnn", "width": 8, "depth": 2, "epochs": 2,
              "val_fraction": 0.0, **FAST_SGD},
    quick={"n_estimators": 3, "epochs": 2, "max_train": 20000},
))
