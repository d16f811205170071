"""Install a run folder as the model shipped inside the package (src/fmnist/weights/default).

    python scripts/ship_model.py RUN_DIR

Copies model.json and model.safetensors (nothing else: no checkpoints, no history), checks the
pair loads, exports the network as model.onnx (checked like `fmnist export`: the same class on
≥ 99.9 % of the official test images, probabilities within 1e-4), and writes the SHA-256 of
model.json and of model.onnx into `fmnist/weights/__init__.py`, which
`fmnist.weights.load_default` verifies before trusting either file. Refuses more than 5 MB.
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
GRAPH = "model.onnx"
MAX_BYTES = 5 * 2**20


def main(run: Path) -> None:
    from fmnist.runs.export import export_onnx
    from fmnist.runs.store import load

    loaded = load(run)  # a damaged or foreign run fails here, before anything is copied
    TARGET.mkdir(parents=True, exist_ok=True)
    graph, report = export_onnx(loaded, TARGET / GRAPH)  # checked before it is kept
    graph.chmod(0o644)  # package data, readable like the other two
    size = sum((run / name).stat().st_size for name in FILES) + graph.stat().st_size
    if size > MAX_BYTES:
        graph.unlink()
        raise SystemExit(f"{run}: {size:,} bytes is over the 5 MB budget for package data")
    for name in FILES:
        shutil.copyfile(run / name, TARGET / name)
    text = INIT.read_text(encoding="utf-8")
    for constant, name in (("MODEL_JSON_SHA256", "model.json"), ("MODEL_ONNX_SHA256", GRAPH)):
        digest = hashlib.sha256((TARGET / name).read_bytes()).hexdigest()
        text = re.sub(rf'{constant} = "[^"]*"', f'{constant} = "{digest}"', text)
        print(f"{name} SHA-256 {digest}")
    INIT.write_text(text, encoding="utf-8")
    print(f"shipped {run} ({size:,} bytes); ONNX check {report}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(Path(sys.argv[1]))
