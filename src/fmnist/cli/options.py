"""Typer options shared by several commands: one definition each, so their help never drifts."""

from __future__ import annotations

import typer

DataOption = typer.Option(None, help="Your own data: a Kaggle CSV or a folder with one "
                          "sub-folder of photos per class (default: official Fashion-MNIST).")
TestDataOption = typer.Option(None, "--test-data",
                              help="Test set for --data (default: the same 20% hold-out as "
                                   "training, chosen by the seed).")
SizeOption = typer.Option(28, help="Image side for --data photo folders.")
DataDirOption = typer.Option(None, "--data-dir",
                             help="Folder with the official Fashion-MNIST files.")
