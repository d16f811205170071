"""`fmnist models`: the registry, one line per model."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from fmnist.cli.app import app
from fmnist.models import list_models


@app.command("models")
def models() -> None:
    """List every registered model with its family, description and defaults."""
    table = Table(title="Registered models")
    for col in ("name", "family", "description", "defaults"):
        table.add_column(col)
    for spec in list_models():
        defaults = ", ".join(f"{k}={v}" for k, v in spec.defaults.items())
        table.add_row(spec.name, spec.family, spec.description, defaults)
    Console().print(table)
