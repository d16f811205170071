"""`augment="...,photo"`: make training images look like converted real photos.

A model trained on the dataset's clean studio negatives meets, after the photo pipeline
(`fmnist.images.convert_v2`), items whose ink is brighter or flatter than the dataset's, whose
outline is a pixel too wide or too narrow (the mask's error), that sit slightly tilted, smaller or
off-centre, that are blurrier or over-sharpened, with a faint residue of background around them
and amplified sensor noise inside. Each of those is imitated here on the raw-pixel batch
`[B, 1, H, W]` (0..255, black background), per image, with probability `P_PHOTO` so that most
of every batch stays clean and the official test accuracy is kept.

Pure torch on the batch's device; every random number comes from the context's generator, so a
run is deterministic under its seed and resumable. Registered lazily by name in
`fmnist.models.training.augment.LAZY_AUGMENTATIONS`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

# Share of images that get the photo treatment at all; each effect then has its own chance.
P_PHOTO = 0.5
P_AFFINE, P_MORPH, P_TONE, P_FLAT, P_FILTER, P_RESIDUE, P_NOISE = (
    0.7, 0.35, 0.7, 0.12, 0.5, 0.3, 0.3)
MAX_ROTATE_DEG = 25.0
SCALE_RANGE = (0.7, 1.05)
MAX_SHIFT = 0.08  # of the image size
INK = 10.0  # pixels above this are the item


def _uniform(gen: torch.Generator, n: int, low: float, high: float,
             device: torch.device) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=gen, device=device)


def _chance(gen: torch.Generator, on: torch.Tensor, p: float) -> torch.Tensor:
    """`on` and a fresh coin with probability `p`, per image (always drawn: fixed RNG use)."""
    return on & (torch.rand(len(on), generator=gen, device=on.device) < p)


def _select(on: torch.Tensor, new: torch.Tensor, old: torch.Tensor) -> torch.Tensor:
    return torch.where(on.view(-1, 1, 1, 1), new, old)


def affine(x: torch.Tensor, gen: torch.Generator, on: torch.Tensor) -> torch.Tensor:
    """Small rotation, scale and shift (black outside), as a tilted or small photo leaves."""
    b, dev = len(x), x.device
    angle = _uniform(gen, b, -MAX_ROTATE_DEG, MAX_ROTATE_DEG, dev) * math.pi / 180
    scale = _uniform(gen, b, *SCALE_RANGE, dev)
    tx, ty = (_uniform(gen, b, -MAX_SHIFT, MAX_SHIFT, dev) * 2 for _ in range(2))
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    moved = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return _select(on, moved, x)


def morph(x: torch.Tensor, gen: torch.Generator, on: torch.Tensor) -> torch.Tensor:
    """Grow (dilate) or shrink (erode) the item by one pixel: the mask's typical error."""
    grow = torch.rand(len(x), generator=gen, device=x.device) < 0.5
    dilated = F.max_pool2d(x, 3, stride=1, padding=1)
    eroded = -F.max_pool2d(-x, 3, stride=1, padding=1)
    return _select(on, _select(grow, dilated, eroded), x)


def tone(x: torch.Tensor, gen: torch.Generator, on: torch.Tensor) -> torch.Tensor:
    """Contrast (around the item's mean ink) and gamma, as normalised photo ink varies."""
    b, dev = len(x), x.device
    item = x > INK
    count = item.sum((1, 2, 3)).clamp(min=1)
    mean = (x * item).sum((1, 2, 3)) / count
    gain = torch.exp(_uniform(gen, b, math.log(0.4), math.log(2.0), dev))
    gamma = torch.exp(_uniform(gen, b, math.log(0.6), math.log(1.6), dev))
    v = mean.view(b, 1, 1, 1) + (x - mean.view(b, 1, 1, 1)) * gain.view(b, 1, 1, 1)
    v = 255.0 * (v.clamp(1.0, 255.0) / 255.0) ** gamma.view(b, 1, 1, 1)
    return _select(on, torch.where(item, v, x), x)


def flatten(x: torch.Tensor, gen: torch.Generator, on: torch.Tensor) -> torch.Tensor:
    """Saturate towards a flat bright silhouette (a solid dark item under the paper's recipe)."""
    b, dev = len(x), x.device
    level = _uniform(gen, b, 180, 255, dev).view(b, 1, 1, 1)
    mix = _uniform(gen, b, 0.5, 1.0, dev).view(b, 1, 1, 1)
    flat = torch.where(x > INK, level, x)
    return _select(on, mix * flat + (1 - mix) * x, x)


def filter_(x: torch.Tensor, gen: torch.Generator, on: torch.Tensor) -> torch.Tensor:
    """Blur or sharpen: `x + a (x − blur(x))` with a ∈ [−0.8, 1.2] (negative blurs)."""
    b, dev = len(x), x.device
    kernel = torch.tensor([1.0, 2.0, 1.0], device=dev)
    kernel = (kernel[:, None] * kernel[None, :] / 16).view(1, 1, 3, 3)
    blurred = F.conv2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), kernel)
    amount = _uniform(gen, b, -0.8, 1.2, dev).view(b, 1, 1, 1)
    return _select(on, (x + amount * (x - blurred)).clamp(0, 255), x)


def residue(x: torch.Tensor, gen: torch.Generator, on: torch.Tensor) -> torch.Tensor:
    """Faint background left around the item: a ramp (shading) plus a halo along the outline."""
    b, _, h, w = x.shape
    dev = x.device
    ys = torch.linspace(-1, 1, h, device=dev).view(1, 1, h, 1)
    xs = torch.linspace(-1, 1, w, device=dev).view(1, 1, 1, w)
    angle = _uniform(gen, b, 0, 2 * math.pi, dev).view(b, 1, 1, 1)
    ramp = (torch.cos(angle) * xs + torch.sin(angle) * ys + 1) / 2
    amp = _uniform(gen, b, 5, 35, dev).view(b, 1, 1, 1)
    halo = F.max_pool2d((x > INK).float(), 5, stride=1, padding=2)
    extra = amp * (0.5 * ramp + 0.5 * halo) * (x <= INK)
    return _select(on, x + extra, x)


def noise(x: torch.Tensor, gen: torch.Generator, on: torch.Tensor) -> torch.Tensor:
    """Amplified sensor/JPEG noise inside the item."""
    b, dev = len(x), x.device
    sigma = _uniform(gen, b, 4, 18, dev).view(b, 1, 1, 1)
    grain = torch.randn(x.shape, generator=gen, device=dev) * sigma
    return _select(on, torch.where(x > INK, (x + grain).clamp(0, 255), x), x)


STEPS = ((affine, P_AFFINE), (morph, P_MORPH), (tone, P_TONE), (flatten, P_FLAT),
         (filter_, P_FILTER), (residue, P_RESIDUE), (noise, P_NOISE))


def photo_augment(x: torch.Tensor, ctx) -> torch.Tensor:
    """The registered `photo` augmentation: `x` float `[B, 1, H, W]` raw pixels → same shape.

    `ctx` is the training loop's `AugmentContext`; only its seeded generator `ctx.gen` is used.
    """
    gen = ctx.gen
    photo = torch.rand(len(x), generator=gen, device=x.device) < P_PHOTO
    for step, p in STEPS:
        x = step(x, gen, _chance(gen, photo, p))
    return x.clamp(0, 255)
