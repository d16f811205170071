"""The package's top-level API: every advertised name resolves, and the CLI lists every command."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

import fmnist


@pytest.mark.parametrize("name", fmnist.__all__)
def test_every_exported_name_resolves(name: str) -> None:
    # Importing every submodule first: a submodule named like a function must not shadow it.
    import fmnist.evaluation.compare  # noqa: E401, F401
    import fmnist.evaluation.metrics
    import fmnist.predict
    import fmnist.reporting.explore

    value = getattr(fmnist, name)
    assert name == "CLASS_NAMES" or (callable(value) and not inspect.ismodule(value))


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        fmnist.nope  # noqa: B018


def test_cli_help_lists_every_command() -> None:
    result = subprocess.run([sys.executable, "-m", "fmnist", "--help"], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    for command in ("data", "explore", "models", "train", "evaluate", "compare", "predict",
                    "export", "serve"):
        assert command in result.stdout


def test_unknown_model_is_a_clear_error() -> None:
    result = subprocess.run([sys.executable, "-m", "fmnist", "train", "no-such-model"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "unknown model 'no-such-model'" in result.stderr
    assert "Traceback" not in result.stderr
