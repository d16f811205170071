"""Where one `/predict` request's CPU time goes inside `fmnist serve`, stage by stage, in process.

The load test (`serve_load.py`) gives the end-to-end numbers; this script times the server's own
steps for one 28×28 JSON request on real test images, with no sockets, so each number is the
step alone: JSON decode, the strict schema check, conversion to uint8, the model's forward pass
per image at each batch size the micro-batcher makes (the model's own `predict_proba` and, where
they can be built, the ONNX Runtime backend and its int8 copy, with each one's accuracy on the
official test set), and the answer (top-k, the PNG of the image, the
JSON text). What the HTTP layer (h11, Starlette, FastAPI) adds is measured by sampling the real
server under load (`py-spy record --pid ...`, see benchmarks/RESULTS.md).

    flock /tmp/fmnist-cpu.lock .venv/bin/python benchmarks/serve_stages.py --run RUN
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np


def per_call_us(fn: Callable[[], object], seconds: float = 0.5) -> float:
    """Median over 5 rounds of the mean time of one call, in microseconds."""
    fn()
    rounds = []
    for _ in range(5):
        n, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < seconds / 5:
            fn()
            n += 1
        rounds.append(elapsed / n * 1e6)
    return float(np.median(rounds))


def request_stages(served, images: np.ndarray) -> dict[str, float]:
    """µs per request for each step of a single-image JSON request, before and after the model."""
    from starlette.responses import JSONResponse

    from fmnist.serve.app import describe, png_base64
    from fmnist.serve.inputs import parse_json_images

    body = json.dumps({"image": images[0].tolist()}).encode()
    doc = json.loads(body)
    image = parse_json_images(body, (28, 28), 16)
    probs = np.full((1, len(served.class_names)), 0.1)
    answer = {"model": "m", "predictions": [{**describe("array[0]", probs[0], served.class_names,
                                                        3), "image_png": png_base64(image[0])}]}
    from fmnist.images.arrays import as_uint8_images
    from fmnist.serve import inputs

    return {
        "json_decode": per_call_us(lambda: inputs._load_json(body)),
        "schema_check": per_call_us(lambda: inputs._check_image(doc["image"], 0, 28, 28)),
        "to_uint8": per_call_us(lambda: as_uint8_images(np.array([doc["image"]],
                                                                 dtype=np.float64))),
        "parse_json_images_total": per_call_us(lambda: parse_json_images(body, (28, 28), 16)),
        "describe_top_k": per_call_us(lambda: describe("array[0]", probs[0],
                                                       served.class_names, 3)),
        "png_base64": per_call_us(lambda: png_base64(image[0])),
        "response_render": per_call_us(lambda: JSONResponse(answer)),
    }


def forward_stages(backends: dict[str, Callable], images: np.ndarray,
                   sizes: tuple[int, ...]) -> dict[str, dict[int, float]]:
    """µs per image of each backend's forward pass at each batch size."""
    return {name: {b: per_call_us(lambda fn=fn, b=b: fn(images[:b])) / b for b in sizes}
            for name, fn in backends.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, help="run folder (default: the shipped model)")
    parser.add_argument("--threads", type=int, default=1, help="inference threads (as serve)")
    parser.add_argument("--sizes", default="1,2,4,8,16,32,64")
    parser.add_argument("--json", type=Path, help="also append the results here as one line")
    args = parser.parse_args()

    import torch

    from fmnist.data import load_fashion_mnist
    from fmnist.serve.app import load_served
    from fmnist.serve.backends import make_backend
    from fmnist.weights import load_run_or_default

    torch.set_num_threads(args.threads)
    run = load_run_or_default(args.run)
    served = load_served(run)
    images = load_fashion_mnist("test").images[:64]
    sizes = tuple(int(s) for s in args.sizes.split(","))
    backends = {"native": run.model.predict_proba}
    onnx = make_backend(run.model, served.image_shape, "auto", args.threads)
    if onnx.name == "onnx":
        backends["onnx"] = onnx.predict_proba
        backends["int8"] = make_backend(run.model, served.image_shape, "int8",
                                        args.threads).predict_proba
    test = load_fashion_mnist("test")
    accuracy = {name: float(np.mean(np.concatenate([fn(test.images[i:i + 500]).argmax(1)
                                                    for i in range(0, len(test.images), 500)])
                                    == test.labels))
                for name, fn in backends.items() if name != "native"}  # native ≡ onnx (1e-4)
    result = {"model": run.meta.get("model"), "run": str(args.run or "shipped default"),
              "threads": args.threads, "request_us": request_stages(served, images),
              "forward_us_per_image": forward_stages(backends, images, sizes),
              "test_accuracy": accuracy}
    for stage, us in result["request_us"].items():
        print(f"{stage:>24}: {us:8.1f} µs")
    print("forward µs per image at batch " + ", ".join(map(str, sizes)))
    for name, row in result["forward_us_per_image"].items():
        print(f"{name:>24}: " + ", ".join(f"{us:.0f}" for us in row.values()))
    for name, acc in accuracy.items():
        print(f"{name:>24}: test accuracy {acc:.4f}")
    if args.json:
        with args.json.open("a") as fh:
            fh.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    sys.exit(main())
