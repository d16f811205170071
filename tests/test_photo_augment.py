"""The `photo` training augmentation: registered, deterministic under a seed, bounded, and it
changes about half of a batch (the rest stays clean so the official accuracy is kept)."""

from __future__ import annotations

import torch

from fmnist.models.photo_augment import P_PHOTO, photo_augment
from fmnist.models.training.augment import AugmentContext, get_augmentation, parse_augment


def _batch(n: int = 256) -> torch.Tensor:
    x = torch.zeros(n, 1, 28, 28)
    x[:, :, 4:24, 8:20] = torch.linspace(60, 240, n).view(n, 1, 1, 1)  # items of many inks
    return x


def _ctx(seed: int) -> AugmentContext:
    return AugmentContext(gen=torch.Generator().manual_seed(seed), epoch=0,
                          indices=torch.arange(256))


def test_photo_is_a_registered_augmentation() -> None:
    assert "photo" in parse_augment("translate,flip,photo")
    assert get_augmentation("photo") is photo_augment


def test_same_seed_same_batch_and_pixels_stay_in_range() -> None:
    x = _batch()
    a, b = photo_augment(x.clone(), _ctx(3)), photo_augment(x.clone(), _ctx(3))
    assert torch.equal(a, b) and a.shape == x.shape
    assert a.min() >= 0 and a.max() <= 255
    assert not torch.equal(a, photo_augment(x.clone(), _ctx(4)))


def test_about_half_of_the_batch_is_changed() -> None:
    x = _batch()
    changed = (photo_augment(x.clone(), _ctx(0)) != x).flatten(1).any(1).float().mean()
    assert abs(float(changed) - P_PHOTO) < 0.15
