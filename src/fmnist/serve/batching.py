"""Micro-batching of predictions on one worker thread, off the event loop.

Why: a model scores 64 images in one call far faster than in 64 calls (one forward pass, one
set of weight reads), and `predict_proba` would otherwise block the event loop that also
accepts connections. Requests queue up while the worker runs a batch; the next batch takes all of
them (up to `max_batch` images), so batching adds no waiting at low load and grows by itself
under load. Nothing is ever dropped: the queue is unbounded and every request gets its result or
the model's exception.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class BatchResult:
    """The probabilities for one request's images, and where its time went."""

    probabilities: np.ndarray  # [n_images, n_classes]
    queue_ms: float  # waiting for the worker
    inference_ms: float  # the model call that included this request
    batch_images: int  # images in that call (this request's and others')


@dataclass
class _Job:
    images: np.ndarray
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future
    enqueued: float = field(default_factory=time.perf_counter)


_STOP = object()


class MicroBatcher:
    """Serialise model calls on one thread and merge the requests that wait into one batch.

    `predict_proba` takes uint8 images `[N, H, W]` and returns `[N, n_classes]`; it is only ever
    called from the worker thread, so models that are not thread-safe are fine. The batcher is
    not tied to an event loop: each job remembers its loop and gets its result through
    `call_soon_threadsafe`, so it works under Uvicorn and under `TestClient` alike.
    """

    def __init__(self, predict_proba: Callable[[np.ndarray], np.ndarray], *,
                 max_batch: int = 64) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        self._predict_proba = predict_proba
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.batches = 0  # model calls made so far
        self.images = 0  # images scored so far

    async def predict(self, images: np.ndarray) -> BatchResult:
        """Score `images` ([N, H, W] uint8) together with whatever else is waiting."""
        self._ensure_started()
        loop = asyncio.get_running_loop()
        job = _Job(images, loop, loop.create_future())
        self._queue.put(job)
        return await job.future

    def close(self) -> None:
        """Finish the jobs already queued, then stop the worker thread."""
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None:
            self._queue.put(_STOP)
            thread.join()

    def _ensure_started(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="fmnist-batcher",
                                                daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            jobs, stop = self._take_more(first)
            self._score(jobs)
            if stop:
                return

    def _take_more(self, first: _Job) -> tuple[list[_Job], bool]:
        """The first job plus every job already waiting, up to `max_batch` images."""
        jobs, n = [first], len(first.images)
        while n < self.max_batch:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is _STOP:
                return jobs, True
            jobs.append(job)
            n += len(job.images)
        return jobs, False

    def _score(self, jobs: list[_Job]) -> None:
        """One model call per image shape in the batch; results go back to each job's loop."""
        by_shape: dict[tuple[int, ...], list[_Job]] = {}
        for job in jobs:
            by_shape.setdefault(job.images.shape[1:], []).append(job)
        for group in by_shape.values():
            start = time.perf_counter()
            try:
                probs = self._predict_proba(np.concatenate([j.images for j in group]))
                probs = np.asarray(probs, dtype=np.float64)
            except Exception as exc:  # the model failed: every waiting request hears of it
                for job in group:
                    _deliver(job, _set_exception, exc)
                continue
            done = time.perf_counter()
            self.batches += 1
            self.images += len(probs)
            offset = 0
            for job in group:
                n = len(job.images)
                result = BatchResult(probs[offset:offset + n], (start - job.enqueued) * 1e3,
                                     (done - start) * 1e3, len(probs))
                offset += n
                _deliver(job, _set_result, result)


def _deliver(job: _Job, setter: Callable, value: object) -> None:
    """Hand a result to the job's event loop; a loop that has closed has nobody to tell."""
    with contextlib.suppress(RuntimeError):  # loop closed: the worker must live on
        job.loop.call_soon_threadsafe(setter, job.future, value)


def _set_result(future: asyncio.Future, result: BatchResult) -> None:
    if not future.done():  # the client may have gone away and cancelled it
        future.set_result(result)


def _set_exception(future: asyncio.Future, exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
