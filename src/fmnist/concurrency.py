"""Photo conversions on a few threads, answers in input order.

Why threads: converting a photo is decoding (Pillow), colour maths (NumPy, scikit-image) and
mask work (SciPy, OpenCV), which mostly run outside Python's GIL: the development photos
converted 1.85× faster on two threads than on one (2-core AMD EPYC, benchmarks/RESULTS.md).
Why bounded: at most `2 × workers` conversions are queued before their answers are taken, and
`workers` run at once, so a folder of 100,000 photos never holds more than a handful of decoded
images (each bounded by the decoder's pixel limit).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

# Threads for photo conversion by default: one per core, at most this many.
MAX_WORKERS = 4


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity where the OS reports one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def default_workers() -> int:
    """One conversion thread per core this process may use, at most `MAX_WORKERS`."""
    return max(1, min(MAX_WORKERS, usable_cores()))


def ordered_map(fn: Callable[[T], R], items: Iterable[T], workers: int) -> Iterator[R]:
    """`map(fn, items)` on `workers` threads, yielding in input order; with one worker it is
    plain `map` (no thread). An exception raised by `fn` is raised here, at its item."""
    if workers <= 1:
        yield from map(fn, items)
        return
    pending: deque[Future[R]] = deque()
    executor = ThreadPoolExecutor(workers, thread_name_prefix="fmnist-convert")
    try:
        for item in items:
            pending.append(executor.submit(fn, item))
            if len(pending) >= 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:  # an early stop (an error, Ctrl-C, a consumer that quits) drops what is queued
        executor.shutdown(wait=True, cancel_futures=True)
