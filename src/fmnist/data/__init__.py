"""Data: the official files, Kaggle CSV, image folders → `Dataset` (uint8 images, labels)."""

from fmnist.data.dataset import CLASS_NAMES, Dataset, split
from fmnist.data.folder import load_image_folder
from fmnist.data.idx import read_idx, write_idx
from fmnist.data.official import load_fashion_mnist
from fmnist.data.sources import load_csv

__all__ = ["CLASS_NAMES", "Dataset", "load_csv", "load_fashion_mnist", "load_image_folder",
           "read_idx", "split", "write_idx"]
