"""Optimiser and learning-rate schedule: pure functions of the settings and the step.

The learning rate at a step depends on nothing but (schedule, warmup, step, total), so a resumed
run needs no scheduler state. Parameter groups follow airbench (KellerJordan/cifar10-airbench):
weight decay on weight matrices/kernels only (never biases or norm scales), and norm-layer
biases may get a larger learning rate (`bn_bias_lr`, a multiplier: airbench trains them at 64×,
since with BN weights frozen the biases are the only per-channel knobs and move slowly).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "linear", "cosine", "onecycle", "triangular")


def lr_factor(schedule: str, warmup: float, step: int, total: int) -> float:
    """The learning-rate multiplier at `step` of `total`.

    linear/cosine: linear warm-up over the first `warmup` fraction, then linear or cosine decay
    to 0; onecycle: cosine up from 1/25 over `warmup` (0.3 if unset), cosine down to 1/2500;
    triangular (airbench): linear 0.2 → 1 over `warmup` (0.23 if unset), then linear to 0.07."""
    p = step / max(total, 1)
    if schedule == "constant":
        return min(1.0, (p / warmup)) if warmup and p < warmup else 1.0
    if schedule == "onecycle":
        w = warmup or 0.3
        if p < w:
            return 1 / 25 + (1 - 1 / 25) * (1 - math.cos(math.pi * p / w)) / 2
        q = (p - w) / (1 - w)
        return 1 / 2500 + (1 - 1 / 2500) * (1 + math.cos(math.pi * q)) / 2
    if schedule == "triangular":
        w = warmup or 0.23
        if p < w:
            return 0.2 + 0.8 * p / w
        return 1.0 + (0.07 - 1.0) * (p - w) / (1 - w)
    if warmup and p < warmup:
        return p / warmup
    q = (p - warmup) / (1 - warmup)
    return 1 - q if schedule == "linear" else (1 + math.cos(math.pi * q)) / 2


def _is_norm(module: nn.Module) -> bool:
    return isinstance(module, (nn.modules.batchnorm._BatchNorm, nn.GroupNorm, nn.LayerNorm))


def param_groups(net: nn.Module, weight_decay: float, bn_bias_lr: float) -> list[dict[str, Any]]:
    """Three groups: decayed kernels/matrices; other biases/scales (no decay); norm-layer biases
    at `bn_bias_lr` × the learning rate (`lr_scale`, read by the loop every step)."""
    norm_bias = {id(m.bias) for m in net.modules() if _is_norm(m) and m.bias is not None}
    trainable = [p for p in net.parameters() if p.requires_grad]
    decay = [p for p in trainable if p.ndim > 1]
    bn_bias = [p for p in trainable if id(p) in norm_bias]
    other = [p for p in trainable if p.ndim <= 1 and id(p) not in norm_bias]
    groups = [{"params": decay, "weight_decay": weight_decay, "lr_scale": 1.0},
              {"params": other, "weight_decay": 0.0, "lr_scale": 1.0}]
    if bn_bias:
        groups.append({"params": bn_bias, "weight_decay": 0.0, "lr_scale": float(bn_bias_lr)})
    return [g for g in groups if g["params"]]


def make_optimizer(net: nn.Module, name: str, lr: float, momentum: float, weight_decay: float,
                   bn_bias_lr: float, device: torch.device) -> torch.optim.Optimizer:
    """SGD is Nesterov. On a GPU the fused kernels update every parameter in one launch (no
    per-tensor Python loop); on CPU torch's default (foreach) is used."""
    groups = param_groups(net, weight_decay, bn_bias_lr)
    fast: dict[str, Any] = {"fused": True} if device.type == "cuda" else {}
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum, nesterov=True, **fast)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr, **fast)
    return torch.optim.Adam(groups, lr=lr, **fast)


def set_lr(opt: torch.optim.Optimizer, lr: float) -> None:
    """Give every group `lr` × its own `lr_scale` (a Python float: no device sync)."""
    for g in opt.param_groups:
        g["lr"] = lr * g.get("lr_scale", 1.0)
