"""Models: every one a scikit-learn classifier on raw uint8 images, named in the registry.

The registry is filled here, once: `registry` first (it imports no family), then the
catalogue `families` (which imports no model code), so looking a model up stays cheap.
"""

from fmnist.models import families as _families  # noqa: F401  (fills the registry)
from fmnist.models.registry import (
    ModelSpec,
    create_model,
    get_spec,
    is_model,
    list_models,
    register,
    registered,
)

__all__ = ["ModelSpec", "create_model", "get_spec", "is_model", "list_models", "register",
           "registered"]
