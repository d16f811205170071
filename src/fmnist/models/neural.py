"""Builders of the neural family that are more than `TorchClassifier(**params)`.

The neural models' registry entries (defaults, quick settings, the seed protocol and our fast
SGD recipe) live in `fmnist.models.families`, declared without importing torch; most of them
build `fmnist.models.torch_estimator.TorchClassifier` directly. AdaBoost over CNNs needs the
flat-parameter builder below.
"""

from __future__ import annotations

from typing import Any

from fmnist.models.torch_estimator import BoostedTorchClassifier, TorchClassifier


def build_adaboost(n_estimators: int = 5, learning_rate: float = 1.0,
                   random_state: int | None = 0, **base: Any) -> BoostedTorchClassifier:
    """AdaBoost (SAMME) over `TorchClassifier(**base)`; the flat `base` parameters (epochs,
    lr, width, ...) go to every member, so `fmnist train adaboost-cnn --epochs 2` works."""
    return BoostedTorchClassifier(estimator=TorchClassifier(**base), n_estimators=n_estimators,
                                  learning_rate=learning_rate, random_state=random_state)
