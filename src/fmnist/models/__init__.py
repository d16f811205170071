"""Models: every one a scikit-learn classifier on raw uint8 images, named in the registry."""

from fmnist.models.registry import ModelSpec, create_model, get_spec, list_models, register

__all__ = ["ModelSpec", "create_model", "get_spec", "list_models", "register"]
