"""Load test for `fmnist serve`: N concurrent clients on loopback for a bounded time.

Starts the real server (`python -m fmnist serve RUN`) in a subprocess, then runs, in this one
process, asyncio clients with httpx that each send single 28×28 predictions (JSON, real test
images) back to back. Reports requests/s, p50/p95/p99 latency, failures, and the server's RSS
sampled every 0.5 s (it should stay flat). A 1-client phase runs first as the baseline.

Note that the clients share the machine's cores with the server: on 2 cores the numbers are a
lower bound on what the server alone could do.

    flock /tmp/fmnist-cpu.lock .venv/bin/python benchmarks/serve_load.py --run runs/<cnn-run> \
        --clients 64 --seconds 30

Without `--run`, a net with the registry's default `cnn` architecture (speednet width 20, flip
TTA) is trained for one short epoch on 6,000 images: serving speed depends on the architecture,
not on how long it trained.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import numpy as np


@dataclass
class Phase:
    clients: int
    seconds: float
    requests: int
    failed: int
    requests_per_s: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    rss_start_mb: float
    rss_max_mb: float
    rss_end_mb: float
    rss_every_10s_mb: list[float]  # the time series, to tell a plateau from a leak
    server_cpu_ms_per_request: float  # user + system CPU over the timed phase, per request
    client_cpu_ms_per_request: float  # the load generator's own (it shares the cores)
    load_average_1min: float  # at the end of the phase
    # From each answer's `timing` (the server's own clock): where a request's time went.
    handler_ms_p50: float  # the /predict handler from its start to its answer
    queue_ms_p50: float  # of which waiting for the batcher's thread
    model_ms_per_image_p50: float  # the model call that included the request, per image in it
    batch_images_mean: float  # images in that call


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    """Resident memory of a process, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def default_cnn_run() -> Path:
    from fmnist.data import load_fashion_mnist
    from fmnist.runs.train import train_run

    train = load_fashion_mnist("train").head(n_per_class=600, seed=0)
    test = load_fashion_mnist("test").head(n_per_class=100, seed=0)
    out = Path(tempfile.mkdtemp(prefix="serve-load-"))
    return train_run("cnn", {"epochs": 1, "val_fraction": 0.0}, train, test,
                     out_root=out).run_dir


def serve_command(run: Path, port: int, extra: list[str]) -> list[str]:
    return [sys.executable, "-m", "fmnist", "serve", str(run), "--port", str(port), *extra]


def start_server(command: list[str], port: int) -> subprocess.Popen:
    proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read().decode()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not start within 120 s")


def answer_timing(status: int, payload: bytes) -> dict | None:
    """A good answer's `timing` (status 200 and at least one prediction), else None."""
    if status != 200:
        return None
    answer = json.loads(payload)
    return answer["timing"] if answer.get("predictions") else None


class HttpxUser:
    """One simulated user on httpx: its own client, so its own keep-alive connection.

    (One httpx client shared by all users costs O(connections) of Python per request in its
    pool: 8.7 ms of client CPU per request at 64 connections, measured, which made the load
    generator the bottleneck.)
    """

    def __init__(self, url: str) -> None:
        self.client = httpx.AsyncClient(base_url=url, timeout=30)

    async def post(self, body: bytes) -> dict | None:
        """The answer's `timing`, or None for a failed request."""
        try:
            r = await self.client.post("/predict", content=body,
                                       headers={"content-type": "application/json"})
            return answer_timing(r.status_code, r.content)
        except httpx.HTTPError:
            return None

    async def aclose(self) -> None:
        await self.client.aclose()


class RawUser:
    """One simulated user speaking minimal HTTP/1.1 keep-alive over an asyncio stream.

    It does what httpx does for this one request shape at a tenth of the CPU, so on a 2-core
    machine the load generator takes less of the server's cores. It still checks every response
    (status 200, JSON body with predictions).
    """

    def __init__(self, url: str) -> None:
        self.host, port = url.removeprefix("http://").split(":")
        self.port = int(port)
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, body: bytes) -> dict | None:
        """The answer's `timing`, or None for a failed request."""
        try:
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            self.writer.write(b"POST /predict HTTP/1.1\r\nHost: %s\r\n"
                              b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                              % (self.host.encode(), len(body)) + body)
            head = await self.reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:"))
            payload = await self.reader.readexactly(length)
            return answer_timing(status, payload)
        except (OSError, ValueError, StopIteration, asyncio.IncompleteReadError,
                asyncio.LimitOverrunError):
            await self.aclose()
            return None

    async def aclose(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.reader = self.writer = None


async def run_phase(url: str, bodies: list[bytes], clients: int, seconds: float, pid: int,
                    warmup: float, user_class: type = HttpxUser) -> Phase:
    """`clients` users sending back to back for `warmup` + `seconds`; only requests that start
    after the warm-up (connections open, caches warm) are timed, but every failure counts."""
    latencies: list[float] = []
    timings: list[dict] = []
    failed = 0
    rss: list[float] = []
    cpu: list[tuple[float, float]] = []  # (server, clients) at the start and end of timing
    begin = time.perf_counter() + warmup
    stop = begin + seconds

    async def worker(k: int) -> None:
        nonlocal failed
        user = user_class(url)
        try:
            i = k
            while time.perf_counter() < stop:
                body = bodies[i % len(bodies)]
                i += clients
                t0 = time.perf_counter()
                timing = await user.post(body)
                if t0 >= begin:
                    latencies.append(time.perf_counter() - t0)
                    if timing is not None:
                        timings.append(timing)
                failed += timing is None
        finally:
            await user.aclose()

    async def sampler() -> None:
        await asyncio.sleep(warmup)
        cpu.append((cpu_seconds(pid), own_cpu_seconds()))
        while time.perf_counter() < stop:
            rss.append(rss_mb(pid))
            await asyncio.sleep(0.5)
        rss.append(rss_mb(pid))
        cpu.append((cpu_seconds(pid), own_cpu_seconds()))

    await asyncio.gather(sampler(), *(worker(k) for k in range(clients)))
    elapsed = time.perf_counter() - begin
    ms = np.asarray(latencies) * 1e3
    (server0, client0), (server1, client1) = cpu
    return Phase(clients, round(elapsed, 1), len(ms), failed, round(len(ms) / elapsed, 1),
                 *(round(float(np.percentile(ms, q)), 1) for q in (50, 95, 99)),
                 round(float(ms.max()), 1), round(rss[0], 1), round(max(rss), 1),
                 round(rss[-1], 1), [round(r, 1) for r in rss[::20]],
                 round((server1 - server0) * 1e3 / max(len(ms), 1), 3),
                 round((client1 - client0) * 1e3 / max(len(ms), 1), 3),
                 round(os.getloadavg()[0], 2),
                 round(float(np.median([t["total_ms"] for t in timings])), 2),
                 round(float(np.median([t["queue_ms"] for t in timings])), 2),
                 round(float(np.median([t["inference_ms"] / t["batch_images"]
                                        for t in timings])), 3),
                 round(float(np.mean([t["batch_images"] for t in timings])), 1))


def run_async(coro):
    """On uvloop when installed: the clients share the cores with the server, so the less CPU
    they spend per request, the closer the numbers are to the server's own."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, help="run folder to serve (default: see above)")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--baseline-seconds", type=float, default=5.0)
    parser.add_argument("--warmup-seconds", type=float, default=3.0)
    parser.add_argument("--serve-arg", action="append", default=[],
                        help="extra argument for 'fmnist serve' (repeatable), "
                             "e.g. --serve-arg=--threads=2")
    parser.add_argument("--client", choices=["httpx", "raw"], default="httpx",
                        help="httpx (the default), or a minimal asyncio HTTP/1.1 client that "
                             "takes less CPU from the server")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    from fmnist.data import load_fashion_mnist

    run = args.run or default_cnn_run()
    images = load_fashion_mnist("test").images[:512]
    bodies = [json.dumps({"image": img.tolist()}).encode() for img in images]
    gc.collect()
    gc.freeze()  # the client's own collector pauses would show up as server latency
    port = free_port()
    proc = start_server(serve_command(run, port, args.serve_arg), port)
    url = f"http://127.0.0.1:{port}"
    try:
        model = httpx.get(f"{url}/model").json()
        user = {"httpx": HttpxUser, "raw": RawUser}[args.client]
        phases = [run_async(run_phase(url, bodies, n, s, proc.pid, args.warmup_seconds, user))
                  for n, s in ((1, args.baseline_seconds), (args.clients, args.seconds))]
        health = httpx.get(f"{url}/healthz").json()
    finally:
        proc.terminate()
        proc.wait(timeout=10)

    print(f"model {model['name']} {model['params']} from {run}, backend "
          f"{model.get('backend', 'native')}; {args.client} clients")
    print(f"server batches: {health['batches']} model calls for {health['images']} images "
          f"({health['images'] / max(health['batches'], 1):.1f} images per call on average)")
    print("| clients | s | requests | failed | req/s | p50 ms | p95 ms | p99 ms | max ms "
          "| RSS start → max → end MB | CPU ms/req server, clients | load avg |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---:|")
    for p in phases:
        print(f"| {p.clients} | {p.seconds} | {p.requests} | {p.failed} | {p.requests_per_s} | "
              f"{p.p50_ms} | {p.p95_ms} | {p.p99_ms} | {p.max_ms} | "
              f"{p.rss_start_mb} → {p.rss_max_mb} → {p.rss_end_mb} | "
              f"{p.server_cpu_ms_per_request}, {p.client_cpu_ms_per_request} | "
              f"{p.load_average_1min} |")
    base, load = phases
    print(f"throughput ×{load.requests_per_s / base.requests_per_s:.2f} and p50 latency "
          f"×{load.p50_ms / base.p50_ms:.1f} vs 1 client; "
          f"RSS change over the loaded run {load.rss_end_mb - load.rss_start_mb:+.1f} MB")
    print(f"server RSS every 10 s under load (MB): {load.rss_every_10s_mb}")
    for p in phases:  # the server's own clock, from each answer's `timing`
        print(f"{p.clients} clients: in the handler {p.handler_ms_p50} ms (p50), of which "
              f"queue {p.queue_ms_p50} ms; model "
              f"{p.model_ms_per_image_p50} ms per image (p50) in calls of "
              f"{p.batch_images_mean} images on average")
    if args.json:
        args.json.write_text(json.dumps({"model": model, "run": str(run),
                                         "health": health,
                                         "phases": [asdict(p) for p in phases]}, indent=2))
    if any(p.failed for p in phases):
        sys.exit(1)


if __name__ == "__main__":
    main()
