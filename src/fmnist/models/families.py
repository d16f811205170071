"""Imports every module that registers models. One line per family module."""
import fmnist.models.classical  # noqa: F401
import fmnist.models.neural  # noqa: F401
