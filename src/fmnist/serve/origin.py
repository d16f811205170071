"""Who may talk to the server: browser POSTs from other origins, and Host names (issue 11 #17).

Two attacks on a server on the user's own machine, both carried out by the user's browser:

* **Cross-site requests**: a page on any web site can make the browser POST a form (multipart
  uploads included, no CORS preflight needed) to `http://127.0.0.1:8000/predict`. Browsers send
  an `Origin` header with every POST (and `Sec-Fetch-Site`), so a POST whose origin is neither
  the server's own (the scheme and `Host` the request was sent to) nor listed with
  `--allow-origin` is refused with 403 before its body is read. A request without either header
  is not from a browser page (curl, scripts) and is allowed.
* **DNS rebinding**: a site can point its own name at 127.0.0.1 and then read the answers as
  same-origin. When the server listens only on the loopback interface, it answers only requests
  whose `Host` is a loopback name (`localhost`, `127.0.0.1`, `[::1]`) or the host of an allowed
  origin; anything else is 421 ("misdirected"). Bound to another address, `Host` is not checked
  (the name a network client uses is not ours to know).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from fmnist.errors import FmnistError
from fmnist.serve.errors import error_body

LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def normalise_origin(origin: str) -> str:
    """`http://Example.com:8000/` → `http://example.com:8000`; refuse what is not an origin."""
    parts = urlsplit(origin.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or \
            parts.path not in ("", "/") or parts.query or parts.fragment:
        raise FmnistError(f"--allow-origin {origin!r}: expected an origin such as "
                          "http://example.com:8080 (scheme, host and optional port, no path)")
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        raise FmnistError(f"--allow-origin {origin!r}: the port is not a number") from None
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme}://{host}{port}"


def is_loopback(host: str) -> bool:
    """True when `host` (a listening address) is reachable only from this machine."""
    return host.strip("[]").lower() in LOOPBACK_HOSTS or host.startswith("127.")


class OriginGuard:
    """Refuse cross-origin browser POSTs (403) and, when `check_host`, foreign Hosts (421)."""

    def __init__(self, app: ASGIApp, allowed_origins: Iterable[str] = (),
                 check_host: bool = False) -> None:
        self.app = app
        self.allowed_origins = frozenset(normalise_origin(o) for o in allowed_origins)
        self.allowed_hosts = LOOPBACK_HOSTS | {
            (urlsplit(o).hostname or "").lower() for o in self.allowed_origins}
        self.check_host = check_host

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "")
        if self.check_host and _hostname(host) not in self.allowed_hosts:
            await _reject(send, 421, "misdirected_request",
                          f"this server answers only to localhost, not to Host {host[:100]!r} "
                          "(a guard against DNS rebinding)")
            return
        if scope["method"] not in SAFE_METHODS and not self._same_or_allowed(headers, scope):
            await _reject(send, 403, "forbidden_origin",
                          f"cross-origin request from {headers.get('origin', 'another site')!r} "
                          "refused; start the server with --allow-origin ORIGIN to accept it")
            return
        await self.app(scope, receive, send)

    def _same_or_allowed(self, headers: dict[str, str], scope: Scope) -> bool:
        origin = headers.get("origin")
        if origin is None:  # no Origin: not a browser page, unless Fetch metadata says so
            return headers.get("sec-fetch-site", "same-origin") in ("same-origin", "none")
        if origin == "null":  # sandboxed frames, file:// pages, some redirects
            return False
        own = f"{scope.get('scheme', 'http')}://{headers.get('host', '').lower()}"
        try:
            return origin.lower() == own or normalise_origin(origin) in self.allowed_origins
        except FmnistError:
            return False


def _hostname(host: str) -> str:
    """`Host` without its port, lower-cased: `[::1]:8000` → `::1`, `LocalHost:80` → `localhost`."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


async def _reject(send: Send, status: int, code: str, detail: str) -> None:
    payload = json.dumps(error_body(code, detail)).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(payload)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": payload})
