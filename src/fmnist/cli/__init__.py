"""The `fmnist` command line: thin; every command calls one library function.

Each area adds its commands in its own module, imported here so they register on `app`.
"""

from __future__ import annotations

import signal
import sys

from rich.console import Console
from rich.markup import escape

from fmnist.cli import (  # noqa: F401  (register commands)
    compare_cmd,
    data_cmds,
    evaluate_cmd,
    explore_cmd,
    export_cmd,
    models_cmd,
    predict_cmd,
    serve_cmd,
    train_cmd,
    tune_cmd,
)
from fmnist.cli.app import app
from fmnist.cli.text import printable
from fmnist.errors import FmnistError


def _terminate_as_interrupt(signum: int, frame: object) -> None:
    """SIGTERM (`kill`, `timeout`, a closing session) ends a command like Ctrl-C: a training
    run is marked interrupted and keeps its best weights, instead of vanishing mid-write with
    `status: training`."""
    raise KeyboardInterrupt


def main() -> None:
    """Run the CLI; a user mistake prints one clear line and exits 2, with no traceback.
    Ctrl-C and SIGTERM exit 130."""
    signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    try:
        app()
    except FmnistError as exc:
        # printable: a hostile name or field in the message cannot drive the terminal; escaped:
        # 'fmnist[distributed]' stays as written
        message = escape(printable(str(exc), keep_lines=True))
        Console(stderr=True).print(f"[bold red]error:[/] {message}", highlight=False,
                                   soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        Console(stderr=True).print("[yellow]interrupted[/]")
        sys.exit(130)
