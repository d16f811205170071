"""`fmnist serve [RUN]`: the web app and HTTP API for one saved model (default: the shipped one)."""

from __future__ import annotations

import gc
import sys
from pathlib import Path

import typer

from fmnist.cli.app import app


@app.command("serve")
def serve(
    run: Path | None = typer.Argument(None, help="Run folder written by 'fmnist train' "
                                      "(model.json); default: the model shipped with fmnist."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on; 0.0.0.0 exposes it to "
                                               "the network."),
    port: int = typer.Option(8000, min=0, max=65535, help="TCP port (0 picks a free one)."),
    threads: int = typer.Option(1, min=1, help="Threads for a torch model's inference. One "
                                               "leaves the other cores to the web server, "
                                               "which is what limits throughput."),
    backend: str = typer.Option("auto", help="What runs a torch network: onnx (ONNX Runtime, "
                                "built in memory from the loaded run), int8 (that graph "
                                "quantized: about 2x the images/s, answers differ from the "
                                "model's on about 0.5% of images; needs the official dataset), "
                                "native (PyTorch, or scikit-learn for classical models), or "
                                "auto: onnx when onnx and onnxruntime are installed, else "
                                "native."),
    allow_origin: list[str] = typer.Option([], "--allow-origin", metavar="ORIGIN",
                                           help="Also accept browser "
                                           "POSTs from this origin (e.g. http://example.com:8080"
                                           "); repeatable. Other sites' pages are refused."),
) -> None:
    """Serve the model: a web page at / and the API (/predict, /model, /healthz, /docs)."""
    from fmnist.extras import require_extra

    require_extra("serve", "'fmnist serve'")  # one clear line, not an ImportError
    import logging

    import uvicorn

    from fmnist.serve import create_app
    from fmnist.serve.connections import QuietRepeats, guarded_protocol, limits_for_this_process
    from fmnist.serve.origin import is_loopback
    from fmnist.weights import load_run_or_default

    # the shipped model's own ONNX graph unless its network is asked for (native, int8)
    loaded = load_run_or_default(run, threads, graph=backend in ("auto", "onnx"))
    _set_torch_threads(threads)  # before the ONNX export and its probe run the model
    application = create_app(loaded, allowed_origins=allow_origin, check_host=is_loopback(host),
                             backend=backend, threads=threads)  # before the port opens
    # Everything loaded so far (torch, scikit-learn, the model) lives as long as the server;
    # moving it out of the collector's view keeps its full passes, and latency spikes, short.
    gc.collect()
    gc.freeze()
    where = run or "the shipped default model"
    served = application.state.served
    typer.echo(f"serving {served.name} from {where} through {served.backend_note} "
               "(Ctrl+C stops)")
    for name in ("uvicorn.error", "fmnist.serve"):  # one line per flood, not one per request
        logging.getLogger(name).addFilter(QuietRepeats())
    # python-multipart warns once per malformed form, in a message that varies; the client
    # already gets a 400 saying why, so the server log keeps only its errors
    logging.getLogger("python_multipart").setLevel(logging.ERROR)
    # Header/body deadlines and caps on idle and total sockets (serve/connections.py; Uvicorn's
    # own limit_concurrency counts idle sockets too, so it would turn /healthz away under a
    # flood); keep-alive 5 s; Ctrl+C waits at most 5 s for requests in flight.
    uvicorn.run(application, host=host, port=port, log_level="info", access_log=False,
                http=guarded_protocol(limits_for_this_process()), timeout_keep_alive=5,
                timeout_graceful_shutdown=5)


def _set_torch_threads(threads: int) -> None:
    """Only when the model brought torch in: a classical model has no reason to import it."""
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)
