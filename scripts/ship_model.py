"""Install a run folder as the model shipped inside the package (src/fmnist/weights/default).

    python scripts/ship_model.py RUN_DIR

Copies model.json and model.safetensors (nothing else: no checkpoints, no history), checks the
pair loads, and writes model.json's SHA-256 into `fmnist/weights/__init__.py`, which
`fmnist.weights.load_default` verifies before trusting the file. Refuses a folder over 5 MB.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "src" / "fmnist" / "weights" / "default"
INIT = ROOT / "src" / "fmnist" / "weights" / "__init__.py"
FILES = ("model.json", "model.safetensors")
MAX_BYTES = 5 * 2**20


def main(run: Path) -> None:
    from fmnist.runs.store import load

    load(run)  # a damaged or foreign run fails here, before anything is copied
    size = sum((run / name).stat().st_size for name in FILES)
    if size > MAX_BYTES:
        raise SystemExit(f"{run}: {size:,} bytes is over the 5 MB budget for package data")
    TARGET.mkdir(parents=True, exist_ok=True)
    for name in FILES:
        shutil.copyfile(run / name, TARGET / name)
    digest = hashlib.sha256((TARGET / "model.json").read_bytes()).hexdigest()
    text = re.sub(r'MODEL_JSON_SHA256 = "[^"]*"', f'MODEL_JSON_SHA256 = "{digest}"',
                  INIT.read_text(encoding="utf-8"))
    INIT.write_text(text, encoding="utf-8")
    print(f"shipped {run} ({size:,} bytes); model.json SHA-256 {digest}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(Path(sys.argv[1]))
