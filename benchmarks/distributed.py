"""More than one process: `compare --jobs 1` vs `--jobs N` wall time, and what `tune` buys.

    # compare: the same suite with --jobs 1 and --jobs 2 (each in a fresh output folder, so
    # nothing is reused); wall time from process start to exit, data loading included
    flock /tmp/fmnist-cpu.lock .venv/bin/python benchmarks/distributed.py compare \
        --preset standard --jobs 1 2
    # tune: a 20-trial study of cnn, its retrained best vs the default cnn on the test set
    flock /tmp/fmnist-cpu.lock .venv/bin/python benchmarks/distributed.py tune cnn --trials 20

`--models a,b,c` and `--train-size N` (compare), `--train-size N` (tune) give reduced runs;
every row records them, the load average before and after, and the machine, so a reduced or
contended number is never mistaken for the full one. Rows are appended to
benchmarks/results/distributed.jsonl; RESULTS.md is written by hand from them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
JSONL = HERE / "results" / "distributed.jsonl"
FMNIST = [sys.executable, "-m", "fmnist"]


def _machine() -> dict:
    return {"cpus": os.cpu_count(), "platform": platform.platform(),
            "processor": platform.processor() or platform.machine()}


def _run(cmd: list[str]) -> tuple[float, str]:
    """Run a command to completion; its wall time and stdout (stderr passes through)."""
    start = time.perf_counter()
    done = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): {' '.join(cmd)}\n{done.stdout[-2000:]}")
    return seconds, done.stdout


def _record(row: dict) -> None:
    row = {"when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "machine": _machine(), **row}
    JSONL.parent.mkdir(parents=True, exist_ok=True)
    with JSONL.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(row) + "\n")
    print(json.dumps(row, indent=1))


def bench_compare(args: argparse.Namespace) -> None:
    """The same comparison once per --jobs value, each from scratch."""
    extra = ["--no-explore"]
    if args.models:
        extra += ["--models", args.models]
    if args.train_size:
        extra += ["--train-size", str(args.train_size)]
    for jobs in args.jobs:
        with tempfile.TemporaryDirectory(prefix="fmnist-bench-") as tmp:
            load_before = os.getloadavg()[0]
            seconds, _ = _run([*FMNIST, "compare", "--preset", args.preset, "--jobs", str(jobs),
                               "--out", tmp, *extra])
            board = json.loads((Path(tmp) / "results.json").read_text())["leaderboard"]
        _record({"bench": "compare", "preset": args.preset, "jobs": jobs,
                 "models": args.models, "train_size": args.train_size,
                 "wall_seconds": round(seconds, 1), "load_before": load_before,
                 "load_after": os.getloadavg()[0],
                 "accuracy": {r["model"]: r.get("accuracy") for r in board}})


def bench_tune(args: argparse.Namespace) -> None:
    """A study of `model`, then the default model trained and scored the same way."""
    size = ["--train-size", str(args.train_size)] if args.train_size else []
    with tempfile.TemporaryDirectory(prefix="fmnist-bench-") as tmp:
        load_before = os.getloadavg()[0]
        tune_s, _ = _run([*FMNIST, "tune", args.model, "--trials", str(args.trials),
                          "--out", f"{tmp}/tune", *size])
        tuned = json.loads(Path(f"{tmp}/tune/tune.json").read_text())
        default_s, out = _run([*FMNIST, "train", args.model, "--out", f"{tmp}/default", *size])
        default_acc = float(out.split("test accuracy:")[1].split()[0])
    _record({"bench": "tune", "model": args.model, "trials": args.trials,
             "train_size": args.train_size, "wall_seconds": round(tune_s, 1),
             "counts": tuned["counts"], "best_params": tuned["best"]["params"],
             "best_val_accuracy": tuned["best"]["val_accuracy"],
             "tuned_test_accuracy": tuned["final"]["test_accuracy"],
             "default_test_accuracy": default_acc, "default_seconds": round(default_s, 1),
             "load_before": load_before, "load_after": os.getloadavg()[0]})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="bench", required=True)
    cmp = sub.add_parser("compare")
    cmp.add_argument("--preset", default="standard")
    cmp.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    cmp.add_argument("--models", default=None)
    cmp.add_argument("--train-size", type=int, default=None)
    tun = sub.add_parser("tune")
    tun.add_argument("model", nargs="?", default="cnn")
    tun.add_argument("--trials", type=int, default=20)
    tun.add_argument("--train-size", type=int, default=None)
    args = parser.parse_args()
    if args.bench == "compare":
        bench_compare(args)
    else:
        bench_tune(args)


if __name__ == "__main__":
    main()
