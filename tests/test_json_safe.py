"""`fmnist.fileio.json_safe`: the one conversion of settings and results to plain JSON, with the
caller's policy for anything else (text, refuse, keep). Fast tier."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fmnist.fileio import json_safe


def test_numpy_tuples_paths_and_keys_become_plain_json() -> None:
    value = {1: (np.int64(3), np.float32(0.5)), "a": np.arange(3).reshape(1, 3),
             "p": Path("/x/y"), "ok": [None, True, "s"]}
    plain = json_safe(value)
    assert plain == {"1": [3, 0.5], "a": [[0, 1, 2]], "p": "/x/y", "ok": [None, True, "s"]}
    assert json.loads(json.dumps(plain)) == plain


def test_other_values_follow_the_callers_policy() -> None:
    thing = object()
    assert json_safe({"f": thing}) == {"f": str(thing)}  # a record of settings: its text
    assert json_safe([thing], lambda kept: kept) == [thing]  # kept for a later check

    def refuse(value: object) -> object:
        raise TypeError(f"cannot store {value!r}")

    with pytest.raises(TypeError, match="cannot store"):
        json_safe({"nested": [1, {"x": thing}]}, refuse)
