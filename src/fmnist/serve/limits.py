"""A hard cap on request bodies, enforced before any parsing.

Why a raw ASGI middleware: multipart parsing spools uploads to disk and JSON parsing builds the
whole document in memory, so the size must be checked while the bytes arrive — by the declared
`Content-Length` (rejected without reading) and by counting a chunked body as it streams.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fmnist.serve.errors import error_body


class BodySizeLimit:
    """Answer 413 with a JSON error when a request body exceeds `max_bytes`."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._reject(send, declared)
            return
        body, more = bytearray(), True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client left (or was closed for being slow): nobody to answer
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_bytes:
                await self._reject(send, None)
                return
        await self.app(scope, _replay(bytes(body), receive), send)

    async def _reject(self, send: Send, declared: int | None) -> None:
        size = f"{declared:,} bytes" if declared is not None else "the body"
        payload = json.dumps(error_body(
            "payload_too_large",
            f"{size} exceeds the limit of {self.max_bytes:,} bytes; send a smaller image "
            "(photos are shrunk to 28×28 anyway)")).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(payload)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": payload})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands the buffered body to the app once, then defers to the server."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
