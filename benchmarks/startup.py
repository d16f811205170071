"""Start-up time of the command line: `fmnist --help`, `fmnist models` and a cold
`fmnist predict PHOTO` with the shipped model, median of N fresh processes.

Wall time is what a user waits; CPU time (user + system of the child) is reported too because on
a shared machine the wall time also counts waiting for a core. Floors, median of 5 on the 2-core
development machine: `--help` ≤ 0.8 s, `models` ≤ 1.5 s (issue 14); `predict PHOTO` ≤ 3 s,
including the model load (issue 12).

    python benchmarks/startup.py [--runs 5] [--photo PHOTO] [--only predict] [--jsonl FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

FMNIST = Path(sys.executable).with_name("fmnist")
# One of the six easy photos of ../shared/photos (reference material beside the repository).
DEFAULT_PHOTO = Path(__file__).resolve().parents[2] / "shared" / "photos" / "shirt.jpg"


def commands(photo: Path) -> dict[str, list[str]]:
    """What is timed: name → arguments of `fmnist`."""
    return {"fmnist --help": ["--help"], "fmnist models": ["models"],
            "fmnist predict PHOTO": ["predict", str(photo)]}


def _once(args: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run of `fmnist ARGS`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([str(FMNIST), *args], check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def _cpu_model() -> str:
    """The CPU's model name (Linux), else what `platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--photo", type=Path, default=DEFAULT_PHOTO)
    parser.add_argument("--only", choices=("help", "models", "predict"),
                        help="time one command only")
    parser.add_argument("--jsonl", type=Path, help="append one JSON line per command here")
    args = parser.parse_args()
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; median of "
          f"{args.runs}")
    for name, argv in commands(args.photo).items():
        if args.only and args.only not in name:
            continue
        load_before = os.getloadavg()[0]
        _once(argv)  # warm the file cache: the first run after an install reads every .pyc
        times = [_once(argv) for _ in range(args.runs)]
        wall = statistics.median(t[0] for t in times)
        cpu = statistics.median(t[1] for t in times)
        print(f"{name:20s} wall {wall:.2f} s   cpu {cpu:.2f} s   "
              f"(runs {', '.join(f'{t[0]:.2f}' for t in times)})")
        if args.jsonl:
            record = {"command": name, "args": argv, "median_wall_s": round(wall, 3),
                      "median_cpu_s": round(cpu, 3), "wall_s": [round(t[0], 3) for t in times],
                      "load_before": load_before, "load_after": os.getloadavg()[0],
                      "cpus": os.cpu_count(), "cpu": _cpu_model(),
                      "at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
            with args.jsonl.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(record) + "\n")


if __name__ == "__main__":
    main()
