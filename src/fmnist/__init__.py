"""fmnist — the Fashion-MNIST apparel classifier lab.

The main operations are re-exported here. `compare`, `evaluate`, `explore` and `predict` share
their module's name, so they are bound eagerly: a lazy binding would be replaced by the module
object as soon as anything imported `fmnist.evaluation.metrics`. They import neither torch nor
matplotlib
at module level. The rest are imported on first use, so `import fmnist` stays quick.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

from fmnist.data import CLASS_NAMES, Dataset, load_csv, load_fashion_mnist, split
from fmnist.errors import DataError, FmnistError
from fmnist.evaluation.compare import compare
from fmnist.evaluation.metrics import evaluate
from fmnist.models import create_model, list_models
from fmnist.predict import predict
from fmnist.reporting.explore import explore

__version__ = "0.1.0"

_LAZY = {
    "load_image_folder": "fmnist.data.folder",
    "train_run": "fmnist.runs.train",
    "save": "fmnist.runs.store",
    "load": "fmnist.runs.store",
    "prepare_photo": "fmnist.images.photo",
    "export_onnx": "fmnist.runs.export",
}

__all__ = ["CLASS_NAMES", "DataError", "Dataset", "FmnistError", "compare", "create_model",
           "evaluate", "explore", "list_models", "load_csv", "load_fashion_mnist", "predict",
           "split", *_LAZY]


def __getattr__(name: str) -> Any:
    """Import a re-exported function on first use (PEP 562)."""
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'fmnist' has no attribute {name!r}")
