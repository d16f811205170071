"""The torch training loop: fast on a 2-core CPU, deterministic, resumable, interruptible.

Design (../shared/DESIGN.md, measured in ../shared/notes/cpu-training-speed.md):
- the whole training set is one uint8 tensor on the device; a batch is a slice of a seeded
  permutation, converted to float on the fly (no DataLoader, no worker processes);
- augmentation runs on the batch tensor, in raw pixel space, so a translated image is padded
  with the true black background (0) rather than with "0 after normalisation" (grey);
- on CPU the network and batches are channels_last, and a batch larger than `micro_batch` is
  split into micro-batches whose gradients are accumulated — exactly the same gradient when the
  net has no BatchNorm, but the activations stay in cache (7.7 s instead of 25 s per epoch for
  the seed CNN);
- every epoch draws its permutation, augmentation and dropout from generators seeded by
  (seed, epoch), so a resumed run replays exactly what an uninterrupted run would have done;
- the learning rate is a pure function of the step, so resuming needs no scheduler state.
"""

from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from torch import nn

from fmnist.errors import FmnistError

AUGMENTATIONS = ("translate", "flip", "erase")
OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "linear", "cosine", "onecycle")
CHECKPOINT_NAME = "checkpoint.pt"
CHECKPOINT_FORMAT = 1


def pick_device(name: str = "auto") -> torch.device:
    """`auto` = CUDA → MPS → CPU; an explicit device that is absent is a user error."""
    name = (name or "auto").lower()
    cuda, mps = torch.cuda.is_available(), torch.backends.mps.is_available()
    if name == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if name.startswith("cuda") and not cuda:
        raise FmnistError("device 'cuda' was asked for but no CUDA GPU is visible; use --device "
                          "auto or cpu")
    if name == "mps" and not mps:
        raise FmnistError("device 'mps' was asked for but MPS is not available; use --device "
                          "auto or cpu")
    try:
        return torch.device(name)
    except RuntimeError as exc:
        raise FmnistError(f"unknown device {name!r}: use auto, cpu, cuda or mps") from exc


def parse_augment(augment: bool | str | None) -> frozenset[str]:
    """`True` = translate+flip+erase; `False`/None/"none" = nothing; or a comma list."""
    if augment is True:
        return frozenset(AUGMENTATIONS)
    if augment in (False, None, "", "none", "false", "0"):
        return frozenset()
    if augment in ("true", "1", "all"):
        return frozenset(AUGMENTATIONS)
    ops = frozenset(s.strip() for s in str(augment).split(",") if s.strip())
    bad = ops - set(AUGMENTATIONS)
    if bad:
        raise FmnistError(f"unknown augmentation {', '.join(sorted(bad))}; use a comma list of "
                          f"{', '.join(AUGMENTATIONS)}, or true/false")
    return ops


@dataclass
class TrainConfig:
    """Everything the loop needs besides the data and the network."""

    epochs: int = 10
    batch_size: int = 128
    lr: float = 1e-3
    optimizer: str = "adam"
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "constant"
    warmup: float = 0.0
    label_smoothing: float = 0.0
    augment: frozenset[str] = frozenset()
    translate: int = 2
    patience: int | None = None
    restore_best: bool = True
    micro_batch: int | None = 128
    seed: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    eval_batch_size: int = 256
    checkpoint_dir: str | None = None
    resume: bool = False
    verbose: bool = True
    fingerprint: dict[str, Any] = field(default_factory=dict)

    def check(self) -> None:
        """Reject bad settings before any work is done."""
        if self.epochs < 1 or self.batch_size < 1:
            raise FmnistError("epochs and batch_size must be at least 1")
        if not self.lr > 0:
            raise FmnistError(f"lr must be positive, got {self.lr}")
        if self.optimizer not in OPTIMIZERS:
            raise FmnistError(f"unknown optimizer {self.optimizer!r}; use {', '.join(OPTIMIZERS)}")
        if self.schedule not in SCHEDULES:
            raise FmnistError(f"unknown schedule {self.schedule!r}; use {', '.join(SCHEDULES)}")
        if not 0 <= self.warmup < 1:
            raise FmnistError(f"warmup is a fraction of training in [0, 1), got {self.warmup}")
        if not 0 <= self.label_smoothing < 1:
            raise FmnistError(f"label_smoothing must be in [0, 1), got {self.label_smoothing}")
        if self.resume and not self.checkpoint_dir:
            raise FmnistError("resume needs checkpoint_dir (the folder holding checkpoint.pt)")


@dataclass
class TrainResult:
    """What `train` hands back besides the (trained, best-restored) network."""

    history: list[dict[str, Any]]
    best_epoch: int | None
    interrupted: bool
    stopped_early: bool


def lr_factor(schedule: str, warmup: float, step: int, total: int) -> float:
    """The learning-rate multiplier at `step` of `total` (a pure function: resumable).

    linear/cosine: linear warm-up over the first `warmup` fraction, then linear or cosine decay
    to 0; onecycle: cosine up from 1/25 over `warmup` (0.3 if unset), cosine down to 1/2500."""
    p = step / max(total, 1)
    if schedule == "constant":
        return min(1.0, (p / warmup)) if warmup and p < warmup else 1.0
    if schedule == "onecycle":
        w = warmup or 0.3
        if p < w:
            return 1 / 25 + (1 - 1 / 25) * (1 - math.cos(math.pi * p / w)) / 2
        q = (p - w) / (1 - w)
        return 1 / 2500 + (1 - 1 / 2500) * (1 + math.cos(math.pi * q)) / 2
    if warmup and p < warmup:
        return p / warmup
    q = (p - warmup) / (1 - warmup)
    return 1 - q if schedule == "linear" else (1 + math.cos(math.pi * q)) / 2


def make_optimizer(net: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    """Weight decay on weight matrices/kernels only — never on biases or BatchNorm scales."""
    decay = [p for p in net.parameters() if p.requires_grad and p.ndim > 1]
    other = [p for p in net.parameters() if p.requires_grad and p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay},
              {"params": other, "weight_decay": 0.0}]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=True)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr)
    return torch.optim.Adam(groups, lr=cfg.lr)


def augment_batch(x: torch.Tensor, ops: frozenset[str], translate: int,
                  gen: torch.Generator) -> torch.Tensor:
    """Per-image random translate (black padding), horizontal flip and random erasing (filled
    with black) on a raw-pixel float batch `[B, 1, H, W]`, all on the batch's device."""
    b, _, h, w = x.shape
    dev = x.device
    if "translate" in ops and translate > 0:
        t = translate
        padded = F.pad(x, (t, t, t, t))  # zeros = black background in raw pixel space
        dy = torch.randint(0, 2 * t + 1, (b, 1, 1), generator=gen, device=dev)
        dx = torch.randint(0, 2 * t + 1, (b, 1, 1), generator=gen, device=dev)
        rows = dy + torch.arange(h, device=dev).view(1, h, 1)
        cols = dx + torch.arange(w, device=dev).view(1, 1, w)
        x = padded[torch.arange(b, device=dev).view(b, 1, 1), 0, rows, cols].unsqueeze(1)
    if "flip" in ops:
        flip = torch.rand(b, generator=gen, device=dev) < 0.5
        x = torch.where(flip.view(b, 1, 1, 1), x.flip(-1), x)
    if "erase" in ops:
        # RandomErasing-style: p=0.5, area 2–20 % of the image, aspect ratio 0.3–3.3.
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
        x = x.masked_fill(box.unsqueeze(1), 0.0)
    return x


def place(net: nn.Module, device: torch.device) -> nn.Module:
    """Move `net` to `device`, channels_last on CPU (oneDNN's fast layout). Training and
    prediction use the same layout, so a reloaded model computes bit-identical outputs."""
    net.to(device)
    if device.type == "cpu":
        net.to(memory_format=torch.channels_last)
    return net


def _to_input(xb: torch.Tensor, device: torch.device) -> torch.Tensor:
    x = xb.float()
    if device.type == "cpu":
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def _autocast(device: torch.device):
    """bf16 autocast on CUDA (tensor cores, no loss scaling needed); plain fp32 elsewhere."""
    return torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")


def predict_logits(net: nn.Module, x_u8: torch.Tensor, device: torch.device,
                   batch_size: int = 256, flip_tta: bool = False) -> torch.Tensor:
    """Softmax-ready logits (float32, CPU) for uint8 images `[N, 1, H, W]`, in big batches
    under `inference_mode`; with `flip_tta` the mirrored image's logits are averaged in as
    log-probabilities (the mean of log-softmax)."""
    net.eval()
    outs = []
    with torch.inference_mode(), _autocast(device):
        for start in range(0, len(x_u8), batch_size):
            xb = _to_input(x_u8[start:start + batch_size].to(device, non_blocking=True), device)
            out = net(xb).float()
            if flip_tta:
                out = (out.log_softmax(1) + net(xb.flip(-1)).float().log_softmax(1)) / 2
            outs.append(out.cpu())
    if not outs:
        return torch.zeros(0, 0)
    return torch.cat(outs)


def _evaluate(net: nn.Module, x: torch.Tensor, y: torch.Tensor, cfg: TrainConfig
              ) -> tuple[float, float]:
    logits = predict_logits(net, x, cfg.device, cfg.eval_batch_size)
    loss = F.cross_entropy(logits, y.cpu()).item()
    acc = (logits.argmax(1) == y.cpu()).float().mean().item()
    return loss, acc


def _atomic_save(obj: dict, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _state_copy(net: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in net.state_dict().items()}


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint written by `train` (weights-only unpickling: no code can run)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt or foreign file: say which and why
        raise FmnistError(f"cannot read checkpoint {path}: {exc}") from exc


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.4f} acc {task.fields[acc]:.4f} "
                   "{task.fields[ips]:,.0f} img/s"),
        TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
        console=console, transient=False,
    )


def train(
    net: nn.Module,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    w_train: torch.Tensor | None,
    x_val: torch.Tensor | None,
    y_val: torch.Tensor | None,
    cfg: TrainConfig,
    on_epoch_end: Callable[[dict[str, Any]], None] | None = None,
) -> TrainResult:
    """Train `net` in place on uint8 images `[N, 1, H, W]` (int64 labels, optional per-sample
    weights of mean 1) and leave the best-validation weights in it when `restore_best`.

    Ctrl-C (KeyboardInterrupt) ends training cleanly after restoring the best weights so far."""
    cfg.check()
    dev = cfg.device
    from fmnist.models.nets import has_batch_norm  # local: nets imports nothing from here

    place(net, dev)
    opt = make_optimizer(net, cfg)
    n = len(x_train)
    steps_per_epoch = math.ceil(n / cfg.batch_size)
    total_steps = steps_per_epoch * cfg.epochs
    micro = cfg.batch_size
    if cfg.micro_batch and dev.type == "cpu" and not has_batch_norm(net):
        micro = min(cfg.batch_size, cfg.micro_batch)
    x_train, y_train = x_train.to(dev), y_train.to(dev)
    w_train = w_train.to(dev) if w_train is not None else None
    has_val = x_val is not None and len(x_val) > 0

    history: list[dict[str, Any]] = []
    best_score, best_epoch, best_state, bad_epochs = math.inf, None, None, 0
    start_epoch = 0
    ckpt_path = Path(cfg.checkpoint_dir) / CHECKPOINT_NAME if cfg.checkpoint_dir else None
    if cfg.resume:
        assert ckpt_path is not None
        if not ckpt_path.exists():
            raise FmnistError(f"nothing to resume: no {CHECKPOINT_NAME} in {ckpt_path.parent}")
        ck = load_checkpoint(ckpt_path)
        if ck.get("format") != CHECKPOINT_FORMAT or ck.get("fingerprint") != cfg.fingerprint:
            raise FmnistError(
                f"checkpoint {ckpt_path} was written for other settings or data "
                f"({ck.get('fingerprint')}); resume with the same model, parameters and data, "
                "or train afresh without --resume")
        net.load_state_dict(ck["net"])
        opt.load_state_dict(ck["opt"])
        history, best_score, best_epoch = ck["history"], ck["best_score"], ck["best_epoch"]
        best_state, bad_epochs, start_epoch = ck["best_state"], ck["bad_epochs"], ck["epoch"]
    if ckpt_path is not None:
        ckpt_path.parent.mkdir(parents=True, exist_ok=True)

    console = Console(stderr=True, quiet=not cfg.verbose)
    interrupted = stopped_early = False
    try:
        with _progress(console) as bar:
            task = bar.add_task("train", total=total_steps, completed=start_epoch * steps_per_epoch,
                                loss=math.nan, acc=math.nan, ips=0.0)
            for epoch in range(start_epoch, cfg.epochs):
                if cfg.patience is not None and bad_epochs >= cfg.patience:
                    break
                torch.manual_seed(cfg.seed * 100_003 + epoch)  # dropout noise of this epoch
                gen = torch.Generator(device=dev).manual_seed(cfg.seed * 100_003 + epoch)
                perm = torch.randperm(n, generator=gen, device=dev)
                net.train()
                t0 = time.perf_counter()
                sum_loss = torch.zeros((), device=dev)
                sum_correct = torch.zeros((), device=dev, dtype=torch.long)
                bar.update(task, description=f"epoch {epoch + 1}/{cfg.epochs}")
                for s in range(steps_per_epoch):
                    step = epoch * steps_per_epoch + s
                    lr = cfg.lr * lr_factor(cfg.schedule, cfg.warmup, step, total_steps)
                    for g in opt.param_groups:
                        g["lr"] = lr
                    idx = perm[s * cfg.batch_size:(s + 1) * cfg.batch_size]
                    b = len(idx)
                    opt.zero_grad(set_to_none=True)
                    for m0 in range(0, b, micro):
                        mi = idx[m0:m0 + micro]
                        xb = x_train[mi].float()
                        if cfg.augment:
                            xb = augment_batch(xb, cfg.augment, cfg.translate, gen)
                        xb = _to_input(xb, dev)
                        yb = y_train[mi]
                        with _autocast(dev):
                            logits = net(xb)
                        losses = F.cross_entropy(logits.float(), yb, reduction="none",
                                                 label_smoothing=cfg.label_smoothing)
                        if w_train is not None:
                            losses = losses * w_train[mi]
                        # Sum/b per micro-batch: the accumulated gradient equals the full batch's.
                        (losses.sum() / b).backward()
                        sum_loss += losses.detach().sum()
                        sum_correct += (logits.detach().argmax(1) == yb).sum()
                    opt.step()
                    if s % 10 == 9 or s == steps_per_epoch - 1:
                        seen = min((s + 1) * cfg.batch_size, n)
                        bar.update(task, completed=step + 1, loss=sum_loss.item() / seen,
                                   acc=sum_correct.item() / seen,
                                   ips=seen / (time.perf_counter() - t0))
                seconds = time.perf_counter() - t0
                rec: dict[str, Any] = {
                    "epoch": epoch + 1, "train_loss": sum_loss.item() / n,
                    "train_acc": sum_correct.item() / n, "val_loss": None, "val_acc": None,
                    "lr": lr, "seconds": round(seconds, 3), "images_per_s": round(n / seconds, 1)}
                if has_val:
                    rec["val_loss"], rec["val_acc"] = _evaluate(net, x_val, y_val, cfg)
                    if rec["val_loss"] < best_score:
                        best_score, best_epoch, bad_epochs = rec["val_loss"], epoch + 1, 0
                        best_state = _state_copy(net) if cfg.restore_best else None
                    else:
                        bad_epochs += 1
                history.append(rec)
                val = (f"val loss {rec['val_loss']:.4f} acc {rec['val_acc']:.4f}"
                       if has_val else "no validation split")
                bar.console.print(
                    f"epoch {epoch + 1}/{cfg.epochs}: train loss {rec['train_loss']:.4f} "
                    f"acc {rec['train_acc']:.4f} · {val} · {seconds:.1f} s "
                    f"({rec['images_per_s']:,.0f} img/s)")
                if ckpt_path is not None:
                    _atomic_save({
                        "format": CHECKPOINT_FORMAT, "fingerprint": cfg.fingerprint,
                        "epoch": epoch + 1, "net": net.state_dict(), "opt": opt.state_dict(),
                        "history": history, "best_score": best_score, "best_epoch": best_epoch,
                        "best_state": best_state, "bad_epochs": bad_epochs}, ckpt_path)
                if on_epoch_end is not None:
                    on_epoch_end(rec)
            stopped_early = (cfg.patience is not None and len(history) < cfg.epochs
                             and bad_epochs >= cfg.patience)
    except KeyboardInterrupt:
        interrupted = True
        console.print("[yellow]interrupted: keeping the best weights so far[/yellow]")
    if cfg.restore_best and best_state is not None:
        net.load_state_dict(best_state)
    net.eval()
    return TrainResult(history=copy.deepcopy(history), best_epoch=best_epoch,
                       interrupted=interrupted, stopped_early=stopped_early)
