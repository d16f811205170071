"""The model registry: every model has a name, a family, a one-line description, a builder and
documented defaults.

Entries are declared in `fmnist.models.families` with their builder as an import string
(`"fmnist.models.classical:KNNClassifier"`), so listing or looking up models imports neither
torch nor scikit-learn: `fmnist models` answers in a fraction of a second, and a model's module
is imported only when the model is built (timm's `@register_model`, minus its eager imports).
This module imports no family; `fmnist.models` loads the catalogue once, after this module,
so the two never import each other.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import import_module
from typing import TYPE_CHECKING, Any

from fmnist.errors import ConfigError, FmnistError

if TYPE_CHECKING:
    from sklearn.base import BaseEstimator

Builder = Callable[..., "BaseEstimator"]


@dataclass(frozen=True)
class ModelSpec:
    """How to build one registered model.

    `build` is a callable, or an import string `"package.module:attribute"` naming one (it is
    imported on first use); `build(**params)` returns an unfitted scikit-learn classifier that
    takes raw uint8 images `[N, 28, 28]`. `defaults` are the parameters used when the user sets
    none; `quick` are the overrides the comparison's quick preset applies (fewer epochs, a
    subset, ...).
    """

    name: str
    family: str
    description: str
    build: Builder | str
    defaults: Mapping[str, Any] = field(default_factory=dict)
    quick: Mapping[str, Any] = field(default_factory=dict)

    def builder(self) -> Builder:
        """The builder itself, importing its module when `build` is an import string."""
        if callable(self.build):
            return self.build
        module, _, attribute = self.build.partition(":")
        return getattr(import_module(module), attribute)


REGISTRY: dict[str, ModelSpec] = {}


def register(spec: ModelSpec) -> ModelSpec:
    """Add a model; names are unique."""
    if spec.name in REGISTRY:
        raise ValueError(f"model {spec.name!r} is registered twice")
    if isinstance(spec.build, str) and ":" not in spec.build:
        raise ValueError(f"model {spec.name!r}: builder {spec.build!r} is not 'module:attribute'")
    REGISTRY[spec.name] = spec
    return spec


@contextmanager
def registered(spec: ModelSpec) -> Iterator[ModelSpec]:
    """Register `spec` for the duration of a `with` block, then remove it again (tests and
    experiments add models without leaving the global registry changed)."""
    register(spec)
    try:
        yield spec
    finally:
        REGISTRY.pop(spec.name, None)


def is_model(name: str) -> bool:
    """Whether `name` is a registered model."""
    return name in REGISTRY


def get_spec(name: str) -> ModelSpec:
    """The spec of a registered model, or a user error listing the names that exist."""
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
        return spec.builder()(**merged)
    except TypeError as exc:
        raise ConfigError(f"model {name!r}: bad parameter ({exc})") from exc


def list_models(pattern: str | None = None) -> list[ModelSpec]:
    """Registered models, neural first, then by name; `pattern` filters names with shell-style
    wildcards (`"cnn*"`, `"*svm"`)."""
    specs = [s for s in REGISTRY.values() if pattern is None or fnmatch.fnmatch(s.name, pattern)]
    return sorted(specs, key=lambda s: (s.family != "neural", s.name))

