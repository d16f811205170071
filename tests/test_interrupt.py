"""Ctrl-C, for real (issue 11 #5 #24): a subprocess is sent SIGINT while a net trains.

`fmnist train` must exit 130 with its run marked `interrupted` (and `--resume` must then count
the whole training time); `fmnist compare` must stop, say what it skipped, and the next compare
must continue the interrupted model rather than reuse it as finished.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from fmnist.evaluation.compare import PRESETS

SMALL_CNN = ("--train-size", "2000")
QUICK_CNN_EPOCHS = PRESETS["quick"].overrides["cnn"]["epochs"]  # what `compare` trains it for


def _start(*args: str) -> subprocess.Popen:
    """`python -m fmnist ARGS` with SIGINT at its default disposition: a suite started in the
    background of a non-interactive shell (`pytest &`) inherits SIGINT ignored, Python then
    installs no KeyboardInterrupt handler, and the child would rightly train on."""
    return subprocess.Popen([sys.executable, "-m", "fmnist", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env={**os.environ},
                            preexec_fn=_default_sigint)


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _interrupt_after(process: subprocess.Popen, marker: str, timeout: float = 240,
                     delay: float = 0.0) -> str:
    """Read the process's output until `marker` appears, wait `delay` seconds, send SIGINT,
    return all its output."""
    lines: list[str] = []
    seen = threading.Event()

    def pump() -> None:
        for line in process.stdout:
            lines.append(line)
            if marker in line:
                seen.set()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        assert seen.wait(timeout), "".join(lines)
        time.sleep(delay)
        process.send_signal(signal.SIGINT)  # during the next epoch
        process.wait(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    reader.join(timeout=10)
    return "".join(lines)


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fmnist", *args], capture_output=True,
                          text=True, timeout=300)


@pytest.mark.usefixtures("fmnist_train")
def test_interrupted_train_exits_130_and_resume_counts_all_training(tmp_path: Path) -> None:
    process = _start("train", "cnn", "--epochs", "4", *SMALL_CNN, "--set", "width=8",
                     "--out", str(tmp_path))
    output = _interrupt_after(process, "epoch 1/4:", delay=0.5)  # past epoch 1's checkpoint
    assert process.returncode == 130, output
    assert "interrupted" in output and "Traceback" not in output
    (run_dir,) = tmp_path.iterdir()
    request = json.loads((run_dir / "run.json").read_text())
    assert request["status"] == "interrupted"
    first_session = request["fit_seconds"]
    assert first_session > 0
    trained_before = len(json.loads((run_dir / "history.json").read_text())["history"])

    resumed = _run("train", "--resume", str(run_dir))
    assert resumed.returncode == 0, resumed.stderr
    done = json.loads((run_dir / "run.json").read_text())
    meta = json.loads((run_dir / "model.json").read_text())
    assert done["status"] == "done" == meta["status"]
    history = json.loads((run_dir / "history.json").read_text())["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3, 4]
    # The whole training: the interrupted session's seconds plus the resumed epochs'.
    resumed_epochs = sum(h["seconds"] for h in history[trained_before:])
    assert meta["metrics"]["fit_seconds"] >= first_session + 0.9 * resumed_epochs
    assert done["fit_seconds"] == pytest.approx(meta["metrics"]["fit_seconds"])


@pytest.mark.usefixtures("fmnist_train")
def test_interrupted_compare_stops_and_is_continued_not_reused(tmp_path: Path) -> None:
    args = ("compare", "--models", "cnn,bayes-1", *SMALL_CNN, "--no-explore",
            "--out", str(tmp_path))
    process = _start(*args)
    output = _interrupt_after(process, f"epoch 1/{QUICK_CNN_EPOCHS}:")
    assert process.returncode == 130, output
    assert "INTERRUPTED" in output and "not run: bayes-1" in output, output
    assert "Traceback" not in output
    assert not (tmp_path / "results.json").exists()  # no report of a half comparison
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert run_dir.name.startswith("cnn-")
    assert json.loads((run_dir / "run.json").read_text())["status"] == "interrupted"

    again = _run(*args)
    assert again.returncode == 0, again.stderr
    results = json.loads((tmp_path / "results.json").read_text())
    cnn = next(r for r in results["leaderboard"] if r["model"] == "cnn")
    assert cnn["status"] == "ok" and cnn["reused"] is False
    assert json.loads((run_dir / "run.json").read_text())["status"] == "done"
    history = json.loads((run_dir / "history.json").read_text())["history"]
    assert [h["epoch"] for h in history] == list(range(1, QUICK_CNN_EPOCHS + 1))
