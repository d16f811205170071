"""Batch augmentation on the device, as a registry of named operations.

Every operation takes a float batch of *raw* pixels `[B, 1, H, W]` (0..255, black = 0) already
on the training device and an `AugmentContext` (the epoch's seeded generator, the batch's image
indices, the epoch), and returns a batch of the same shape. Working in raw pixel space means a
translated image is padded with the true black background rather than with "0 after
normalisation" (grey) — the flaw an earlier CPU attempt measured (docs/neural.md).

Operations are referred to by name (`augment="translate,altflip,erase"`), so the choice stays a
plain string in `model.json`; another module adds its own with `register_augmentation` (e.g. a
photo-hardening transform) or, to stay lazy, with an import string in `LAZY_AUGMENTATIONS`.
All randomness comes from `ctx.gen` (seeded per epoch), so a resumed run replays exactly.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from fmnist.errors import FmnistError


@dataclass
class AugmentContext:
    """What an augmentation may use besides the batch: all of it is a pure function of
    (seed, epoch, batch position), which keeps runs reproducible and resumable."""

    gen: torch.Generator
    epoch: int
    indices: torch.Tensor
    translate: int = 2
    base_flip: torch.Tensor | None = None


Augmentation = Callable[[torch.Tensor, AugmentContext], torch.Tensor]
_REGISTRY: dict[str, Augmentation] = {}
LAZY_AUGMENTATIONS: dict[str, str] = {
    "photo": "fmnist.models.photo_augment:photo_augment",  # converted real photos (issue 12)
}
"""name → "module:function" for augmentations whose module should only load when used."""


def register_augmentation(name: str, fn: Augmentation) -> Augmentation:
    """Make `fn` available as `augment="...,name"` (a name may be registered only once)."""
    if name in _REGISTRY and _REGISTRY[name] is not fn:
        raise FmnistError(f"augmentation {name!r} is already registered")
    _REGISTRY[name] = fn
    return fn


def augmentation_names() -> tuple[str, ...]:
    """Every name `augment=` accepts (built-in, registered and lazy)."""
    return tuple(sorted({*_REGISTRY, *LAZY_AUGMENTATIONS}))


def get_augmentation(name: str) -> Augmentation:
    """The function behind `name`, importing its module first when it is a lazy entry."""
    if name not in _REGISTRY and name in LAZY_AUGMENTATIONS:
        module, attr = LAZY_AUGMENTATIONS[name].split(":")
        register_augmentation(name, getattr(importlib.import_module(module), attr))
    try:
        return _REGISTRY[name]
    except KeyError:
        raise FmnistError(f"unknown augmentation {name!r}; use a comma list of "
                          f"{', '.join(augmentation_names())}, or true/false") from None


DEFAULT_SET = ("translate", "flip", "erase")
"""What `augment=True` means (kept from before the registry, so old model.json files agree)."""
ORDER = ("translate", "flip", "altflip", "erase")
"""Built-ins run in this order; registered extras run after them, alphabetically."""


def parse_augment(augment: bool | str | None) -> frozenset[str]:
    """`True` = translate+flip+erase; `False`/None/"none" = nothing; or a comma list of names."""
    if augment is True or augment in ("true", "1", "all"):
        return frozenset(DEFAULT_SET)
    if augment in (False, None, "", "none", "false", "0"):
        return frozenset()
    ops = frozenset(s.strip() for s in str(augment).split(",") if s.strip())
    for op in sorted(ops):
        get_augmentation(op)
    if {"flip", "altflip"} <= ops:
        raise FmnistError("flip and altflip are two ways to mirror images: choose one")
    return ops


def ordered(ops: frozenset[str]) -> list[str]:
    """The order in which `ops` are applied (built-ins first, then extras by name)."""
    return [o for o in ORDER if o in ops] + sorted(ops - set(ORDER))


def apply(x: torch.Tensor, ops: frozenset[str], ctx: AugmentContext) -> torch.Tensor:
    """Run every operation of `ops` on the raw-pixel batch `x`."""
    for op in ordered(ops):
        x = get_augmentation(op)(x, ctx)
    return x


def shift(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, pad: int) -> torch.Tensor:
    """Each image of `x` moved by its own (dy, dx) ∈ [−pad, pad]², filled with black (0)."""
    b, _, h, w = x.shape
    dev = x.device
    padded = F.pad(x, (pad, pad, pad, pad))
    rows = (pad - dy).view(b, 1, 1) + torch.arange(h, device=dev).view(1, h, 1)
    cols = (pad - dx).view(b, 1, 1) + torch.arange(w, device=dev).view(1, 1, w)
    return padded[torch.arange(b, device=dev).view(b, 1, 1), 0, rows, cols].unsqueeze(1)


def translate(x: torch.Tensor, ctx: AugmentContext) -> torch.Tensor:
    """Random translation by up to `ctx.translate` pixels each way, per image."""
    t = ctx.translate
    if t <= 0:
        return x
    b = len(x)
    dy = torch.randint(-t, t + 1, (b,), generator=ctx.gen, device=x.device)
    dx = torch.randint(-t, t + 1, (b,), generator=ctx.gen, device=x.device)
    return shift(x, dy, dx, t)


def flip(x: torch.Tensor, ctx: AugmentContext) -> torch.Tensor:
    """Horizontal mirror of each image with probability 1/2."""
    mask = torch.rand(len(x), generator=ctx.gen, device=x.device) < 0.5
    return torch.where(mask.view(-1, 1, 1, 1), x.flip(-1), x)


def alternating_flip_mask(base: torch.Tensor, epoch: int) -> torch.Tensor:
    """airbench's alternating flip: image i is mirrored in epoch e iff base[i] XOR (e odd), so
    over any two consecutive epochs every image is seen once each way (less redundancy than
    independent coin flips, measured as a 5–10 % shorter schedule on CIFAR-10)."""
    return base ^ bool(epoch % 2)


def altflip(x: torch.Tensor, ctx: AugmentContext) -> torch.Tensor:
    """Mirror the images that `alternating_flip_mask` selects for this epoch."""
    if ctx.base_flip is None:
        raise FmnistError("altflip needs the per-image base flips (set by the training loop)")
    mask = alternating_flip_mask(ctx.base_flip[ctx.indices], ctx.epoch)
    return torch.where(mask.view(-1, 1, 1, 1), x.flip(-1), x)


def erase(x: torch.Tensor, ctx: AugmentContext) -> torch.Tensor:
    """Random erasing (Zhong et al.): p = 0.5, 2–20 % of the area, aspect 0.3–3.3, filled black."""
    b, _, h, w = x.shape
    gen, dev = ctx.gen, x.device
    area = h * w * (0.02 + 0.18 * torch.rand(b, generator=gen, device=dev))
    log_r = math.log(0.3) + (math.log(3.3) - math.log(0.3)) * torch.rand(
        b, generator=gen, device=dev)
    ratio = torch.exp(log_r)
    eh = torch.sqrt(area * ratio).round().clamp(1, h)
    ew = torch.sqrt(area / ratio).round().clamp(1, w)
    y0 = (torch.rand(b, generator=gen, device=dev) * (h - eh + 1)).floor()
    x0 = (torch.rand(b, generator=gen, device=dev) * (w - ew + 1)).floor()
    on = torch.rand(b, generator=gen, device=dev) < 0.5
    r = torch.arange(h, device=dev).view(1, h, 1)
    c = torch.arange(w, device=dev).view(1, 1, w)
    box = ((r >= y0.view(b, 1, 1)) & (r < (y0 + eh).view(b, 1, 1))
           & (c >= x0.view(b, 1, 1)) & (c < (x0 + ew).view(b, 1, 1)) & on.view(b, 1, 1))
    return x.masked_fill(box.unsqueeze(1), 0.0)


for _name, _fn in (("translate", translate), ("flip", flip), ("altflip", altflip),
                   ("erase", erase)):
    register_augmentation(_name, _fn)
