"""Typer options shared by several commands: one definition each, so their help never drifts.

Every command that reads data takes the same four (`--data`, `--test-data`, `--size`,
`--data-dir`), which mean the same thing everywhere; this module imports only Typer, so the
commands' start-up stays light.
"""

from __future__ import annotations

import typer

DataOption = typer.Option(None, "--data",
                          help="Your own data: a Kaggle CSV or a folder with one sub-folder of "
                               "photos per class (default: official Fashion-MNIST).")
TestDataOption = typer.Option(None, "--test-data",
                              help="Test set for --data, in the same forms (default: a "
                                   "stratified 20% of --data, held out by the seed).")
SizeOption = typer.Option(28, "--size", min=1, help="Image side for --data photo folders.")
DataDirOption = typer.Option(None, "--data-dir",
                             help="Folder with the four official .gz files (default: "
                                  "$FMNIST_DATA, the cache, /usr/share/datasets/fashion-mnist).")
SeedOption = typer.Option(0, "--seed", min=0, max=2**32 - 1,
                          help="Random seed: same seed, same subsets, splits and models.")
TrainSizeOption = typer.Option(None, "--train-size", min=1,
                               help="Train on a stratified subset of this many training images.")
