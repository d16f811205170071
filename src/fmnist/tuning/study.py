"""An Optuna study in a database: opened or joined, checked, and run to a target trial count.

The database is the only thing workers share. SQLite (a file in the output folder) serves one
machine; a PostgreSQL URL lets any number of `fmnist tune` processes on any machines join one
study by name. Every study records the protocol it was created with (model, space, fixed
parameters, validation fraction, seed, and a SHA-256 of the training data): a worker whose
settings or data differ is refused, so a study never mixes incomparable trials.

`--trials N` is the study's target, not one worker's share: each worker stops once the study
holds N counted trials — complete, pruned, or failed by an error in the trial (so a broken
setting cannot loop forever). A trial cut short by Ctrl-C or by its worker's death is not
counted: re-running the same command resumes an interrupted study with the trials it still
owes, and W workers started together finish N trials between them (at most W−1 more: each
finishes the trial it is running). A dead worker's trial stays RUNNING until heartbeats mark it
failed once the grace period has passed.
"""

from __future__ import annotations

import random
import time
import warnings
import zlib
from collections.abc import Mapping
from typing import Any

import optuna
from optuna.storages import RDBStorage
from optuna.trial import TrialState

from fmnist.errors import FmnistError
from fmnist.tuning.objective import WORKER

PROTOCOL_KEY = "fmnist"
PROTOCOL_FORMAT = 1
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
HEARTBEAT_S = 20
GRACE_S = 90
SCHEMA_RETRIES = 3
STARTUP_TRIALS = 8  # random trials before TPE models the results (Optuna's default is 10)
PRUNERS = ("median", "asha", "none")
SCHEMES = ("sqlite", "postgresql", "postgresql+psycopg")  # SQLAlchemy 2.1: psycopg 3

optuna.logging.set_verbosity(optuna.logging.WARNING)  # we print one line per trial ourselves


def redact(url: str) -> str:
    """The URL with any password hidden (it goes into messages, reports and JSON)."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL is reported by open_storage
        return url.split("@")[-1]


def check_url(url: str) -> str:
    """The URL's scheme when it is one we support (checked before any data is loaded)."""
    scheme = url.split(":", 1)[0].lower()
    if scheme not in SCHEMES:
        raise FmnistError(f"storage {redact(url)!r}: use sqlite:///FILE or "
                          "postgresql://USER:PASSWORD@HOST[:PORT]/DATABASE")
    return scheme


def open_storage(url: str) -> RDBStorage:
    """An Optuna RDB storage with heartbeats, or one clear line on a bad or unreachable URL."""
    scheme = check_url(url)
    engine_kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if scheme == "sqlite":
        engine_kwargs["connect_args"] = {"timeout": 60}  # several local workers share a file
    try:
        return _create_storage(url, engine_kwargs)
    except Exception as exc:  # noqa: BLE001 - SQLAlchemy/driver errors vary; say which URL
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if isinstance(exc, ImportError):
            first += " (PostgreSQL needs: pip install 'fmnist[distributed]')"
        raise FmnistError(f"cannot open the study storage {redact(url)}: {first}") from exc


def _create_storage(url: str, engine_kwargs: dict[str, Any]) -> RDBStorage:
    """RDBStorage, retried when another worker is creating Optuna's tables in the same empty
    database at the same moment (PostgreSQL then reports a duplicate type or table)."""
    from sqlalchemy.exc import IntegrityError, ProgrammingError

    for attempt in range(SCHEMA_RETRIES + 1):
        try:
            with warnings.catch_warnings():  # heartbeats are marked experimental
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return RDBStorage(url, engine_kwargs=engine_kwargs,
                                  heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S)
        except (IntegrityError, ProgrammingError):
            if attempt == SCHEMA_RETRIES:
                raise
            time.sleep(0.5 + random.random())  # let the other worker finish its schema
    raise AssertionError("unreachable")


def make_pruner(name: str) -> optuna.pruners.BasePruner:
    """median: stop a trial whose epoch-k validation accuracy is below the median of earlier
    trials at epoch k (once 4 trials are complete, from epoch 2 on: the first epoch says little);
    asha: asynchronous successive halving (keeps the top third at each rung); none: never."""
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=4, n_warmup_steps=2)
    if name == "asha":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise FmnistError(f"unknown pruner {name!r}; use {', '.join(PRUNERS)}")


def sampler_seed(seed: int, n_existing: int, shared: bool) -> int:
    """TPE's seed: the study seed for a fresh local study (reproducible); mixed with the number
    of trials already there (a resumed study does not replay its first random trials) and, in a
    shared database, with this worker's host and process (two workers started together must not
    draw the same points)."""
    key = f"{seed}:{n_existing}:{WORKER}" if shared else f"{seed}:{n_existing}"
    return seed if (n_existing == 0 and not shared) else zlib.crc32(key.encode())


def open_study(storage: RDBStorage, name: str, protocol: Mapping[str, Any], *, seed: int,
               pruner: str, shared: bool) -> optuna.Study:
    """Create the study or join the existing one of that name, after checking that it was
    created with the same protocol (else a user error naming what differs)."""
    pruner_obj = make_pruner(pruner)
    try:
        study = optuna.create_study(storage=storage, study_name=name, direction="maximize",
                                    load_if_exists=True)
    except Exception as exc:  # noqa: BLE001 - database errors: one line
        raise FmnistError(f"cannot open study {name!r}: {exc}") from exc
    if study.direction != optuna.study.StudyDirection.MAXIMIZE:
        raise FmnistError(f"study {name!r} exists and minimises; use another --study-name")
    recorded = study.user_attrs.get(PROTOCOL_KEY)
    wanted = {"format": PROTOCOL_FORMAT, **protocol}
    if recorded is None:
        study.set_user_attr(PROTOCOL_KEY, wanted)
    elif recorded != wanted:
        differ = sorted(k for k in set(recorded) | set(wanted)
                        if recorded.get(k) != wanted.get(k))
        raise FmnistError(f"study {name!r} was created with other settings ({', '.join(differ)} "
                          "differ); use the same model, space, data, seed and validation "
                          "fraction, or another --study-name")
    n_existing = len(study.get_trials(deepcopy=False))
    with warnings.catch_warnings():  # multivariate TPE is still marked experimental
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.TPESampler(seed=sampler_seed(seed, n_existing, shared),
                                             n_startup_trials=STARTUP_TRIALS,
                                             multivariate=True, constant_liar=True)
    return optuna.load_study(study_name=name, storage=storage, sampler=sampler,
                             pruner=pruner_obj)


def finished_count(study: optuna.Study) -> int:
    """Trials that count toward `--trials`: complete, pruned, or failed by an error (the
    objective records it); interrupted or abandoned trials do not count."""
    return sum(1 for t in study.get_trials(deepcopy=False, states=FINISHED)
               if t.state != TrialState.FAIL or "error" in t.user_attrs)


def run_trials(study: optuna.Study, objective: Any, target: int, timeout: float | None) -> int:
    """Run trials until the study holds `target` finished ones or `timeout` seconds have
    passed (a running trial finishes first); returns how many this worker ran."""
    remaining = target - finished_count(study)
    if remaining <= 0:
        return 0
    ran: list[int] = []

    def after_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        ran.append(trial.number)
        if finished_count(study) >= target:  # other workers' trials count too
            study.stop()

    study.optimize(objective, n_trials=remaining, timeout=timeout, catch=(Exception,),
                   callbacks=[after_trial], gc_after_trial=True)
    return len(ran)
