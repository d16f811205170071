"""A plain `pip install fmnist` (no extras) trains, compares, evaluates and predicts; `serve` and
`export` then say which extra to install. The extras' packages are made unimportable in a child
interpreter (`sys.modules[name] = None` is how Python marks a module as absent)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fmnist.extras import EXTRAS

DRIVER = """
import sys
for name in {blocked!r}:
    sys.modules[name] = None
from fmnist.cli import app
from fmnist.errors import FmnistError
try:
    app({args!r}, standalone_mode=False)
except FmnistError as exc:
    print("error:", exc)
    sys.exit(2)
print("loaded:", sorted(m for m in {blocked!r} if sys.modules.get(m) is not None))
"""


def _fmnist_without_extras(*args: str) -> subprocess.CompletedProcess:
    blocked = [m for modules in EXTRAS.values() for m in modules]
    code = DRIVER.format(blocked=blocked, args=list(args))
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300)


@pytest.mark.data
def test_train_compare_evaluate_predict_need_no_extra(tmp_path: Path) -> None:
    train = _fmnist_without_extras("train", "bayes-1", "--train-size", "300", "--out",
                                   str(tmp_path / "runs"))
    assert train.returncode == 0, train.stderr
    (run,) = (tmp_path / "runs").iterdir()
    for args in (["evaluate", str(run)],
                 ["compare", "--models", "bayes-1", "--train-size", "300", "--no-explore",
                  "--out", str(tmp_path / "cmp")]):
        result = _fmnist_without_extras(*args)
        assert result.returncode == 0, result.stderr
    images = tmp_path / "x.npy"
    np.save(images, np.zeros((2, 28, 28), dtype=np.uint8))
    result = _fmnist_without_extras("predict", "--json", "--run", str(run), str(images))
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout[:result.stdout.rindex("}") + 1])
    assert len(document["results"]) == 2


@pytest.mark.parametrize(("command", "extra"), [("serve", "serve"), ("export", "export")])
def test_serve_and_export_name_their_extra(tmp_path: Path, command: str, extra: str) -> None:
    result = _fmnist_without_extras(command, str(tmp_path))
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"pip install 'fmnist[{extra}]'" in result.stdout
    assert "Traceback" not in result.stderr
