"""fmnist — the Fashion-MNIST apparel classifier lab.

The Python API for the main operations is re-exported here.
"""

from fmnist.data import CLASS_NAMES, Dataset, load_csv, load_fashion_mnist, split
from fmnist.errors import DataError, FmnistError
from fmnist.models import create_model, list_models

__version__ = "0.1.0"

__all__ = ["CLASS_NAMES", "DataError", "Dataset", "FmnistError", "create_model",
           "list_models", "load_csv", "load_fashion_mnist", "split"]
