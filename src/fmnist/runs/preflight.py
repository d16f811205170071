"""Check a run's settings before anything is written: a bad parameter is a `ConfigError` while
the run folder does not exist yet, never a traceback after a half-written one.

Three kinds of check, cheapest first:
- the validation split (`val_fraction`) against what the model does with it;
- scikit-learn's own parameter constraints (`_validate_params`) for every estimator in the model
  (nested ones too: a classical model's pipeline steps via its `check_params`, AdaBoost's base);
- a torch network is *built and run*: one epoch on one blank image per class of the real image
  size, on the chosen device — the only way to learn that `width=0` or 2×2 images with `cnn`
  cannot work (tens of milliseconds).
"""

from __future__ import annotations

import sys
import warnings
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, clone

from fmnist.errors import ConfigError, FmnistError

# Settings of a torch probe that keep it to one tiny step, away from the run's files, and
# uncompiled (torch.compile would cost tens of seconds for one step).
_PROBE = {"epochs": 1, "val_fraction": 0.0, "max_train": None, "patience": None,
          "checkpoint_dir": None, "resume": False, "verbose": False, "compile": False}


def check_val_fraction(value: float | None, model_splits_itself: bool) -> None:
    """A model that early-stops on its own split takes 0 (no split) up to below 1; a hold-out
    split made for the others must leave images on both sides."""
    if value is None:
        return
    if model_splits_itself and not 0.0 <= value < 1.0:
        raise ConfigError(f"--val-fraction must be at least 0 and below 1, got {value}")
    if not model_splits_itself and not 0.0 < value < 1.0:
        raise ConfigError(f"--val-fraction must lie strictly between 0 and 1 for a model that "
                          f"does not split its own validation data, got {value}")


def check_seed(seed: object) -> None:
    """NumPy and scikit-learn take seeds in 0..2³²−1; anything else fails deep inside them."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise ConfigError(f"seed must be an integer from 0 to {2**32 - 1}, got {seed!r}")


def check_model(name: str, model: BaseEstimator, image_shape: tuple[int, ...],
                n_classes: int) -> None:
    """Raise `ConfigError` naming the model when any of its settings cannot work on images of
    `image_shape` with `n_classes` classes."""
    for estimator in _estimators(model):
        try:
            _check_one(estimator, tuple(int(s) for s in image_shape), n_classes)
        except ConfigError:
            raise
        except (FmnistError, ValueError, TypeError, RuntimeError) as exc:
            shape = "×".join(str(s) for s in image_shape)
            raise ConfigError(f"model {name!r} cannot be trained with these settings on "
                              f"{shape} images: {_one_line(exc)}") from exc


def _estimators(model: BaseEstimator) -> list[BaseEstimator]:
    """The model and every estimator among its (deep) parameters, outermost first."""
    nested = [v for v in model.get_params(deep=True).values() if isinstance(v, BaseEstimator)]
    return [model, *nested]


def _check_one(estimator: BaseEstimator, image_shape: tuple[int, ...], n_classes: int) -> None:
    torch_estimator = sys.modules.get("fmnist.models.torch_estimator")  # loaded iff in use
    if torch_estimator is not None and isinstance(estimator, torch_estimator.TorchClassifier):
        _probe_torch(estimator, image_shape, n_classes)
    elif callable(getattr(estimator, "check_params", None)):
        estimator.check_params()
    elif hasattr(estimator, "_parameter_constraints"):  # scikit-learn's declared constraints
        estimator._validate_params()


def _probe_torch(estimator: Any, image_shape: tuple[int, ...], n_classes: int) -> None:
    """Build the net and take one training step on blank images of the real size."""
    if len(image_shape) != 2:
        raise ConfigError(f"a torch network takes [H, W] images, got shape {image_shape}")
    probe = clone(estimator)
    probe.set_params(**{k: v for k, v in _PROBE.items() if k in probe.get_params(deep=False)})
    images = np.zeros((n_classes, *image_shape), dtype=np.uint8)
    with warnings.catch_warnings():  # e.g. torch's "zero-element tensor" note for width=0
        warnings.simplefilter("ignore")
        probe.fit(images, np.arange(n_classes))


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text[:300] + ("…" if len(text) > 300 else "")
