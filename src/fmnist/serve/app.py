"""The FastAPI application: `/predict`, `/model`, `/healthz` and the one-page web app at `/`.

`create_app` takes a saved run folder (loaded once with `fmnist.runs.store.load`) or an already
fitted
estimator, so tests and notebooks can serve a model without writing it to disk first.
"""

from __future__ import annotations

import base64
import re
import struct
import time
import zlib
from collections.abc import Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import UploadFile

from fmnist.errors import FmnistError
from fmnist.footwear_views import merge_views, turned_views
from fmnist.predict import make_prediction, resolve_model
from fmnist.runs.store import LoadedRun, load
from fmnist.serve.backends import make_backend
from fmnist.serve.batching import MicroBatcher
from fmnist.serve.errors import ApiError, error_body, install_handlers
from fmnist.serve.inputs import JSON_HELP, parse_json_images
from fmnist.serve.limits import BodySizeLimit
from fmnist.serve.origin import OriginGuard, normalise_origin
from fmnist.serve.photos import MAX_PIXELS, MAX_REQUEST_PIXELS, photos_to_images

STATIC = Path(__file__).with_name("static")
MAX_BODY_BYTES = 10_000_000  # 10 MB: a large phone photo fits, a flood does not
MAX_IMAGES = 16  # images per request: a page of uploads, not a dataset
# JSON bodies: 16 arrays of 28×28 numbers written out in full are ~300 KB. `json.loads` runs on
# the event loop, and 10 MB of JSON held every other client up for ~0.5 s.
MAX_JSON_BYTES = 1_000_000
DECODERS = 2  # photos decoded at once: one per core; more would only add memory
TOP_K_DEFAULT, TOP_K_MAX = 3, 100
TOP_K_TEXT = re.compile(r"[0-9]{1,3}")  # ASCII digits only: `int` would also take "٣" or "1_0"
# What /docs shows for /predict, which reads its query and body itself (`DirectRoute`).
PREDICT_DOCS = {
    "description": "Scores photos (multipart, up to 16) or 28×28 pixel arrays (JSON). A photo "
                   "that cannot be read is, in its place in `predictions`, an entry `{source, "
                   "error, detail, status}` while the others are scored; only when no photo can "
                   "be read is the answer the first one's error.",
    "parameters": [{"name": "top_k", "in": "query", "required": False,
                    "description": "classes to return",
                    "schema": {"type": "integer", "minimum": 1, "maximum": TOP_K_MAX,
                               "default": TOP_K_DEFAULT}}],
    "requestBody": {"required": True, "content": {
        "multipart/form-data": {"schema": {"type": "object", "properties": {
            "file": {"type": "string", "format": "binary"}}}},
        "application/json": {"schema": {"description": JSON_HELP}}}},
}


@dataclass(frozen=True)
class Limits:
    """What one request may ask of the server."""

    max_body_bytes: int = MAX_BODY_BYTES
    max_images: int = MAX_IMAGES
    max_pixels: int = MAX_PIXELS
    max_request_pixels: int = MAX_REQUEST_PIXELS  # all of one request's photos together


@dataclass
class ServedModel:
    """A fitted estimator, its class names and input size, and what the API says about it."""

    model: Any
    class_names: tuple[str, ...]
    image_shape: tuple[int, int]
    meta: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    backend: str = "native"  # what runs the forward pass (fmnist.serve.backends)
    backend_note: str = ""

    @property
    def name(self) -> str:
        return str(self.meta.get("model") or type(self.model).__name__)


def load_served(source: str | Path | Any, meta: dict[str, Any] | None = None) -> ServedModel:
    """A run folder (through `fmnist.runs.store.load`), a `LoadedRun`, or a fitted estimator."""
    if isinstance(source, (str, Path)):
        source = load(source)
    if isinstance(source, LoadedRun):
        meta, path = dict(source.meta), source.path
    else:
        if not hasattr(source, "predict_proba"):
            raise FmnistError(f"cannot serve {type(source).__name__}: it gives no probabilities")
        meta, path = dict(meta or {}), None
    resolved = resolve_model(source, meta.get("class_names"))
    shape = tuple(resolved.image_shape or meta.get("image_shape") or (28, 28))
    return ServedModel(resolved.model, resolved.class_names, (int(shape[-2]), int(shape[-1])),
                       meta, path)


def create_app(source: str | Path | Any, *, meta: dict[str, Any] | None = None,
               limits: Limits = Limits(), max_batch: int = 64,
               allowed_origins: Sequence[str] = (), check_host: bool = False,
               backend: str = "auto", threads: int = 1) -> FastAPI:
    """The web app serving one model; see docs/serve.md for the API.

    `source` is a run folder, a `fmnist.runs.store.LoadedRun`, or a fitted estimator (then `meta`
    may give its name, metrics and class names, as a run's model.json would). Cross-origin
    browser POSTs are refused unless their origin is in `allowed_origins`; `check_host` (set by
    `fmnist serve` when it listens on loopback only) refuses foreign `Host` names
    (`fmnist.serve.origin`). `backend` (auto, onnx, native) and `threads` choose how the forward
    pass runs (`fmnist.serve.backends`).
    """
    allowed_origins = tuple(normalise_origin(o) for o in allowed_origins)  # bad ones fail here
    served = load_served(source, meta)
    forward = make_backend(served.model, served.image_shape, backend, threads)
    served.backend, served.backend_note = forward.name, forward.note
    batcher = MicroBatcher(forward.predict_proba, max_batch=max_batch)
    decoders = anyio.CapacityLimiter(DECODERS)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        yield
        batcher.close()

    app = FastAPI(title="fmnist", summary=f"Fashion-MNIST classifier: {served.name}",
                  lifespan=lifespan, docs_url="/docs", redoc_url=None)
    app.state.served = served
    app.state.batcher = batcher
    install_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=limits.max_body_bytes)
    # added last, so it runs first: a refused origin or host costs no body read
    app.add_middleware(OriginGuard, allowed_origins=allowed_origins, check_host=check_host)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    _add_routes(app, served, batcher, limits, decoders)
    return app


def _add_routes(app: FastAPI, served: ServedModel, batcher: MicroBatcher, limits: Limits,
                decoders: anyio.CapacityLimiter) -> None:
    """The page and the API routes (/, /healthz, /model, /predict) of one served model."""

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        """Liveness: the model is loaded and the batcher's counters move."""
        return {"status": "ok", "model": served.name, "batches": batcher.batches,
                "images": batcher.images}

    @app.get("/model")
    async def model_info() -> dict[str, Any]:
        """What is being served: name, parameters, test metrics, class names, input size."""
        return model_summary(served)

    async def predict(request: Request) -> JSONResponse:
        """Score uploaded photos (multipart) or 28×28 pixel arrays (JSON)."""
        start = time.perf_counter()
        top_k = parse_top_k(request.query_params.get("top_k"))
        sources, images, failures, photos = await _read_images(request, served.image_shape,
                                                               limits, decoders)
        decoded = time.perf_counter()
        result = await batcher.predict(images)
        probabilities, queue_ms, inference_ms = (result.probabilities, result.queue_ms,
                                                 result.inference_ms)
        views = None
        if photos:  # turning is ~0.2 ms a footwear photo: off the event loop, like decoding
            views = await anyio.to_thread.run_sync(turned_views, images, probabilities,
                                                   served.class_names, limiter=decoders)
        if views:  # tilted shoes: the turned copies go through the batcher like any images
            turned = await batcher.predict(views.images)
            probabilities = merge_views(probabilities, views, turned.probabilities)
            queue_ms, inference_ms = queue_ms + turned.queue_ms, inference_ms + turned.inference_ms
        predictions = answer_entries(sources, failures, probabilities, images,
                                     served.class_names, top_k)
        return JSONResponse({  # plain types already: skip FastAPI's per-field encoder
            "model": served.name,
            "predictions": predictions,
            "timing": {"decode_ms": round((decoded - start) * 1e3, 2),
                       "queue_ms": round(queue_ms, 2),
                       "inference_ms": round(inference_ms, 2),
                       "batch_images": result.batch_images,
                       "turned_views": len(views.images) if views else 0,
                       "total_ms": round((time.perf_counter() - start) * 1e3, 2)},
        })

    app.router.add_api_route("/predict", predict, methods=["POST"], openapi_extra=PREDICT_DOCS,
                             route_class_override=DirectRoute)


class DirectRoute(APIRoute):
    """A route FastAPI documents at /docs but calls like a plain Starlette one: the endpoint
    gets the `Request` and parses its query and body itself.

    Why: FastAPI's per-request dependency solving and parameter validation cost `/predict`
    ~60 µs of the event loop's thread per request, and that thread (with the forward pass)
    bounds the requests per second (benchmarks/RESULTS.md, session of 2026-11-27 06:20). The
    endpoint's errors still reach the app's exception handlers (`fmnist.serve.errors`)."""

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        return self.endpoint


def parse_top_k(text: str | None) -> int:
    """The `top_k` query parameter: a whole number from 1 to TOP_K_MAX (TOP_K_DEFAULT if absent).
    """
    if text is None:
        return TOP_K_DEFAULT
    value = int(text) if TOP_K_TEXT.fullmatch(text) else 0
    if not 1 <= value <= TOP_K_MAX:
        raise ApiError(422, "invalid_request", f"query.top_k: expected a whole number from 1 to "
                       f"{TOP_K_MAX}, got {text[:20]!r}")
    return value


async def _read_images(request: Request, shape: tuple[int, int], limits: Limits,
                       decoders: anyio.CapacityLimiter
                       ) -> tuple[list[str], np.ndarray, dict[int, ApiError], bool]:
    """Dispatch on the content type: JSON pixels or multipart photos; anything else is 415.

    Returns every input's name, the images that could be read, the errors of the photos that
    could not, by position, and whether the images are converted photos (not pixel arrays).
    Photos are decoded on worker threads, at most `decoders` at a time; the rest wait their
    turn. When no photo can be read, the first one's error is the answer (so a single bad photo
    gets its status, as before).
    """
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "application/json" or ctype.endswith("+json"):
        body = await request.body()
        if len(body) > MAX_JSON_BYTES:
            raise ApiError(413, "payload_too_large",
                           f"{len(body):,} bytes of JSON exceed the limit of {MAX_JSON_BYTES:,} "
                           f"for pixel arrays ({limits.max_images} images of 28×28 need ~300 KB)")
        images = parse_json_images(body, shape, limits.max_images)
        return [f"array[{i}]" for i in range(len(images))], images, {}, False
    if ctype == "multipart/form-data":
        uploads = await _uploads(request, limits.max_images)
        images, failures = await anyio.to_thread.run_sync(
            photos_to_images, uploads, shape, limits.max_pixels, limits.max_request_pixels,
            limiter=decoders)
        if not len(images):
            raise failures[0]
        return [name for name, _ in uploads], images, failures, True
    raise ApiError(415, "unsupported_media_type",
                   f"content type {ctype or '(none)'!r} is not accepted; upload images as "
                   "multipart/form-data (field 'file') or send pixels as application/json")


async def _uploads(request: Request, max_images: int) -> list[tuple[str, bytes]]:
    """Every uploaded file in the form, whatever its field name, as (filename, bytes)."""
    async with request.form(max_files=max_images, max_fields=max_images) as form:
        files = [v for _, v in form.multi_items() if isinstance(v, UploadFile)]
        if not files:
            raise ApiError(400, "no_file",
                           "the form holds no file; upload an image in the field 'file'")
        return [(f.filename or f"upload[{i}]", await f.read()) for i, f in enumerate(files)]


def answer_entries(sources: Sequence[str], failures: dict[int, ApiError],
                   probabilities: np.ndarray, images: np.ndarray, names: tuple[str, ...],
                   top_k: int) -> list[dict[str, Any]]:
    """One entry per input, in order: a scored image, or the error of a photo that could not be
    read (`{"source", "error", "detail", "status"}`)."""
    scored = iter(zip(probabilities, images, strict=True))
    entries = []
    for i, source in enumerate(sources):
        if i in failures:
            failure = failures[i]
            entries.append({"source": source, **error_body(failure.code, failure.detail),
                            "status": failure.status})
            continue
        probs, image = next(scored)
        entries.append({**describe(source, probs, names, top_k), "image_png": png_base64(image)})
    return entries


def describe(source: str, probs: np.ndarray, names: tuple[str, ...],
             top_k: int) -> dict[str, Any]:
    """One image's answer, with `fmnist.predict`'s top-k and "not sure" rule (as the CLI)."""
    pred = make_prediction(source, probs, names, top_k)
    return {"source": source, "label": pred.label, "probability": round(pred.probability, 6),
            "low_confidence": pred.unsure, "message": pred.message,
            "top": [{"label": n, "probability": round(p, 6)} for n, p in pred.top_k]}


def png_base64(image: np.ndarray) -> str:
    """The image the model saw (uint8 `[H, W]`), as base64 PNG (a few hundred bytes for 28×28).

    Written with zlib rather than Pillow: a greyscale PNG is three chunks, and Pillow's save
    machinery cost 53 µs per 28×28 against 27 µs here, on the event loop's thread."""
    height, width = image.shape
    rows = np.zeros((height, width + 1), dtype=np.uint8)  # each row starts with filter 0: none
    rows[:, 1:] = image
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grey, no interlace
    png = (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
           + _png_chunk(b"IDAT", zlib.compress(rows.tobytes(), 6)) + _png_chunk(b"IEND", b""))
    return base64.b64encode(png).decode("ascii")


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    """Length, type, data and the CRC-32 of type + data (PNG specification, section 5.3)."""
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data)))


def model_summary(served: ServedModel) -> dict[str, Any]:
    """The `/model` body: from the run's model.json where there is one."""
    meta = served.meta
    params = meta.get("params")
    if params is None and hasattr(served.model, "get_params"):
        params = {k: v for k, v in served.model.get_params(deep=False).items()
                  if isinstance(v, (str, int, float, bool, type(None)))}
    return {
        "name": served.name,
        "family": meta.get("family"),
        "params": params or {},
        "n_parameters": meta.get("n_parameters", getattr(served.model, "n_params_", None)),
        "metrics": meta.get("metrics", {}),
        "class_names": list(served.class_names),
        "image_shape": list(served.image_shape),
        "run": served.path.name if served.path else None,
        "saved_at": meta.get("saved_at"),
        "backend": served.backend,
    }
