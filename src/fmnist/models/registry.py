"""The model registry: every model has a name, a family, a one-line description, a factory and
documented defaults. Adding a model is one `register(...)` call in its family's module."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sklearn.base import BaseEstimator

from fmnist.errors import FmnistError


@dataclass(frozen=True)
class ModelSpec:
    """How to build one registered model.

    `build(**params)` returns an unfitted scikit-learn classifier that takes raw uint8 images
    `[N, 28, 28]`; `defaults` are the parameters used when the user sets none; `quick` are the
    overrides the comparison's quick preset applies (fewer epochs, a subset, ...).
    """

    name: str
    family: str
    description: str
    build: Callable[..., BaseEstimator]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    quick: Mapping[str, Any] = field(default_factory=dict)


REGISTRY: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    """Add a model; names are unique."""
    if spec.name in REGISTRY:
        raise ValueError(f"model {spec.name!r} is registered twice")
    REGISTRY[spec.name] = spec
    return spec


def get_spec(name: str) -> ModelSpec:
    """The spec of a registered model, or a user error listing the names that exist."""
    _load_families()
    try:
        return REGISTRY[name]
    except KeyError:
        raise FmnistError(
            f"unknown model {name!r}; known models: {', '.join(sorted(REGISTRY))} "
            "(run 'fmnist models')"
        ) from None


def create_model(name: str, **params: Any) -> BaseEstimator:
    """Build a registered model with its defaults, overridden by `params`."""
    spec = get_spec(name)
    merged = {**spec.defaults, **params}
    try:
        return spec.build(**merged)
    except TypeError as exc:
        raise FmnistError(f"model {name!r}: bad parameter ({exc})") from exc


def list_models() -> list[ModelSpec]:
    """All registered models, neural first, then by name."""
    _load_families()
    return sorted(REGISTRY.values(), key=lambda s: (s.family != "neural", s.name))


def _load_families() -> None:
    """Import the family modules that call `register` (lazily: torch is slow to import)."""
    import fmnist.models.families  # noqa: F401
