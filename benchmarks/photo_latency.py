"""Photo latency of the shipped model: one photo end to end after load, and a cold CLI call.

    python benchmarks/photo_latency.py [PHOTO_DIR] [--threads 2] [--cold 3]

"After load": the model is loaded once, then each photo is decoded, converted (pipeline v2) and
scored on its own (batch of one), as `fmnist serve` does; p50/p90 over every photo in the
folder (default ../shared/photos/real), after one warm-up photo. "Cold": `fmnist predict PHOTO`
as a fresh process, including Python start-up, imports and the model load.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

DEFAULT_DIR = Path(__file__).resolve().parents[2] / "shared" / "photos" / "real"


def after_load(photos: list[Path], threads: int) -> list[float]:
    from fmnist.predict import predict_paths
    from fmnist.weights import load_default

    loaded = load_default(threads)  # its ONNX graph, or the network with torch on `threads`
    list(predict_paths(loaded, [photos[0]]))  # warm-up: first-call allocations
    times = []
    for photo in photos:
        start = time.perf_counter()
        list(predict_paths(loaded, [photo]))
        times.append(time.perf_counter() - start)
    return times


def cold(photo: Path, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "fmnist", "predict", str(photo)], check=True,
                       capture_output=True)
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=DEFAULT_DIR)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cold", type=int, default=3)
    args = parser.parse_args()
    photos = sorted(p for p in args.folder.iterdir()
                    if p.suffix.lower() in (".jpg", ".jpeg", ".png", ".webp"))
    warm = np.array(after_load(photos, args.threads)) * 1000
    print(f"after load, {len(photos)} photos, {args.threads} threads: p50 "
          f"{np.percentile(warm, 50):.1f} ms, p90 {np.percentile(warm, 90):.1f} ms, "
          f"max {warm.max():.1f} ms")
    if args.cold:
        runs = cold(photos[0], args.cold)
        print(f"cold 'fmnist predict {photos[0].name}': median {statistics.median(runs):.2f} s "
              f"(runs: {', '.join(f'{t:.2f}' for t in runs)})")


if __name__ == "__main__":
    main()
