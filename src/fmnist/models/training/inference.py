"""Device placement, precision and prediction (with test-time augmentation) for torch nets.

Layout: channels_last everywhere — oneDNN's fast layout on CPU (measured) and the tensor-core
layout on a GPU. Precision: bf16 autocast on CUDA (no loss scaling needed), fp32 elsewhere;
training on a CPU may also run its steps in bf16 (`cpu_bf16`, on CPUs that compute bf16
natively), while prediction on a CPU stays fp32 — so a reloaded model, its ONNX export and the
server compute the same outputs whatever the training precision was.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

TTA_MODES = ("none", "flip", "flip-shift")
"""Test-time views: none; the image and its mirror; those two plus both shifted by (−1, −1) and
(+1, +1) px (airbench's level 2: weights 1/2 for the unshifted pair, 1/4 per shifted pair)."""


def place(net: nn.Module, device: torch.device) -> nn.Module:
    """Move `net` to `device` in channels_last."""
    return net.to(device=device, memory_format=torch.channels_last)


def to_input(xb: torch.Tensor) -> torch.Tensor:
    """A float, channels_last batch from raw uint8 (or float) pixels already on the device."""
    return xb.float().contiguous(memory_format=torch.channels_last)


def autocast(device: torch.device, cpu_bf16: bool = False) -> torch.autocast:
    """bf16 autocast on CUDA (tensor cores, no loss scaling needed); on a CPU only with
    `cpu_bf16` (training steps); plain fp32 otherwise. No cast cache on CUDA: a CUDA graph
    records the weights' casts (`training/graphs.py`; `make_graphed_callables` refuses the
    cache), and each weight is cast once a forward pass anyway."""
    if device.type == "cpu":
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=cpu_bf16)
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda",
                          cache_enabled=False)


def native_cpu_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AVX512-BF16 or AMX, as oneDNN reports):
    there bf16 training steps ran 1.5–1.6× faster than fp32 (speednet-20, 2-core Zen 4,
    benchmarks/RESULTS.md); elsewhere bf16 is emulated and slower than fp32."""
    return bool(torch.backends.mkldnn.is_available()
                and torch.ops.mkldnn._is_mkldnn_bf16_supported())


def tta_views(x: torch.Tensor, mode: str) -> list[tuple[torch.Tensor, float]]:
    """The views of `mode` with their weights (summing to 1) for a raw-pixel batch `x`."""
    if mode == "none":
        return [(x, 1.0)]
    views = [(x, 0.5), (x.flip(-1), 0.5)]
    if mode == "flip-shift":
        views = [(v, w / 2) for v, w in views]
        for d in (-1, 1):
            moved = _moved(x, d)
            views += [(moved, 0.125), (moved.flip(-1), 0.125)]
    return views


def _moved(x: torch.Tensor, d: int) -> torch.Tensor:
    """The whole batch moved by (d, d) px, filled with black: pad and slice, so an ONNX export
    traces it for any batch size (per-image index tensors would fix the traced batch)."""
    h, w = x.shape[-2:]
    return F.pad(x, (1, 1, 1, 1))[..., 1 - d:1 - d + h, 1 - d:1 - d + w]


def tta_logits(net: nn.Module, x: torch.Tensor, mode: str) -> torch.Tensor:
    """Weighted mean of the views' log-softmax (plain logits for `none`), in float32. Shared by
    prediction and ONNX export so both compute the same function."""
    if mode == "none":
        return net(x).float()
    out = None
    for view, weight in tta_views(x, mode):
        part = net(view).float().log_softmax(1) * weight
        out = part if out is None else out + part
    return out


@torch.inference_mode()
def predict_logits(net: nn.Module, x_u8: torch.Tensor, device: torch.device,
                   batch_size: int = 256, tta: str = "none") -> torch.Tensor:
    """Softmax-ready logits (float32, CPU) for uint8 images `[N, 1, H, W]`, in big batches.
    Batches stay on the device and come back to the host in one copy at the end."""
    net.eval()
    if len(x_u8) == 0:
        return torch.zeros(0, 0)
    outs = []
    with autocast(device):
        for start in range(0, len(x_u8), batch_size):
            xb = to_input(x_u8[start:start + batch_size].to(device, non_blocking=True))
            outs.append(tta_logits(net, xb, mode=tta))
    return torch.cat(outs).cpu()
