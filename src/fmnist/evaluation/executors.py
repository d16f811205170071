"""Train a comparison's models in parallel: worker processes on this machine (`--jobs N`, a Dask
`LocalCluster`) or the workers of any Dask cluster (`--scheduler ADDRESS`).

Dask does the scheduling, the transport and the failure detection; this module only says what
one task is. A task (`train_job`) carries a `TrainRequest` (model, parameters, seed and the
data choice: `--data`, `--data-dir`, `--train-size`, ...) and the SHA-256 of the training data —
never the images: the worker loads the data itself, refuses to train if its checksum differs,
trains through `fmnist.runs.train.train_run` into a temporary folder and sends the finished run
folder back as bytes. The client writes it under the comparison's runs folder and evaluates it
exactly as it evaluates a reused run, so the leaderboard and report are those of a local run.

A worker process that dies (killed, out of memory) fails only the task it was running: the
scheduler is asked not to retry it (`allowed-failures` 0), and the client keeps no more tasks in
flight than the cluster has worker threads, so a worker holds one task at a time and a death
cannot take a neighbour queued on it along. (Dask's own queuing, `worker-saturation`, applies
only to large groups of like tasks, not to a comparison's few different models: with every
task submitted at once, a random forest waiting on the worker of a model that killed it failed
with it — seen on 2 workers under load, 2026-11-27.)

A Dask cluster is one trust domain (tasks and results travel as pickles): join only workers you
control. What a worker sends back is still checked: file names must stay inside the run folder,
and their count and total size are bounded.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import shutil
import socket
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from fmnist.data.dataset import Dataset
from fmnist.errors import FmnistError
from fmnist.runs.request import TrainRequest

MAX_JOBS = 64
MAX_RUN_FILES = 10_000
MAX_RUN_BYTES = 4 * 1024**3
SKIP = ("checkpoints",)  # resume state stays on the worker: only finished runs travel
CLUSTER_CONFIG = {"distributed.scheduler.allowed-failures": 0}


@dataclass(frozen=True)
class TrainJob:
    """One model to train (its request: model, parameters, seed, data choice) and the checksum
    its training data must have."""

    request: TrainRequest
    fingerprint: str

    @property
    def name(self) -> str:
        return self.request.model


class WorkerTraceback(Exception):
    """The worker's own traceback, as text: the cause of a `RemoteTrainingError`."""


class RemoteTrainingError(FmnistError):
    """A model's training failed on a worker, or the worker running it died."""


@dataclass
class JobResult:
    """What came back: the run folder's files, or why there are none."""

    name: str
    worker: str
    seconds: float
    files: dict[str, bytes] | None = None
    error: str | None = None
    detail: str = ""

    def failure(self) -> RemoteTrainingError:
        """The failure as an exception whose cause carries the worker's traceback, so the
        model's error.txt shows where on the worker it failed."""
        exc = RemoteTrainingError(f"on {self.worker}: {self.error}")
        exc.__cause__ = WorkerTraceback(self.detail or "(no traceback: the worker died)")
        return exc


@functools.lru_cache(maxsize=1)
def _worker_data(data_args: tuple[tuple[str, Any], ...], seed: int) -> tuple[Dataset, str]:
    """The training data on this worker and its checksum, loaded once per worker process."""
    from fmnist.data.dataset import data_fingerprint

    train, _, _ = TrainRequest(model="", seed=seed, data_args=dict(data_args)).load_data()
    return train, data_fingerprint(train)


@contextlib.contextmanager
def _threads(count: int | None, neural: bool) -> Iterator[None]:
    """Give the task `count` BLAS/OpenMP/torch threads (all the machine's cores when None)."""
    from threadpoolctl import threadpool_limits

    count = count or os.cpu_count() or 1
    if neural:
        import torch

        torch.set_num_threads(count)
    with threadpool_limits(limits=count):
        yield


def train_job(job: TrainJob, threads: int | None = None) -> JobResult:
    """Runs on a worker: load and check the data, train the run, return its files."""
    from fmnist.models import get_spec
    from fmnist.runs.train import train_run

    start = time.perf_counter()
    worker = f"{socket.gethostname()}:{os.getpid()}"
    try:
        request = job.request
        data_args = {k: str(v) if isinstance(v, Path) else v
                     for k, v in request.data_args.items()}
        train, checksum = _worker_data(tuple(sorted(data_args.items())), request.seed)
        if checksum != job.fingerprint:
            return JobResult(job.name, worker, time.perf_counter() - start, error=(
                f"the training data on worker {worker} differ (SHA-256 {checksum[:12]}…, "
                f"expected {job.fingerprint[:12]}…); give every worker the same data"))
        with _threads(threads, get_spec(job.name).family == "neural"), \
                tempfile.TemporaryDirectory(prefix="fmnist-run-") as tmp:
            run = train_run(job.name, request.params, train, None, run_dir=Path(tmp) / "run",
                            seed=request.seed, data_args=data_args)
            files = pack_run(run.run_dir)
        return JobResult(job.name, worker, time.perf_counter() - start, files=files)
    except Exception as exc:  # noqa: BLE001 - reported as this model's failure
        return JobResult(job.name, worker, time.perf_counter() - start,
                         error=f"{type(exc).__name__}: {exc}", detail=traceback.format_exc())


def pack_run(run_dir: Path) -> dict[str, bytes]:
    """Every file of a finished run folder (checkpoints left out), by relative POSIX path."""
    files = {}
    for path in sorted(run_dir.rglob("*")):
        rel = path.relative_to(run_dir)
        if path.is_file() and rel.parts[0] not in SKIP and not path.name.endswith(".tmp"):
            files[rel.as_posix()] = path.read_bytes()
    return files


def unpack_run(files: dict[str, bytes], target: Path) -> Path:
    """Write a returned run folder to `target` (through a temporary folder, replacing an
    unfinished one); names that would leave the folder, or too much data, are refused."""
    if not isinstance(files, dict) or len(files) > MAX_RUN_FILES:
        raise FmnistError(f"a worker returned more than {MAX_RUN_FILES} files")
    if sum(len(b) for b in files.values() if isinstance(b, bytes)) > MAX_RUN_BYTES:
        raise FmnistError(f"a worker returned more than {MAX_RUN_BYTES:,} bytes")
    tmp = target.with_name(target.name + ".incoming")
    shutil.rmtree(tmp, ignore_errors=True)
    for name, data in files.items():
        rel = PurePosixPath(name) if isinstance(name, str) else None
        if (rel is None or not isinstance(data, bytes) or rel.is_absolute() or not rel.parts
                or any(p in ("", ".", "..") or "\\" in p for p in rel.parts)):
            shutil.rmtree(tmp, ignore_errors=True)
            raise FmnistError(f"a worker returned a file named {name!r:.80}: refused")
        path = tmp.joinpath(*rel.parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target


class DaskExecutor:
    """A Dask client (and the local cluster it started, if any) that trains `TrainJob`s;
    `data_args` is the data choice every worker loads (`TrainRequest.data_args`)."""

    def __init__(self, client: Any, cluster: Any, threads: int | None, where: str,
                 data_args: dict[str, Any]) -> None:
        self.client, self.cluster, self.threads, self.where = client, cluster, threads, where
        self.data_args = {k: str(v) if isinstance(v, Path) else v for k, v in data_args.items()}

    @classmethod
    def start(cls, jobs: int = 1, scheduler: str | None = None,
              data_args: dict[str, Any] | None = None) -> DaskExecutor:
        """`jobs` worker processes here (one thread each, the cores shared between them), or
        a client of the cluster whose scheduler listens at `scheduler`."""
        try:
            import dask
            from dask.distributed import Client, LocalCluster
        except ImportError as exc:
            raise FmnistError("--jobs and --scheduler need Dask: pip install "
                              "'fmnist[distributed]'") from exc
        if scheduler is not None:
            try:
                client = Client(scheduler, timeout="20s")
            except (OSError, TimeoutError, ValueError) as exc:
                raise FmnistError(f"cannot reach the Dask scheduler at {scheduler!r}: "
                                  f"{exc}") from exc
            return cls(client, None, None, f"the Dask cluster at {scheduler}", data_args or {})
        if not 1 <= jobs <= MAX_JOBS:
            raise FmnistError(f"--jobs must be between 1 and {MAX_JOBS}, got {jobs}")
        with dask.config.set(CLUSTER_CONFIG):
            cluster = LocalCluster(n_workers=jobs, threads_per_worker=1, processes=True,
                                   host="127.0.0.1", dashboard_address=None,
                                   silence_logs=logging.ERROR)
        threads = max(1, (os.cpu_count() or 1) // jobs)
        return cls(Client(cluster), cluster, threads, f"{jobs} local worker processes",
                   data_args or {})

    def __enter__(self) -> DaskExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Disconnect; stop the local cluster when this executor started one."""
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()

    def train(self, jobs: Sequence[TrainJob]) -> Iterator[JobResult]:
        """Yield each job's result as it finishes, with one job in flight per worker thread (the
        next is submitted as one ends, before its result is handed on); a task whose worker
        died, or that the cluster lost, yields a failed result."""
        from dask.distributed import as_completed

        waiting = list(jobs)
        slots = max(1, sum(self.client.nthreads().values()))
        futures: dict[Any, TrainJob] = {}

        def submit() -> Any:
            job = waiting.pop(0)
            future = self.client.submit(train_job, job, self.threads, pure=False,
                                        key=f"fmnist-train-{job.name}-{uuid.uuid4().hex[:8]}")
            futures[future] = job
            return future

        running = as_completed([submit() for _ in range(min(slots, len(waiting)))])
        for future in running:
            job = futures.pop(future)
            if waiting:
                running.add(submit())
            try:
                yield future.result()
            except Exception as exc:  # noqa: BLE001 - KilledWorker, lost connection, ...
                yield JobResult(job.name, "?", math.nan, error=(
                    f"the worker training it died or was lost ({type(exc).__name__}: {exc})"))


def start_executor(jobs: int, scheduler: str | None,
                   data_args: dict[str, Any]) -> contextlib.AbstractContextManager:
    """What `compare --jobs/--scheduler` asks for, as a context manager: nothing (None) for one
    job here, else a started `DaskExecutor`. Paths in `data_args` are made absolute: a worker
    process does not share the command's working directory."""
    if scheduler is not None and jobs != 1:
        raise FmnistError("--jobs is for this machine; with --scheduler the cluster's workers "
                          "set the parallelism (drop --jobs)")
    if scheduler is None and jobs == 1:
        return contextlib.nullcontext(None)
    absolute = {k: Path(v).resolve() if isinstance(v, Path) else v for k, v in data_args.items()}
    return DaskExecutor.start(jobs, scheduler, absolute)


def produce_runs(executor: DaskExecutor, wanted: Sequence[tuple[str, dict[str, Any], Path]],
                 seed: int, fingerprint: str,
                 log: Callable[[str], None] = print) -> dict[str, JobResult]:
    """Train each (model, parameters, run folder) of `wanted` on the executor's workers and
    write every returned run folder in place; returns each model's result (`error` set when it
    failed)."""
    if not wanted:
        return {}
    targets = {name: run_dir for name, _, run_dir in wanted}
    jobs = [TrainJob(TrainRequest(name, dict(params), seed, data_args=executor.data_args),
                     fingerprint) for name, params, _ in wanted]
    log(f"training {len(jobs)} model(s) on {executor.where} ...")
    outcomes: dict[str, JobResult] = {}
    for result in executor.train(jobs):
        target = targets[result.name]
        if result.files is not None:
            try:
                unpack_run(result.files, target)
            except (FmnistError, OSError) as exc:
                result.error = str(exc)
            result.files = None  # written: free the memory
        if result.error is not None:
            target.mkdir(parents=True, exist_ok=True)  # the comparison writes error.txt there
            log(f"    {result.name}: FAILED on {result.worker} — {result.error}")
        else:
            log(f"    {result.name}: trained on {result.worker} in {result.seconds:.1f} s")
        outcomes[result.name] = result
    return outcomes
