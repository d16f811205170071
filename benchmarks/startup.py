"""Start-up time of the command line: `fmnist --help` and `fmnist models`, median of N runs.

Wall time is what a user waits; CPU time (user + system of the child) is reported too because on
a shared machine the wall time also counts waiting for a core. Floors (issue 14): `--help` ≤
0.8 s, `models` ≤ 1.5 s, median of 5 on the 2-core development machine.

    python benchmarks/startup.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

FMNIST = Path(sys.executable).with_name("fmnist")
COMMANDS = {"fmnist --help": ["--help"], "fmnist models": ["models"]}


def _once(args: list[str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one run of `fmnist ARGS`."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run([str(FMNIST), *args], check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; median of {runs}")
    for name, args in COMMANDS.items():
        _once(args)  # warm the file cache: the first run after an install reads every .pyc
        times = [_once(args) for _ in range(runs)]
        wall = statistics.median(t[0] for t in times)
        cpu = statistics.median(t[1] for t in times)
        print(f"{name:16s} wall {wall:.2f} s   cpu {cpu:.2f} s")


if __name__ == "__main__":
    main()
