"""`fmnist serve` against hostile clients, over real sockets to a real Uvicorn on 127.0.0.1:
issue 11 #3 (idle and half-sent connections, log floods), #12 (JSON that overflows or nests
10,000 deep), #16 (strict JSON schema) and #17 (Origin and Host checks).

Most tests run Uvicorn in a thread of the test process with the same protocol class `fmnist
serve` uses (short deadlines, so the tests are quick); the last ones start the real command.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn

from fmnist.runs.train import train_run
from fmnist.serve import create_app
from fmnist.serve.connections import (
    ConnectionLimits,
    IncidentLog,
    QuietRepeats,
    guarded_protocol,
)

ROW = [0] * 28
IMAGE = [ROW] * 14 + [[0] * 10 + [200] * 8 + [0] * 10] * 14


@pytest.fixture(scope="module")
def run_dir(small_train, small_test, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("serve-security-runs")
    # kNN without PCA: fits instantly, and the tests are about the server, not the model
    return train_run("knn", {"reduce": "none", "n_jobs": 1}, small_train, small_test,
                     out_root=out).run_dir


@contextmanager
def real_server(app, limits: ConnectionLimits = ConnectionLimits(header_timeout=1.0,
                                                                  body_timeout=2.0)
                ) -> Iterator[int]:
    """Uvicorn on a free loopback port in a thread, with `fmnist serve`'s protocol class."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning",
                            access_log=False, http=guarded_protocol(limits),
                            timeout_keep_alive=5, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "server did not start"
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(15)


def exchange(sock: socket.socket, method: str, path: str, body: bytes = b"",
             headers: dict[str, str] | None = None, host: str = "127.0.0.1"
             ) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 request on an open (keep-alive) socket; the status, headers and body."""
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + body)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "connection closed before a response"
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    status = int(head.split()[1])
    fields = dict(line.split(": ", 1) for line in head.decode().split("\r\n")[1:])
    fields = {k.lower(): v for k, v in fields.items()}
    length = int(fields.get("content-length", 0))
    while len(rest) < length:
        chunk = sock.recv(65536)
        assert chunk, "connection closed mid-body"
        rest += chunk
    return status, fields, rest[:length]


def connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    return sock


def json_post(sock, doc_text: str, **kw) -> tuple[int, dict[str, str], bytes]:
    return exchange(sock, "POST", "/predict", doc_text.encode(),
                    {"Content-Type": "application/json", **kw.pop("headers", {})}, **kw)


# -- #12: overflow and nesting are 4xx, and the keep-alive connection survives -----------------
def test_huge_numbers_and_deep_nesting_are_4xx_on_a_kept_connection(run_dir) -> None:
    with real_server(create_app(run_dir)) as port, connect(port) as sock:
        huge_row = "[" + ",".join(["1" + "0" * 400] + ["0"] * 27) + "]"
        cases = [('{"image": [' + ",".join([huge_row] * 28) + "]}", 422, "invalid_pixels"),
                 ("[" * 10_000 + "]" * 10_000, 400, "invalid_json"),
                 ("1" + "0" * 400, 422, "invalid_shape"),
                 ("[[1e400]]", 422, "invalid_shape")]
        for text, status, code in cases:
            got, fields, body = json_post(sock, text)
            assert (got, json.loads(body)["error"]) == (status, code), body[:200]
            assert fields.get("connection") != "close"
            ok, _, answer = json_post(sock, json.dumps({"image": IMAGE}))  # same socket
            assert ok == 200 and json.loads(answer)["predictions"][0]["label"]


# -- #16: the documented schema, strictly ------------------------------------------------------
STRICT = [
    ("booleans as pixels", {"image": [[True] * 28] * 28}, "invalid_pixels"),
    ("numeric strings as pixels", {"image": [["12"] * 28] * 28}, "invalid_pixels"),
    ("null pixel", {"image": [ROW] * 27 + [[None] * 28]}, "invalid_pixels"),
    ("unknown extra key", {"image": [ROW] * 28, "model": "other"}, "invalid_request"),
    ("both keys", {"image": [ROW] * 28, "images": [[ROW] * 28]}, "invalid_request"),
    ("4 levels deep", {"images": [[[ROW] * 28]]}, "invalid_shape"),
]


@pytest.mark.parametrize(("case", "doc", "code"), STRICT, ids=[c[0] for c in STRICT])
def test_json_schema_is_strict(run_dir, case, doc, code) -> None:
    with real_server(create_app(run_dir)) as port, connect(port) as sock:
        status, _, body = json_post(sock, json.dumps(doc))
        assert status == 422 and json.loads(body)["error"] == code, body[:200]


def test_json_over_1_mb_is_refused_before_parsing(run_dir) -> None:
    """10 MB of JSON used to block the event loop ~0.5 s in `json.loads`."""
    with real_server(create_app(run_dir)) as port, connect(port) as sock:
        start = time.perf_counter()
        status, _, body = json_post(sock, "[" + ",".join(["0"] * 2_000_000) + "]")
        assert status == 413 and json.loads(body)["error"] == "payload_too_large"
        assert time.perf_counter() - start < 5


def test_json_floats_in_0_1_give_the_answers_of_0_255(run_dir, small_test) -> None:
    """The one pixel rule (issue 14 #1) holds for the API too."""
    images = small_test.images[:8]
    with real_server(create_app(run_dir)) as port, connect(port) as sock:
        _, _, as_int = json_post(sock, json.dumps({"images": images.tolist()}))
        _, _, as_unit = json_post(sock, json.dumps({"images": (images / 255.0).tolist()}))
    labels = [[p["label"] for p in json.loads(b)["predictions"]] for b in (as_int, as_unit)]
    assert labels[0] == labels[1]


# -- #17: Origin and Host ---------------------------------------------------------------------
def test_cross_origin_posts_are_refused_same_origin_and_allowed_ones_pass(run_dir) -> None:
    app = create_app(run_dir, allowed_origins=["http://tools.example:8080"])
    body = json.dumps({"image": IMAGE})
    with real_server(app) as port, connect(port) as sock:
        own = f"http://127.0.0.1:{port}"
        for origin, status in (("http://evil.example", 403), ("null", 403),
                               (own, 200), ("http://tools.example:8080", 200),
                               (f"http://localhost:{port}", 403)):
            with connect(port) as fresh:
                got, _, answer = json_post(fresh, body, headers={"Origin": origin},
                                           host=f"127.0.0.1:{port}")
            assert got == status, (origin, answer[:200])
            if status == 403:
                assert json.loads(answer)["error"] == "forbidden_origin"
        with connect(port) as fresh:  # a refusal closes the connection (its body is unread)
            got, _, _ = json_post(fresh, body, headers={"Sec-Fetch-Site": "cross-site"})
        assert got == 403  # a browser that sent no Origin but says cross-site
        got, _, _ = json_post(sock, body)  # curl, scripts: no Origin at all
        assert got == 200
        got, _, _ = exchange(sock, "GET", "/model", headers={"Origin": "http://evil.example"})
        assert got == 200  # reading is not a state-changing request


def test_foreign_host_is_refused_when_bound_to_loopback(run_dir) -> None:
    with real_server(create_app(run_dir, check_host=True)) as port:
        for host, status in ((f"127.0.0.1:{port}", 200), (f"localhost:{port}", 200),
                             (f"[::1]:{port}", 200), ("evil.example", 421),
                             (f"rebind.evil.example:{port}", 421), ("", 421)):
            with connect(port) as sock:
                got, _, body = exchange(sock, "GET", "/healthz", host=host)
            assert got == status, (host, body[:200])


def test_bad_allow_origin_is_a_clear_error(run_dir) -> None:
    from fmnist.errors import FmnistError

    with pytest.raises(FmnistError, match="expected an origin"):
        create_app(run_dir, allowed_origins=["http://example.com/path"])


# -- #3: idle and half-sent connections, log floods --------------------------------------------
SLOW_BODY = (b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
             b"Content-Length: 100000\r\n\r\n[[")


def _open_idle(port: int, count: int, half: bytes) -> list[socket.socket]:
    """`count` sockets: a third silent, a third with half a head, a third with a trickling body."""
    socks = []
    for index in range(count):
        sock = socket.socket()
        sock.settimeout(10)
        sock.connect(("127.0.0.1", port))
        if index % 3:
            sock.sendall(half if index % 3 == 1 else SLOW_BODY)  # never finished
        socks.append(sock)
    return socks


def _healthz_ms(port: int) -> float:
    start = time.perf_counter()
    with connect(port) as sock:
        status, _, body = exchange(sock, "GET", "/healthz")
    assert status == 200 and json.loads(body)["status"] == "ok"
    return (time.perf_counter() - start) * 1e3


def test_idle_connections_are_capped_and_timed_out(run_dir, caplog) -> None:
    limits = ConnectionLimits(header_timeout=1.5, body_timeout=2.0, max_idle=500)
    caplog.set_level(logging.WARNING)
    with real_server(create_app(run_dir), limits) as port:
        socks = _open_idle(port, 2_100, b"GET /healthz HTTP/1.1\r\nHost: 127.0")
        try:
            times = [_healthz_ms(port) for _ in range(5)]  # answered despite 2,100 idle sockets
            assert max(times) < 2_000, times
            time.sleep(limits.header_timeout + 1.0)
            closed = 0
            for sock in socks[-200:]:  # the survivors of the cap were closed by the deadline
                sock.settimeout(2)
                closed += sock.recv(1) == b""
            assert closed == 200
            # a body that never finishes is cut off too
            with connect(port) as slow:
                slow.sendall(b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                             b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n[")
                slow.settimeout(limits.body_timeout + 5)
                assert slow.recv(65536) == b""
        finally:
            for sock in socks:
                sock.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "fmnist.serve"]
    assert 1 <= len(lines) <= 6, lines  # one line per kind of incident, not one per socket
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]  # no tracebacks


def test_incident_log_summarises_bursts(caplog) -> None:
    caplog.set_level(logging.WARNING, logger="fmnist.serve")
    incidents = IncidentLog(every=0.2)
    for _ in range(1000):
        incidents.note("closed idle connections")
    time.sleep(0.25)
    incidents.note("closed idle connections")
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["closed idle connections",
                     "closed idle connections (1,000 times in the last 0.2 s)"]


def test_repeated_log_lines_are_held_back_and_counted(caplog) -> None:
    """A model that fails every request logs one traceback per quiet period, with a count."""
    logger = logging.getLogger("fmnist.test.quiet")
    quiet = QuietRepeats(every=0.2)
    logger.addFilter(quiet)
    try:
        with caplog.at_level(logging.ERROR, logger="fmnist.test.quiet"):
            for _ in range(500):
                logger.error("unhandled error on %s %s", "POST", "/predict")
            logger.error("unhandled error on %s %s", "GET", "/model")  # another message
            time.sleep(0.25)
            logger.error("unhandled error on %s %s", "POST", "/predict")
    finally:
        logger.removeFilter(quiet)
    assert [r.getMessage() for r in caplog.records] == [
        "unhandled error on POST /predict", "unhandled error on GET /model",
        "unhandled error on POST /predict (and 499 more in the last 0.2 s)"]


# -- the command itself ------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def served(run_dir) -> Iterator[tuple[int, subprocess.Popen]]:
    """`python -m fmnist serve RUN` on a free loopback port (stopped at the end)."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "fmnist", "serve", str(run_dir),
                             "--port", str(port), "--allow-origin", "http://tools.example:8080"],
                            stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    deadline = time.monotonic() + 90
    while True:
        assert proc.poll() is None and time.monotonic() < deadline, "fmnist serve did not start"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            time.sleep(0.2)
    try:
        yield port, proc
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.communicate(timeout=20)  # drains the log pipe, which could block the server
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()


def test_cli_serve_survives_2000_idle_connections_and_a_garbage_flood(served) -> None:
    port, proc = served
    socks = _open_idle(port, 2_100, b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nX-A")
    try:
        times = [_healthz_ms(port) for _ in range(5)]
        assert max(times) < 2_000, times
    finally:
        for sock in socks:
            sock.close()
    for _ in range(300):  # malformed requests: each used to log its own warning
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(b"GARBAGE\r\n\r\n")
            sock.recv(1024)
    for index in range(100):  # malformed forms: python-multipart warned once per request
        with connect(port) as sock:
            status, _, _ = exchange(sock, "POST", "/predict", f"garbage{index}".encode(),
                                    {"Content-Type": "multipart/form-data; boundary=abc"})
            assert status == 400
    assert _healthz_ms(port) < 2_000
    with connect(port) as sock:  # bound to loopback: a rebinding Host is refused
        assert exchange(sock, "GET", "/healthz", host="evil.example")[0] == 421
    body = json.dumps({"image": IMAGE})
    for origin, status in (("http://tools.example:8080", 200), ("http://evil.example", 403)):
        with connect(port) as sock:  # --allow-origin reaches the app
            assert json_post(sock, body, headers={"Origin": origin})[0] == status
    proc.terminate()
    output, _ = proc.communicate(timeout=30)
    invalid = len(re.findall("Invalid HTTP request", output))
    assert 1 <= invalid <= 3, output[-2000:]
    assert len(output.splitlines()) < 40, output[-2000:]


def test_cli_bad_allow_origin_is_one_line(run_dir) -> None:
    out = subprocess.run([sys.executable, "-m", "fmnist", "serve", str(run_dir), "--port", "0",
                          "--allow-origin", "tools.example"], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 2 and "expected an origin" in out.stderr
    assert "Traceback" not in out.stderr


def test_one_request_of_16_large_compressible_photos_decodes_at_most_its_budget(run_dir) -> None:
    """Each photo is held to 40 MP, but 16 compressible 40 MP RGBA PNGs fit in one 2.6 MB
    upload and once held a decoder slot for 11.7 s. A request's photos now share 80 MP: two of
    these 36 MP PNGs are decoded and scored, the other 14 are refused (413) before decoding."""
    from fastapi.testclient import TestClient
    from PIL import Image

    from fmnist.serve.photos import MAX_REQUEST_PIXELS

    side = 6000  # 36 MP: a white block on black, ≈ 40 KB as a PNG
    canvas = Image.new("L", (side, side))
    canvas.paste(255, (2000, 1000, 4000, 5000))
    buf = io.BytesIO()
    canvas.save(buf, format="PNG", optimize=False, compress_level=9)
    data = buf.getvalue()
    assert 16 * len(data) < 1_000_000 and 2 * side * side <= MAX_REQUEST_PIXELS < 3 * side * side
    with TestClient(create_app(run_dir)) as client:
        start = time.perf_counter()
        response = client.post("/predict", files=[("file", (f"p{i}.png", data, "image/png"))
                                                  for i in range(16)])
        seconds = time.perf_counter() - start
    assert response.status_code == 200, response.text[:300]
    entries = response.json()["predictions"]
    assert [e.get("status", 200) for e in entries] == [200, 200] + [413] * 14
    assert all(e["error"] == "request_too_many_pixels" for e in entries[2:])
    assert seconds < 10, f"{seconds:.1f} s"  # two decodes, not sixteen
