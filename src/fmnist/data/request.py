"""A command's data choice as a small value: enough to load the same data again elsewhere.

`fmnist compare --scheduler` sends each model to a Dask worker on another machine; shipping
60,000 images with every task would make the network the bottleneck, so the worker receives
this request instead, loads the data itself and proves by checksum that it got the same images.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fmnist.data.dataset import Dataset
from fmnist.data.resolve import resolve_data, training_subset


@dataclass(frozen=True)
class DataRequest:
    """Where the data comes from (`resolve_data`'s arguments) and an optional stratified
    training subset, all chosen by `seed`. Paths are read on the machine that loads."""

    data: Path | None = None
    test_data: Path | None = None
    data_dir: Path | None = None
    size: int = 28
    seed: int = 0
    train_size: int | None = None

    def load(self) -> tuple[Dataset, Dataset, str]:
        """(train, test, description), the training set cut to `train_size` when given."""
        train, test, description = resolve_data(self.data, self.test_data, self.data_dir,
                                                self.size, self.seed)
        train, note = training_subset(train, self.train_size, self.seed)
        return train, test, description + note
