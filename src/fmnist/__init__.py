"""fmnist — the Fashion-MNIST apparel classifier lab.

The main operations are re-exported here and imported on first use (PEP 562), so
`import fmnist` — and with it every `fmnist` command's start-up — loads no numpy, scikit-learn,
torch or matplotlib until a function needs them.

`predict` is both a function and the module `fmnist.predict` that holds it. The import system
binds a submodule as an attribute of its package when the submodule is first imported, which
would replace the function with the module; the package's module class refuses exactly that
binding, so `fmnist.predict` is always the function (the module stays reachable as
`sys.modules["fmnist.predict"]` and through `from fmnist.predict import ...`).
"""

from __future__ import annotations

import sys
from importlib import import_module
from types import ModuleType
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "CLASS_NAMES": "fmnist.data.dataset",
    "Dataset": "fmnist.data.dataset",
    "split": "fmnist.data.dataset",
    "load_csv": "fmnist.data.sources",
    "load_fashion_mnist": "fmnist.data.official",
    "load_image_folder": "fmnist.data.folder",
    "DataError": "fmnist.errors",
    "FmnistError": "fmnist.errors",
    "compare": "fmnist.evaluation.compare",
    "evaluate": "fmnist.evaluation.metrics",
    "explore": "fmnist.reporting.explore",
    "predict": "fmnist.predict",
    "create_model": "fmnist.models",
    "list_models": "fmnist.models",
    "train_run": "fmnist.runs.train",
    "save": "fmnist.runs.store",
    "load": "fmnist.runs.store",
    "prepare_photo": "fmnist.images.photo",
    "export_onnx": "fmnist.runs.export",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    """Import a re-exported name on first use."""
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'fmnist' has no attribute {name!r}")


class _Package(ModuleType):
    """`fmnist`'s module class: a submodule never replaces the function it is named after."""

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, ModuleType) and _LAZY.get(name) == f"{__name__}.{name}":
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
