"""`fmnist serve RUN`: the web app and HTTP API for one saved model."""

from __future__ import annotations

from pathlib import Path

import typer

from fmnist.cli.app import app


@app.command("serve")
def serve(
    run: Path = typer.Argument(..., help="Run folder written by 'fmnist train' (model.json)."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on; 0.0.0.0 exposes it to "
                                               "the network."),
    port: int = typer.Option(8000, min=0, max=65535, help="TCP port (0 picks a free one)."),
) -> None:
    """Serve the model: a web page at / and the API (/predict, /model, /healthz, /docs)."""
    import uvicorn

    from fmnist.serve import create_app

    application = create_app(run)  # loads the model once, before the port opens
    typer.echo(f"serving {application.state.served.name} from {run} (Ctrl+C stops)")
    uvicorn.run(application, host=host, port=port, log_level="info", access_log=False)
