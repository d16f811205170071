"""One JSON shape for every error the API returns, and no stack trace ever reaches a client.

Why a module of its own: the body-size middleware, the request parsing and the exception handlers
all speak the same `{"error": code, "detail": message}` body, so a client (and the page's
JavaScript) can show `detail` for any failure without knowing where it came from.
"""

from __future__ import annotations

import logging
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("fmnist.serve")


class ApiError(Exception):
    """A bad request the client can fix: the status, a short code and a sentence saying why."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail


def error_body(code: str, detail: str) -> dict[str, str]:
    """The JSON body of every error response."""
    return {"error": code, "detail": detail}


def error_response(status: int, code: str, detail: str) -> JSONResponse:
    return JSONResponse(error_body(code, detail), status_code=status)


def _validation_message(exc: RequestValidationError) -> str:
    """'query.top_k: Input should be less than or equal to 10' — the first few problems."""
    parts = []
    for err in exc.errors()[:3]:
        where = ".".join(str(p) for p in err.get("loc", ()))
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def install_handlers(app: FastAPI) -> None:
    """Route every exception to a JSON error; unexpected ones are logged here, not sent."""

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.detail)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = HTTPStatus(exc.status_code).phrase.lower().replace(" ", "_")
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        return JSONResponse(error_body(code, detail), status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        return error_response(422, "invalid_request", _validation_message(exc))

    @app.exception_handler(Exception)
    async def _internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return error_response(500, "internal_error",
                              "the server failed to handle this request (see the server log); "
                              "it is still running")
