"""`fmnist serve RUN`: the web app and HTTP API for one saved model."""

from __future__ import annotations

import gc
import sys
from pathlib import Path

import typer

from fmnist.cli.app import app


@app.command("serve")
def serve(
    run: Path = typer.Argument(..., help="Run folder written by 'fmnist train' (model.json)."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on; 0.0.0.0 exposes it to "
                                               "the network."),
    port: int = typer.Option(8000, min=0, max=65535, help="TCP port (0 picks a free one)."),
    threads: int = typer.Option(1, min=1, help="Threads for a torch model's inference. One "
                                               "leaves the other cores to the web server, "
                                               "which is what limits throughput."),
) -> None:
    """Serve the model: a web page at / and the API (/predict, /model, /healthz, /docs)."""
    import uvicorn

    from fmnist.serve import create_app

    application = create_app(run)  # loads the model once, before the port opens
    _set_torch_threads(threads)
    # Everything loaded so far (torch, scikit-learn, the model) lives as long as the server;
    # moving it out of the collector's view keeps its full passes, and latency spikes, short.
    gc.collect()
    gc.freeze()
    typer.echo(f"serving {application.state.served.name} from {run} (Ctrl+C stops)")
    uvicorn.run(application, host=host, port=port, log_level="info", access_log=False)


def _set_torch_threads(threads: int) -> None:
    """Only when the model brought torch in: a classical model has no reason to import it."""
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
