"""benchmarks/speedrun.py's ablation mode, run for real on a tiny subset (seconds on 2 cores)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fmnist.models import create_model

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.data  # the script loads the official dataset itself
def test_ablation_rows_switch_one_ingredient_off_and_rescore_the_views(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "speedrun.py"), "--recipe", "cnn",
         "--ablate", "full,lookahead,tta,translate,altflip", "--seeds", "1", "--epochs", "1",
         "--max-train", "300", "--max-test", "200", "--set", "width=4", "--device", "cpu",
         "--out-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
        env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in (tmp_path / "speedrun.jsonl").read_text().splitlines()]
    rows = {r["recipe"]: r for r in lines if r.get("phase") == "summary"}
    # The `tta` row is not logged as a run of its own: it lives in the full run's re-scores.
    assert set(rows) == {"cnn", "cnn - lookahead", "cnn - altflip"}
    # `cnn` trains without shifts: its translate row is skipped, not a copy of the full row.
    assert [r["ablate"] for r in lines if r.get("phase") == "skipped"] == ["translate"]
    assert rows["cnn - altflip"]["overrides"]["augment"] == "flip"
    assert "lookahead" not in rows["cnn"]["overrides"]  # the registry default: on
    assert create_model("cnn").lookahead is True
    assert rows["cnn - lookahead"]["overrides"]["lookahead"] is False
    (full_run,) = [r for r in lines if r.get("phase") == "run" and r["recipe"] == "cnn"]
    assert 0.0 <= full_run["tta_none"] <= 1.0 and full_run["predict_img_s"] > 0
    table = (tmp_path / "speedrun.md").read_text()
    assert "Δ acc vs full" in table
    tta_row = next(line for line in table.splitlines() if line.startswith("| cnn - tta |"))
    assert f"{full_run['tta_none']:.4f} ± 0.0000" in tta_row
