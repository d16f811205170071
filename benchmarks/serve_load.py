"""Load test for `fmnist serve`: N concurrent clients on loopback for a bounded time.

Starts the real server (`python -m fmnist serve RUN`) in a subprocess, then runs, in this one
process, asyncio clients with httpx that each send single 28×28 predictions (JSON, real test
images) back to back. Reports requests/s, p50/p95/p99 latency, failures, and the server's RSS
sampled every 0.5 s (it should stay flat). A 1-client phase runs first as the baseline.

Note that the clients share the machine's cores with the server: on 2 cores the numbers are a
lower bound on what the server alone could do.

    flock /tmp/fmnist-cpu.lock .venv/bin/python benchmarks/serve_load.py --run runs/<cnn-run> \
        --clients 64 --seconds 30

Without `--run`, a CNN with the registry's default architecture (`cnn`: width 32, depth 3) is
trained for one short epoch on 6,000 images: serving speed depends on the architecture, not on
how long it trained.
"""

from __future__ import annotations

import argparse
import asyncio
import json
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


def default_cnn_run() -> Path:
    from fmnist.data import load_fashion_mnist
    from fmnist.runs import train_run

    train = load_fashion_mnist("train").head(n_per_class=600, seed=0)
    test = load_fashion_mnist("test").head(n_per_class=100, seed=0)
    out = Path(tempfile.mkdtemp(prefix="serve-load-"))
    return train_run("cnn", {"epochs": 1, "val_fraction": 0.0}, train, test,
                     out_root=out).run_dir


def start_server(run: Path, port: int) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "fmnist", "serve", str(run), "--port",
                             str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
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


async def run_phase(url: str, bodies: list[bytes], clients: int, seconds: float,
                    pid: int) -> Phase:
    latencies: list[float] = []
    failed = 0
    rss: list[float] = []
    stop = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    headers = {"content-type": "application/json"}

    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        async def worker(k: int) -> None:
            nonlocal failed
            i = k
            while time.perf_counter() < stop:
                body = bodies[i % len(bodies)]
                i += clients
                t0 = time.perf_counter()
                try:
                    r = await client.post("/predict", content=body, headers=headers)
                    ok = r.status_code == 200 and r.json()["predictions"]
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - t0)
                failed += not ok

        async def sampler() -> None:
            while time.perf_counter() < stop:
                rss.append(rss_mb(pid))
                await asyncio.sleep(0.5)
            rss.append(rss_mb(pid))

        start = time.perf_counter()
        await asyncio.gather(sampler(), *(worker(k) for k in range(clients)))
        elapsed = time.perf_counter() - start
    ms = np.asarray(latencies) * 1e3
    return Phase(clients, round(elapsed, 1), len(ms), failed, round(len(ms) / elapsed, 1),
                 *(round(float(np.percentile(ms, q)), 1) for q in (50, 95, 99)),
                 round(float(ms.max()), 1), round(rss[0], 1), round(max(rss), 1),
                 round(rss[-1], 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, help="run folder to serve (default: see above)")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--baseline-seconds", type=float, default=5.0)
    parser.add_argument("--warmup-seconds", type=float, default=3.0)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()

    from fmnist.data import load_fashion_mnist

    run = args.run or default_cnn_run()
    images = load_fashion_mnist("test").images[:512]
    bodies = [json.dumps({"image": img.tolist()}).encode() for img in images]
    port = free_port()
    proc = start_server(run, port)
    url = f"http://127.0.0.1:{port}"
    try:
        model = httpx.get(f"{url}/model").json()
        asyncio.run(run_phase(url, bodies, args.clients, args.warmup_seconds, proc.pid))
        phases = [asyncio.run(run_phase(url, bodies, n, s, proc.pid))
                  for n, s in ((1, args.baseline_seconds), (args.clients, args.seconds))]
        health = httpx.get(f"{url}/healthz").json()
    finally:
        proc.terminate()
        proc.wait(timeout=10)

    print(f"model {model['name']} {model['params']} from {run}")
    print(f"server batches: {health['batches']} model calls for {health['images']} images "
          f"({health['images'] / max(health['batches'], 1):.1f} images per call on average)")
    print("| clients | s | requests | failed | req/s | p50 ms | p95 ms | p99 ms | max ms "
          "| RSS start → max → end MB |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for p in phases:
        print(f"| {p.clients} | {p.seconds} | {p.requests} | {p.failed} | {p.requests_per_s} | "
              f"{p.p50_ms} | {p.p95_ms} | {p.p99_ms} | {p.max_ms} | "
              f"{p.rss_start_mb} → {p.rss_max_mb} → {p.rss_end_mb} |")
    base, load = phases
    print(f"throughput ×{load.requests_per_s / base.requests_per_s:.2f} and p50 latency "
          f"×{load.p50_ms / base.p50_ms:.1f} vs 1 client; "
          f"RSS change over the loaded run {load.rss_end_mb - load.rss_start_mb:+.1f} MB")
    if args.json:
        args.json.write_text(json.dumps({"model": model, "run": str(run),
                                         "health": health,
                                         "phases": [asdict(p) for p in phases]}, indent=2))
    if any(p.failed for p in phases):
        sys.exit(1)


if __name__ == "__main__":
    main()
