"""More than one machine, with real components: a PostgreSQL server (Debian's `postgresql`,
started here) holding one Optuna study that two `fmnist tune` processes work on at once, and a
Dask LocalCluster of two worker processes running a comparison that must equal the local one —
including a worker that dies in the middle."""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest

from fmnist.errors import FmnistError
from fmnist.evaluation.compare import data_fingerprint
from fmnist.evaluation.executors import TrainJob, pack_run, train_job, unpack_run
from fmnist.runs.request import TrainRequest
from fmnist.tuning.objective import accepted_params
from fmnist.tuning.spaces import build_space
from fmnist.tuning.tune import tune

FMNIST = [sys.executable, "-m", "fmnist"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    """A throw-away PostgreSQL server on 127.0.0.1 (initdb into a temporary folder, trust
    authentication), run as an unprivileged user when the tests run as root; stopped after."""
    initdbs = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not initdbs:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed; .ci/run installs Debian's postgresql")
        pytest.skip("PostgreSQL server binaries are not installed (apt-get install postgresql)")
    bindir = initdbs[-1].parent
    root = Path(tempfile.mkdtemp(prefix="fmnist-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root
        user = "postgres" if "postgres" in {p.pw_name for p in pwd.getpwall()} else "nobody"
        shutil.chown(root, user)
        as_user = ["runuser", "-u", user, "--"]
    port, data = _free_port(), root / "data"
    subprocess.run([*as_user, bindir / "initdb", "-D", data, "-U", "postgres", "--auth=trust",
                    "-E", "UTF8"], check=True, capture_output=True)
    subprocess.run([*as_user, bindir / "pg_ctl", "-D", data, "-l", root / "server.log", "-w",
                    "-t", "60", "-o", f"-h 127.0.0.1 -p {port} -k {root}", "start"],
                   check=True, capture_output=True)
    try:
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres",
                             autocommit=True) as conn:
            conn.execute("CREATE DATABASE fmnist")
        yield f"postgresql://postgres@127.0.0.1:{port}/fmnist"
    finally:
        subprocess.run([*as_user, bindir / "pg_ctl", "-D", data, "-m", "immediate", "-w",
                        "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def test_two_tune_workers_share_one_postgresql_study(postgres, tmp_path):
    common = ["tune", "random-forest", "--trials", "6", "--train-size", "600", "--storage",
              postgres, "--study-name", "shared", "--no-retrain"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    workers = [subprocess.Popen([*FMNIST, *common, "--out", str(tmp_path / f"w{i}")], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for i in range(2)]
    outputs = [w.communicate(timeout=240) for w in workers]
    for w, (_, err) in zip(workers, outputs, strict=True):
        assert w.returncode == 0, err[-2000:]
    ran = [int(re.search(r"\((\d+) run by this worker\)", out).group(1)) for out, _ in outputs]
    trials = optuna.load_study(study_name="shared", storage=postgres).get_trials()
    assert sorted(t.number for t in trials) == list(range(len(trials)))  # no duplicates
    assert sum(ran) == len(trials) and 6 <= len(trials) <= 7  # each finishes its last trial
    assert all(n >= 1 for n in ran)
    assert len({t.user_attrs["worker"] for t in trials}) == 2
    # Anyone may then finish the study: no trial left to run, the best is retrained once.
    train, test, _ = TrainRequest("random-forest", data_args={"train_size": 600}).load_data()
    space = build_space("random-forest", None, [], {},
                        sorted(accepted_params("random-forest", {})))
    result = tune("random-forest", train, test.head(n_per_class=20), tmp_path / "final",
                  space=space, trials=6, storage=postgres, study_name="shared",
                  log=lambda _: None)
    assert result.ran == 0 and result.final["test_accuracy"] > 0.5
    assert "postgres@127.0.0.1" in result.storage


def test_unreachable_storage_is_one_clear_line(tmp_path):
    with pytest.raises(FmnistError, match="cannot open the study storage .*:\\*\\*\\*@"):
        from fmnist.tuning.study import open_storage

        open_storage(f"postgresql://u:secret@127.0.0.1:{_free_port()}/x")


def test_a_worker_refuses_data_that_differ():
    request = TrainRequest("bayes-1", data_args={"train_size": 200})
    train, _, _ = request.load_data()
    result = train_job(TrainJob(request, data_fingerprint(train.head(n=150, seed=1))), 1)
    assert result.files is None and "differ" in result.error
    ok = train_job(TrainJob(request, data_fingerprint(train)), threads=1)
    assert ok.error is None and {"run.json", "model.json"} <= set(ok.files)


@pytest.mark.parametrize("name", ["../escape", "/etc/passwd", "a/../../b", "", "a\\..\\b"])
def test_returned_run_folders_cannot_write_outside(tmp_path, name):
    target = tmp_path / "runs" / "m"
    target.parent.mkdir()
    with pytest.raises(FmnistError, match="refused"):
        unpack_run({"run.json": b"{}", name: b"x"}, target)
    assert not target.exists() and list(target.parent.iterdir()) == []


def test_pack_and_unpack_round_trip(tmp_path):
    src = tmp_path / "src"
    (src / "checkpoints").mkdir(parents=True)
    (src / "checkpoints" / "checkpoint.pt").write_bytes(b"big")
    (src / "sub").mkdir()
    (src / "run.json").write_text("{}")
    (src / "sub" / "f.bin").write_bytes(b"\x00\x01")
    files = pack_run(src)
    assert files == {"run.json": b"{}", "sub/f.bin": b"\x00\x01"}
    out = unpack_run(files, tmp_path / "dst")
    assert (out / "sub" / "f.bin").read_bytes() == b"\x00\x01"


DYING = "dies-for-tests"


@pytest.fixture(scope="module")
def both_ways(tmp_path_factory):
    """The same 3-model comparison run here and on a LocalCluster of 2 worker processes, the
    latter with a 4th model whose construction kills its worker process (os._exit, as an
    out-of-memory kill would)."""
    from fmnist.evaluation.compare import compare
    from fmnist.evaluation.executors import DaskExecutor
    from fmnist.models.registry import ModelSpec, register, registered

    data_args = {"train_size": 600}
    train, test, _ = TrainRequest("knn", data_args=data_args).load_data()
    test = test.head(n_per_class=50, seed=0)
    models = ["knn", "decision-tree", "random-forest"]
    local = compare(train, test, tmp_path_factory.mktemp("local"), preset="quick", models=models,
                    with_explore=False, log=lambda _: None)
    dying = ModelSpec(DYING, "classical", "kills its worker", build="os:_exit",
                      defaults={"status": 3})
    with registered(dying), DaskExecutor.start(jobs=2, data_args=data_args) as executor:
        executor.client.run(register, dying)  # the workers' registries too
        remote = compare(train, test, tmp_path_factory.mktemp("dask"), preset="quick",
                         models=[*models, DYING], with_explore=False, executor=executor,
                         log=lambda _: None)
    return local, remote


def test_a_dask_comparison_equals_the_local_one(both_ways):
    local, remote = both_ways
    expected = {r.name: r.evaluation.accuracy for r in local.results}
    got = {r.name: r.evaluation.accuracy for r in remote.results if r.ok}
    assert got == expected and len(got) == 3
    for r in remote.results:
        if r.ok:
            assert not r.reused and (r.run_dir / "model.json").is_file()
            assert not (r.run_dir / "checkpoints").exists()
    assert (remote.out_dir / "report.html").is_file() and remote.best.name == local.best.name


def test_a_worker_that_dies_fails_only_its_model(both_ways):
    _, remote = both_ways
    dead = next(r for r in remote.results if r.name == DYING)
    assert not dead.ok and "died" in dead.error
    assert (dead.run_dir / "error.txt").is_file()
    assert [r.ok for r in remote.results] == [True, True, True, False]  # failed ranked last


def test_a_model_that_kills_the_only_worker_takes_no_waiting_model_with_it(tmp_path):
    """One worker, the killer first: the models after it must not be waiting on its worker
    (they were, when every model was submitted at once, and failed with it)."""
    from fmnist.evaluation.compare import compare
    from fmnist.evaluation.executors import DaskExecutor
    from fmnist.models.registry import ModelSpec, register, registered

    data_args = {"train_size": 300}
    train, test, _ = TrainRequest("knn", data_args=data_args).load_data()
    dying = ModelSpec(DYING, "classical", "kills its worker", build="os:_exit",
                      defaults={"status": 3})
    with registered(dying), DaskExecutor.start(jobs=1, data_args=data_args) as executor:
        executor.client.run(register, dying)
        result = compare(train, test.head(n_per_class=20, seed=0), tmp_path, preset="quick",
                         models=[DYING, "bayes-1", "bayes-2"], with_explore=False,
                         executor=executor, log=lambda _: None)
    assert {r.name: r.ok for r in result.results} == {"bayes-1": True, "bayes-2": True,
                                                       DYING: False}


def test_jobs_and_scheduler_are_not_combined():
    from fmnist.evaluation.executors import start_executor

    with pytest.raises(FmnistError, match="drop --jobs"):
        start_executor(2, "tcp://127.0.0.1:1", {})
    with start_executor(1, None, {}) as executor:
        assert executor is None  # one job here: the comparison trains in its own process
