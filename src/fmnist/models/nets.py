"""The torch modules behind the neural models, each built by `build_net(arch, ...)`.

Every network takes a float batch `[N, 1, H, W]` of *raw* pixel values 0..255 and does its own
input scaling in a first `Scale` layer whose constants are buffers, so a saved network carries
its preprocessing and can never disagree with training. Nothing hard-codes 28×28: flattened sizes
come from a dummy forward pass over the input shape given at construction.

Speed rewrites (exact, measured; docs/neural.md): a ReLU that follows a
max-pool instead of preceding it computes the same function (`relu(maxpool(x)) ==
maxpool(relu(x))`, ReLU is monotone) on a 4× smaller tensor; for BatchNorm nets the order
conv → BN → max-pool → ReLU is likewise exact, because max-pool commutes with ReLU (BN sits before
the pool and is untouched).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from fmnist.errors import ConfigError

FMNIST_MEAN = 0.2860
"""Mean of the Fashion-MNIST training pixels after ÷255 (standardisation constant)."""
FMNIST_STD = 0.3530
"""Standard deviation of the Fashion-MNIST training pixels after ÷255."""


class Scale(nn.Module):
    """`(x / 255 - mean) / std` with the constants stored as buffers (saved with the weights)."""

    def __init__(self, mean: float = 0.0, std: float = 1.0) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(float(mean)))
        self.register_buffer("std", torch.tensor(float(std)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * (1.0 / 255.0) - self.mean) / self.std


def _glorot(module: nn.Module) -> None:
    """Keras' default initialisation (glorot-uniform kernels, zero biases), for the seed nets."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def _flat_size(features: nn.Module, input_shape: tuple[int, int]) -> int:
    with torch.no_grad():
        return int(features(torch.zeros(1, 1, *input_shape)).numel())


def _dense_stack(sizes: Sequence[int], dropouts: Sequence[float]) -> list[nn.Module]:
    """Linear → ReLU (→ Dropout) for each consecutive pair of `sizes`."""
    layers: list[nn.Module] = []
    for (n_in, n_out), p in zip(pairwise(sizes), dropouts, strict=True):
        layers += [nn.Linear(n_in, n_out), nn.ReLU(inplace=True)]
        if p > 0:
            layers.append(nn.Dropout(p))
    return layers


class SeedCNN(nn.Module):
    """The seed notebook's Keras CNNs, layer for layer.

    `convs` are the filter counts of the Conv2D(3×3, stride 1, 'valid', ReLU) + MaxPool(2) blocks;
    `dense` the hidden Dense(ReLU) widths and `dropouts` the Dropout after each (0 = none).
    Keras flattens NHWC, we flatten NCHW: the first Dense layer's input rows are permuted, which
    is the same family of functions (and the same parameter count).
    """

    def __init__(
        self,
        convs: Sequence[int],
        dense: Sequence[int],
        dropouts: Sequence[float],
        input_shape: tuple[int, int] = (28, 28),
        n_classes: int = 10,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [Scale(0.0, 1.0)]  # the seed divides by 255, no standardising
        c_in = 1
        for c_out in convs:
            # Conv → MaxPool → ReLU is exactly Conv → ReLU → MaxPool (see the module docstring).
            layers += [nn.Conv2d(c_in, c_out, 3), nn.MaxPool2d(2), nn.ReLU(inplace=True)]
            c_in = c_out
        layers.append(nn.Flatten())
        self.features = nn.Sequential(*layers)
        flat = _flat_size(self.features, input_shape)
        self.classifier = nn.Sequential(
            *_dense_stack([flat, *dense], dropouts), nn.Linear(dense[-1], n_classes)
        )
        _glorot(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def _conv_bn(c_in: int, c_out: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, stride, padding=1, bias=False), nn.BatchNorm2d(c_out)]


class FastCNN(nn.Module):
    """Our default `cnn`: `depth` blocks of [Conv3×3 → BN → MaxPool2 → ReLU], channels doubling
    from `width`, then global pooling-free Flatten → Linear.

    Chosen by measurement on 2 CPU cores (notes: A(16) 0.917 in 49 s, A(32) 0.9245 in 150 s):
    deeper nets cost 55–120 s/epoch and lose at short budgets. Pools use ceil mode so odd sizes
    (7 → 4) keep their border instead of dropping it.
    """

    def __init__(
        self,
        width: int = 32,
        depth: int = 3,
        dropout: float = 0.0,
        input_shape: tuple[int, int] = (28, 28),
        n_classes: int = 10,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [Scale(FMNIST_MEAN, FMNIST_STD)]
        c_in = 1
        for i in range(depth):
            c_out = width * 2**i
            layers += [*_conv_bn(c_in, c_out), nn.MaxPool2d(2, ceil_mode=True),
                       nn.ReLU(inplace=True)]
            c_in = c_out
        layers.append(nn.Flatten())
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(_flat_size(self.features, input_shape), n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class BasicBlock(nn.Module):
    """ResNet basic block: two 3×3 conv-BN, identity (or 1×1 conv-BN) shortcut.

    A strided shortcut takes every `stride`-th pixel and then applies a 1×1 convolution — the
    same function as a 1×1 convolution of that stride, with the same parameters — because
    torch 2.13's CPU backward of a channels_last 1×1 stride-2 convolution with few channels
    (4 → 8) corrupts memory on AVX2 processors (double free, bus error; 2026-11-27)."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.body = nn.Sequential(
            *_conv_bn(c_in, c_out, stride), nn.ReLU(inplace=True), *_conv_bn(c_out, c_out)
        )
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = x if self.stride == 1 else x[:, :, ::self.stride, ::self.stride]
        return torch.relu(self.body(x) + self.shortcut(skip))


class ResNet(nn.Module):
    """A CIFAR-style ResNet sized for 28×28: a 3×3 stem (no 7×7, no stem pool — the image is
    already tiny), three stages of `depth` basic blocks at `width`, 2·`width`, 4·`width` channels
    (28 → 14 → 7), global average pooling, Linear. depth=3 is ResNet-20, depth=2 ResNet-14."""

    def __init__(
        self,
        width: int = 16,
        depth: int = 3,
        input_shape: tuple[int, int] = (28, 28),
        n_classes: int = 10,
    ) -> None:
        super().__init__()
        del input_shape  # global pooling: any size works
        layers: list[nn.Module] = [Scale(FMNIST_MEAN, FMNIST_STD), *_conv_bn(1, width),
                                   nn.ReLU(inplace=True)]
        c_in = width
        for stage in range(3):
            c_out = width * 2**stage
            for block in range(depth):
                stride = 2 if (stage > 0 and block == 0) else 1
                layers.append(BasicBlock(c_in, c_out, stride))
                c_in = c_out
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(c_in, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class PatchWhitening(nn.Module):
    """airbench's first layer: a `k`×`k` convolution whose 2·k² filters are ± the eigenvectors
    of the training images' patch covariance scaled by 1/√(eigenvalue + eps), frozen; only the
    bias trains. Every later layer then sees decorrelated, unit-variance patch features, which
    cut the epochs to 94 % on CIFAR-10 from 35 to 21 (airbench's ablation, cifar10-zoo)."""

    def __init__(self, k: int = 2, eps: float = 5e-4) -> None:
        super().__init__()
        self.k, self.eps = k, eps
        self.conv = nn.Conv2d(1, 2 * k * k, k)
        self.conv.weight.requires_grad_(False)

    @property
    def out_channels(self) -> int:
        return self.conv.out_channels

    def patch_covariance(self, x: torch.Tensor) -> torch.Tensor:
        """Second-moment matrix (k²×k², float64) of all k×k patches of the scaled batch `x`."""
        patches = F.unfold(x.double(), self.k).transpose(1, 2).reshape(-1, self.k * self.k)
        return patches.T @ patches / len(patches)

    @torch.no_grad()
    def init_from_data(self, x: torch.Tensor) -> None:
        """Set the filters from scaled images `x` `[N, 1, H, W]` (deterministic: float64 eigh)."""
        vals, vecs = torch.linalg.eigh(self.patch_covariance(x.cpu()))
        filters = (vecs.T / torch.sqrt(vals + self.eps).unsqueeze(1)).flip(0)
        w = torch.cat([filters, -filters]).view_as(self.conv.weight)
        self.conv.weight.copy_(w.to(self.conv.weight))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


def _frozen_bn(c: int) -> nn.BatchNorm2d:
    """airbench's BatchNorm: scale frozen at 1 (only the bias trains, with a higher learning
    rate), eps 1e-12, running statistics that follow the recent batches (momentum 0.4)."""
    bn = nn.BatchNorm2d(c, eps=1e-12, momentum=0.4)
    bn.weight.requires_grad_(False)
    return bn


class ConvGroup(nn.Sequential):
    """conv3×3 → max-pool 2 → BN → GELU → conv3×3 → BN → GELU (pooling early: the second conv
    and both BNs run on a 4× smaller map)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__(nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.MaxPool2d(2),
                         _frozen_bn(c_out), nn.GELU(),
                         nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), _frozen_bn(c_out),
                         nn.GELU())


class SpeedNet(nn.Module):
    """The airbench94 network for 1×28×28: [patch whitening 2×2 (28 → 27)] → GELU → three
    ConvGroups at `width`, 4·`width`, 4·`width` channels (27 → 13 → 6 → 3) → max-pool 3 →
    Linear without bias → logits × 1/9. Convolutions start as identity maps on their first
    in-channels (dirac init), so the deep stack begins close to a shallow one."""

    def __init__(self, width: int = 64, whiten: bool = True,
                 input_shape: tuple[int, int] = (28, 28), n_classes: int = 10) -> None:
        super().__init__()
        stem: nn.Module = PatchWhitening() if whiten else nn.Conv2d(1, 8, 2)
        widths = (width, 4 * width, 4 * width)
        self.features = nn.Sequential(
            Scale(FMNIST_MEAN, FMNIST_STD), stem, nn.GELU(),
            ConvGroup(stem.out_channels, widths[0]), ConvGroup(widths[0], widths[1]),
            ConvGroup(widths[1], widths[2]), nn.AdaptiveMaxPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(widths[2], n_classes, bias=False)
        del input_shape  # the final pool takes any size
        for m in self.features.modules():
            if isinstance(m, nn.Conv2d) and m is not getattr(stem, "conv", stem):
                nn.init.dirac_(m.weight.data[:m.in_channels])

    def init_from_data(self, x_u8: torch.Tensor) -> None:
        """Set the whitening filters from raw training images (a few thousand suffice)."""
        stem = self.features[1]
        if isinstance(stem, PatchWhitening):
            stem.init_from_data(self.features[0](x_u8.float().cpu()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x)) / 9


VGG16_BLOCKS: tuple[tuple[int, ...], ...] = ((64, 64), (128, 128), (256, 256, 256),
                                             (512, 512, 512), (512, 512, 512))
"""VGG16's 13 convolutions in 5 blocks (channel counts at width multiplier 1)."""


class VGG(nn.Module):
    """VGG16 adapted to 28×28: the same 13 3×3 convolutions in 5 blocks and 3 fully connected
    layers. Four 2×2 pools (28 → 14 → 7 → 4 → 2, ceil mode) instead of five, because a fifth would
    shrink 2×2 to 1×1 — the fifth block runs at 2×2. Channels are `VGG16_BLOCKS` × `width` / 64
    (width=64 is the original; the default 16 is 16× cheaper and fits a CPU budget), FC width
    `hidden` (original 4096). `batch_norm` adds BN after every convolution (VGG16-BN)."""

    def __init__(
        self,
        width: int = 16,
        hidden: int = 256,
        batch_norm: bool = True,
        dropout: float = 0.5,
        input_shape: tuple[int, int] = (28, 28),
        n_classes: int = 10,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [Scale(FMNIST_MEAN, FMNIST_STD)]
        c_in = 1
        for b, block in enumerate(VGG16_BLOCKS):
            for i, base in enumerate(block):
                c_out = max(1, base * width // 64)
                layers.append(nn.Conv2d(c_in, c_out, 3, padding=1, bias=not batch_norm))
                if batch_norm:
                    layers.append(nn.BatchNorm2d(c_out))
                last = i == len(block) - 1
                if last and b < len(VGG16_BLOCKS) - 1:
                    layers.append(nn.MaxPool2d(2, ceil_mode=True))  # exact: pool before ReLU
                layers.append(nn.ReLU(inplace=True))
                c_in = c_out
        layers.append(nn.Flatten())
        self.features = nn.Sequential(*layers)
        flat = _flat_size(self.features, input_shape)
        self.classifier = nn.Sequential(
            *_dense_stack([flat, hidden, hidden], [dropout, dropout]), nn.Linear(hidden, n_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class MLP(nn.Module):
    """The back-propagation network: standardised pixels → hidden Linear-ReLU-Dropout layers."""

    def __init__(
        self,
        hidden: Sequence[int] = (512, 256),
        dropout: float = 0.2,
        input_shape: tuple[int, int] = (28, 28),
        n_classes: int = 10,
    ) -> None:
        super().__init__()
        sizes = [input_shape[0] * input_shape[1], *hidden]
        self.net = nn.Sequential(
            Scale(FMNIST_MEAN, FMNIST_STD), nn.Flatten(),
            *_dense_stack(sizes, [dropout] * len(hidden)), nn.Linear(sizes[-1], n_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


SEED_ARCHS: dict[str, dict] = {
    # Seed CNN 1: Conv32-MaxPool-Dense128-Dense10 (693,962 parameters).
    "seed1": {"convs": (32,), "dense": (128,), "dropouts": (0.0,)},
    # Seed CNN 2: Conv32-Pool-Conv64-Pool-D128-Drop.25-D256-Drop.25-D128-D10.
    "seed2": {"convs": (32, 64), "dense": (128, 256, 128), "dropouts": (0.25, 0.25, 0.0)},
    # Seed CNN 3: Conv64-Pool-Conv128-Pool-Conv64-Pool-D128-Drop.25-D256-Drop.5-D256-Drop.25-
    # D128-Drop.1-D10.
    "seed3": {"convs": (64, 128, 64), "dense": (128, 256, 256, 128),
              "dropouts": (0.25, 0.5, 0.25, 0.10)},
}

ARCHS = ("seed1", "seed2", "seed3", "cnn", "resnet", "vgg", "mlp", "speednet")
"""Architecture names accepted by `build_net`."""


def build_net(
    arch: str,
    input_shape: tuple[int, int] = (28, 28),
    n_classes: int = 10,
    *,
    width: int | None = None,
    depth: int | None = None,
    hidden: Sequence[int] | int | None = None,
    dropout: float | None = None,
    batch_norm: bool = True,
    whiten: bool | None = None,
) -> nn.Module:
    """Build architecture `arch`; `None` options take the architecture's own default.

    Options an architecture has no use for must be left at None (a silent no-op would let a
    user believe they changed something)."""
    opts = {"width": width, "depth": depth, "hidden": hidden, "dropout": dropout,
            "whiten": whiten}
    accepted = {
        "cnn": {"width", "depth", "dropout"},
        "resnet": {"width", "depth"},
        "vgg": {"width", "hidden", "dropout"},
        "mlp": {"hidden", "dropout"},
        "speednet": {"width", "whiten"},
    }.get(arch, set())
    unused = [k for k, v in opts.items() if v is not None and k not in accepted]
    if arch not in ARCHS:
        raise ConfigError(f"unknown architecture {arch!r}; choose one of {', '.join(ARCHS)}")
    if unused:
        raise ConfigError(f"architecture {arch!r} has no option {', '.join(unused)}; "
                          f"it accepts: {', '.join(sorted(accepted)) or 'none'}")
    given = {k: v for k, v in opts.items() if v is not None}
    common = {"input_shape": tuple(input_shape), "n_classes": n_classes}
    if arch in SEED_ARCHS:
        return SeedCNN(**SEED_ARCHS[arch], **common)
    if arch == "cnn":
        return FastCNN(**given, **common)
    if arch == "resnet":
        return ResNet(**given, **common)
    if arch == "vgg":
        return VGG(**given, batch_norm=batch_norm, **common)
    if arch == "speednet":
        return SpeedNet(**given, **common)
    if "hidden" in given:
        h = given["hidden"]
        given["hidden"] = (h,) if isinstance(h, int) else tuple(int(v) for v in h)
    return MLP(**given, **common)


def fuse_for_inference(net: nn.Module) -> nn.Module:
    """An eval-mode copy of `net` with every Conv2d → BatchNorm2d pair of a Sequential folded
    into one convolution: the same function (up to float rounding) without a memory pass over
    the largest activations — prediction only, the trained module is left untouched."""
    fused = copy.deepcopy(net).eval()
    for seq in [m for m in fused.modules() if isinstance(m, nn.Sequential)]:
        names = list(seq._modules)
        for a, b in pairwise(names):
            conv, bn = seq._modules[a], seq._modules[b]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                seq._modules[a] = fuse_conv_bn_eval(conv, bn)
                seq._modules[b] = nn.Identity()
    return fused


def init_from_data(net: nn.Module, x_u8: torch.Tensor) -> None:
    """Let a net that sets weights from the training data (patch whitening) do so; others
    ignore it. `x_u8` are raw training images `[N, 1, H, W]`."""
    hook = getattr(net, "init_from_data", None)
    if hook is not None:
        hook(x_u8)


def has_batch_norm(net: nn.Module) -> bool:
    """Whether micro-batching would change the maths (BatchNorm statistics depend on the batch)."""
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules())


def count_params(net: nn.Module) -> int:
    """Trainable parameters (the figure Keras' summary prints)."""
    return sum(p.numel() for p in net.parameters() if p.requires_grad)
