"""Connection hygiene for `fmnist serve`: deadlines, a cap on idle sockets, one log line per flood.

Uvicorn times out a keep-alive connection only *after* a response: a client that connects and
sends nothing, or half a request head, or one byte after a response, holds its socket forever,
and ~20,000 of them exhausted the process's file descriptors so that even `/healthz` went
unanswered while every malformed request logged its own warning (35 MB in 10 s; issue 11 #3).
`guarded_protocol` returns Uvicorn's h11 protocol with three additions:

* **deadlines**: a connection must deliver a complete request head within `header_timeout`
  seconds of connecting (or of its previous response), and the whole body within `body_timeout`;
  otherwise it is closed;
* **an idle cap**: at most `max_idle` connections may be waiting for the rest of a request (its
  head or its body) at once; a new one over the cap closes the one that has waited longest, so
  clients that send a request promptly (a browser, `curl`, `/healthz` probes) are served however
  many idle or trickling sockets an attacker opens (a slow upload is only at risk during such a
  flood);
  `max_connections` bounds everything else, well below the descriptor limit;
* **incident logging**: each kind of incident is logged once when it starts and then summarised
  at most every `LOG_EVERY` seconds ("closed 1,234 idle connections …"), never once per socket.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, OrderedDict
from dataclasses import dataclass

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("fmnist.serve")
LOG_EVERY = 10.0  # seconds between two summary lines of one kind of incident


@dataclass(frozen=True)
class ConnectionLimits:
    """How long a request may take to arrive and how many sockets may be held (see module doc)."""

    header_timeout: float = 10.0
    body_timeout: float = 120.0  # 10 MB at ~0.7 Mbit/s
    max_idle: int = 512
    max_connections: int = 2048


class IncidentLog:
    """Count incidents by kind; log the first of a burst at once and the rest as one summary."""

    def __init__(self, every: float = LOG_EVERY) -> None:
        self.every = every
        self.pending: Counter[str] = Counter()
        self.last: dict[str, float] = {}

    def note(self, kind: str) -> None:
        """One more incident of `kind` ("idle connection closed after 10 s", …)."""
        now = time.monotonic()
        self.pending[kind] += 1
        if now - self.last.get(kind, -self.every) >= self.every:
            count = self.pending.pop(kind)
            self.last[kind] = now
            log.warning("%s%s", kind, "" if count == 1 else
                        f" ({count:,} times in the last {self.every:g} s)")


class QuietRepeats(logging.Filter):
    """A log filter letting one copy of a repeated message through per `every` seconds.

    Uvicorn logs "Invalid HTTP request received." once per bad request, and the app logs a
    traceback per failing request; under a flood the next copy after the quiet period carries
    the count of those it held back.
    """

    def __init__(self, every: float = LOG_EVERY) -> None:
        super().__init__()
        self.every = every
        self.held: Counter[str] = Counter()
        self.last: dict[str, float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key, now = record.getMessage(), time.monotonic()
        if now - self.last.get(key, -self.every) < self.every:
            self.held[key] += 1
            return False
        self.last[key] = now
        if held := self.held.pop(key, 0):
            record.msg, record.args = f"{key} (and {held:,} more in the last {self.every:g} s)", ()
        return True


def limits_for_this_process(limits: ConnectionLimits = ConnectionLimits()) -> ConnectionLimits:
    """`limits` with `max_connections` kept below the open-file limit (raised to its hard cap).

    A server that runs out of descriptors cannot accept even its health check, so the cap leaves
    room for the model's files, logs and the decoders' temporary files.
    """
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if hard != resource.RLIM_INFINITY and soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
    except (ImportError, ValueError, OSError):  # not POSIX, or not allowed: keep what we have
        return limits
    room = max(16, int(soft) - 128) if soft != resource.RLIM_INFINITY else limits.max_connections
    return ConnectionLimits(limits.header_timeout, limits.body_timeout,
                            min(limits.max_idle, room), min(limits.max_connections, room))


class _Guard:
    """The state shared by every connection of one server: the idle queue and the incident log."""

    def __init__(self, limits: ConnectionLimits) -> None:
        self.limits = limits
        self.idle: OrderedDict[H11Protocol, None] = OrderedDict()
        self.incidents = IncidentLog()


class GuardedH11Protocol(H11Protocol):
    """Uvicorn's h11 protocol with deadlines and the idle cap; `guard` is set per server."""

    guard: _Guard
    _deadline: asyncio.TimerHandle | None = None
    _in_body = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.guard.limits.max_connections:
            if not self.guard.idle:  # every socket is busy with a request: refuse this one
                self.guard.incidents.note(f"refused connections over the cap of "
                                          f"{self.guard.limits.max_connections:,}")
                transport.abort()
                return
            self._evict_oldest(f"more than {self.guard.limits.max_connections:,} connections")
        self._wait_for_head()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        state = self.conn.their_state
        if state is h11.SEND_BODY and not self._in_body:
            self._in_body = True  # still waiting (and evictable), on the body's deadline
            self._arm(self.guard.limits.body_timeout, "request body")
        elif state is not h11.IDLE and state is not h11.SEND_BODY:
            self.guard.idle.pop(self, None)
            self._disarm()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
            self._wait_for_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self.guard.idle.pop(self, None)
        self._disarm()
        super().connection_lost(exc)

    def _wait_for_head(self) -> None:
        self._in_body = False
        self.guard.idle[self] = None
        self.guard.idle.move_to_end(self)
        self._arm(self.guard.limits.header_timeout, "request head")
        while len(self.guard.idle) > self.guard.limits.max_idle:
            self._evict_oldest(f"more than {self.guard.limits.max_idle:,} idle connections")

    def _evict_oldest(self, why: str) -> None:
        oldest, _ = self.guard.idle.popitem(last=False)
        self.guard.incidents.note(f"closed the longest-waiting idle connections ({why})")
        oldest._close()

    def _arm(self, seconds: float, what: str) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expire, seconds, what)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self, seconds: float, what: str) -> None:
        self._deadline = None
        self.guard.idle.pop(self, None)
        self.guard.incidents.note(f"closed connections that sent no complete {what} "
                                  f"within {seconds:g} s")
        self._close()

    def _close(self) -> None:
        self._disarm()
        if not self.transport.is_closing():
            self.transport.close()


def guarded_protocol(limits: ConnectionLimits = ConnectionLimits()) -> type[H11Protocol]:
    """A protocol class for `uvicorn.run(http=...)` enforcing `limits` (one guard per call)."""
    return type("GuardedH11Protocol", (GuardedH11Protocol,), {"guard": _Guard(limits)})
