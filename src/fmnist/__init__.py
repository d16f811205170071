"""fmnist — the Fashion-MNIST apparel classifier lab.

The main operations are re-exported here. Heavy ones (torch, matplotlib, FastAPI behind them)
are imported on first use, so `import fmnist` stays quick.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from fmnist.data import CLASS_NAMES, Dataset, load_csv, load_fashion_mnist, split
from fmnist.errors import DataError, FmnistError
from fmnist.models import create_model, list_models

__version__ = "0.1.0"

_LAZY = {
    "load_image_folder": "fmnist.data.folder",
    "explore": "fmnist.explore",
    "train_run": "fmnist.runs",
    "evaluate": "fmnist.evaluate",
    "compare": "fmnist.compare",
    "save": "fmnist.store",
    "load": "fmnist.store",
    "predict": "fmnist.predict",
    "prepare_photo": "fmnist.photo",
    "export_onnx": "fmnist.export",
}

__all__ = ["CLASS_NAMES", "DataError", "Dataset", "FmnistError", "create_model",
           "list_models", "load_csv", "load_fashion_mnist", "split", *_LAZY]


def __getattr__(name: str) -> Any:
    """Import a re-exported function on first use (PEP 562)."""
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'fmnist' has no attribute {name!r}")
