"""The torch training loop: fast on a 2-core CPU and on a GPU, deterministic, resumable.

`train` reads like the algorithm (Lightning Fabric's trainer, skorch's fit_loop): set up → load
the checkpoint → for each epoch {`run_epoch` of `train_step`s, `validate`, notify the
callbacks}. Early stopping, lookahead, progress and checkpoints are callbacks
(`training/callbacks.py`); the whole state is written by `save_state` and read by `load_state`,
nowhere else.

Speed (measurements in docs/neural.md; GPU recipe after airbench, arXiv 2404.00498):
- the whole training set is one uint8 tensor on the device; a batch is a slice of a seeded
  permutation, converted to float on the fly (no DataLoader, no worker processes), augmented on
  the device (`training/augment.py`);
- channels_last everywhere, bf16 autocast on CUDA, fused optimiser steps on CUDA, and each
  full batch's forward and backward replayed as a CUDA graph (`training/graphs.py`: a small
  net is bound by Python and kernel launches there, not by the GPU);
- no host sync inside an epoch on a GPU: loss and accuracy are summed on the device and read
  once per epoch (on CPU the progress bar reads them every 10 steps, which costs nothing there);
  validation runs on the device too;
- on CPU a batch larger than `micro_batch` (twice that with bf16 steps) is split into
  micro-batches whose gradients are accumulated — exactly the same gradient when the net has no
  BatchNorm, but the activations stay in cache (7.7 s instead of 25 s per epoch for the seed CNN).
Exact resume: every epoch draws its permutation, augmentation and dropout from generators
seeded by (seed, epoch), and the learning rate is a pure function of the step, so a resumed
run replays exactly what an uninterrupted run would have done.
"""

from __future__ import annotations

import copy
import io
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from fmnist.errors import FmnistError
from fmnist.fileio import atomic_write_bytes
from fmnist.files import read_bounded
from fmnist.models.training import augment as aug
from fmnist.models.training.augment import parse_augment
from fmnist.models.training.callbacks import (
    Checkpoint,
    EarlyStopping,
    EpochHook,
    Lookahead,
    ProgressBar,
)
from fmnist.models.training.config import TrainConfig, TrainResult, pick_device
from fmnist.models.training.graphs import graph_forward
from fmnist.models.training.inference import (
    TTA_MODES,
    autocast,
    place,
    predict_logits,
    to_input,
    tta_logits,
)
from fmnist.models.training.optim import lr_factor, make_optimizer, set_lr
from fmnist.models.training.run import Callback, Run

__all__ = ["CHECKPOINT_NAME", "TTA_MODES", "TrainConfig", "TrainResult", "load_checkpoint",
           "lr_factor", "parse_augment", "pick_device", "place", "predict_logits", "train"]

CHECKPOINT_NAME = "checkpoint.pt"
CHECKPOINT_FORMAT = 2
# A checkpoint holds the net and its optimiser state: well under 1 GB for every model here.
MAX_CHECKPOINT_BYTES = 2 << 30
PROGRESS_EVERY = 10
"""Steps between progress-bar updates on CPU (never on a GPU: reading the sums would sync)."""


def _seed(cfg: TrainConfig, epoch: int) -> int:
    return cfg.seed * 100_003 + epoch


def setup(net: nn.Module, x: torch.Tensor, y: torch.Tensor, w: torch.Tensor | None,
          x_val: torch.Tensor | None, y_val: torch.Tensor | None, cfg: TrainConfig) -> Run:
    """Place the net and the data on the device, build the optimiser and the forward pass."""
    from fmnist.models.nets import has_batch_norm  # local: nets imports nothing from here

    dev = cfg.device
    place(net, dev)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN time its kernels once
    opt = make_optimizer(net, cfg.optimizer, cfg.lr, cfg.momentum, cfg.weight_decay,
                         cfg.bn_bias_lr, dev)
    micro = cfg.batch_size
    if cfg.micro_batch and dev.type == "cpu" and not has_batch_norm(net):
        # bf16 activations take half the bytes, so twice the images stay in cache (cnn-seed1:
        # 30 against 34 ms a 512-image step; in fp32 256 is 1.6× slower than 128)
        micro = min(cfg.batch_size, cfg.micro_batch * (2 if cfg.cpu_bf16 else 1))
    has_val = x_val is not None and len(x_val) > 0
    base_flip = None
    if "altflip" in cfg.augment:
        gen = torch.Generator(device=dev).manual_seed(_seed(cfg, -1))
        base_flip = torch.rand(len(x), generator=gen, device=dev) < 0.5
    x = x.to(dev)
    graphed = None
    if dev.type == "cuda" and cfg.cuda_graph and not cfg.compile and len(x) >= cfg.batch_size:
        graphed = graph_forward(net, to_input(x[:cfg.batch_size]))
    return Run(net=net, forward=torch.compile(net) if cfg.compile else net, opt=opt, cfg=cfg,
               x=x, y=y.to(dev), w=None if w is None else w.to(dev),
               x_val=x_val.to(dev) if has_val else None,
               y_val=y_val.to(dev) if has_val else None, micro=micro, base_flip=base_flip,
               graphed=graphed)


def train_step(run: Run, idx: torch.Tensor, step: int, gen: torch.Generator, epoch: int
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimiser step on the images `idx`; returns (summed loss, correct count) as device
    tensors — never read here, so a GPU is not made to wait."""
    cfg = run.cfg
    set_lr(run.opt, cfg.lr * lr_factor(cfg.schedule, cfg.warmup, step, run.total_steps))
    b = len(idx)
    run.opt.zero_grad(set_to_none=True)
    loss_sum = torch.zeros((), device=run.device)
    correct = torch.zeros((), device=run.device, dtype=torch.long)
    for m0 in range(0, b, run.micro):
        mi = idx[m0:m0 + run.micro]
        xb = run.x[mi].float()
        if cfg.augment:
            xb = aug.apply(xb, cfg.augment, aug.AugmentContext(
                gen=gen, epoch=epoch, indices=mi, translate=cfg.translate,
                base_flip=run.base_flip))
        yb = run.y[mi]
        forward = run.graphed if run.graphed is not None and len(mi) == cfg.batch_size \
            else run.forward
        with autocast(run.device, cpu_bf16=cfg.cpu_bf16):
            logits = forward(to_input(xb))
        losses = F.cross_entropy(logits.float(), yb, reduction="none",
                                 label_smoothing=cfg.label_smoothing)
        if run.w is not None:
            losses = losses * run.w[mi]
        # Sum/b per micro-batch: the accumulated gradient equals the full batch's.
        (losses.sum() / b).backward()
        loss_sum += losses.detach().sum()
        correct += (logits.detach().argmax(1) == yb).sum()
    run.opt.step()
    return loss_sum, correct


def run_epoch(run: Run, epoch: int) -> dict[str, Any]:
    """Train one epoch (seeded by (seed, epoch)) and return its record (no validation yet)."""
    cfg, dev = run.cfg, run.device
    torch.manual_seed(_seed(cfg, epoch))  # dropout noise of this epoch
    gen = torch.Generator(device=dev).manual_seed(_seed(cfg, epoch))
    perm = torch.randperm(run.n, generator=gen, device=dev)
    run.net.train()
    t0 = time.perf_counter()
    loss_sum = torch.zeros((), device=dev)
    correct = torch.zeros((), device=dev, dtype=torch.long)
    every = PROGRESS_EVERY if dev.type == "cpu" else 0
    for s in range(run.steps_per_epoch):
        step = epoch * run.steps_per_epoch + s
        idx = perm[s * cfg.batch_size:(s + 1) * cfg.batch_size]
        step_loss, step_correct = train_step(run, idx, step, gen, epoch)
        loss_sum += step_loss
        correct += step_correct
        run.notify("on_step_end", step)
        if every and (s % every == every - 1 or s == run.steps_per_epoch - 1):
            seen = min((s + 1) * cfg.batch_size, run.n)
            run.notify("on_progress", step, seen, loss_sum, correct, time.perf_counter() - t0)
    train_loss, train_acc = loss_sum.item() / run.n, correct.item() / run.n  # the one sync
    seconds = time.perf_counter() - t0
    return {"epoch": epoch + 1, "train_loss": train_loss, "train_acc": train_acc,
            "val_loss": None, "val_acc": None,
            "lr": cfg.lr * lr_factor(cfg.schedule, cfg.warmup, step, run.total_steps),
            "seconds": round(seconds, 3), "images_per_s": round(run.n / seconds, 1)}


@torch.inference_mode()
def validate(net: nn.Module, x: torch.Tensor, y: torch.Tensor, device: torch.device,
             batch_size: int, tta: str = "none", cpu_bf16: bool = False
             ) -> tuple[float, float]:
    """Mean cross-entropy and accuracy on images already on `device`, summed there and read
    once. A run whose steps are bf16 on a CPU validates in bf16 too: validation only ranks the
    epochs, and it is 1.5× faster there (cnn-seed1: 0.23 against 0.35 s for 12k images)."""
    net.eval()
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    with autocast(device, cpu_bf16=cpu_bf16):
        for start in range(0, len(x), batch_size):
            logits = tta_logits(net, to_input(x[start:start + batch_size]), tta)
            yb = y[start:start + batch_size]
            loss_sum += F.cross_entropy(logits.float(), yb, reduction="sum")
            correct += (logits.argmax(1) == yb).sum()
    return loss_sum.item() / len(x), correct.item() / len(x)


def save_state(run: Run, path: Path) -> None:
    """The one place the run's state is written, atomically (`fmnist.fileio`)."""
    state = {"format": CHECKPOINT_FORMAT, "fingerprint": run.cfg.fingerprint,
             "epoch": len(run.history), "net": run.net.state_dict(),
             "opt": run.opt.state_dict(), "history": run.history,
             "callbacks": {cb.name: cb.state_dict() for cb in run.callbacks}}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    atomic_write_bytes(path, buffer.getvalue())


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A checkpoint written by `save_state`: a bounded read of a regular file (never a device,
    FIFO or huge file), then weights-only unpickling (no code can run)."""
    data = read_bounded(path, MAX_CHECKPOINT_BYTES, what="checkpoint", error=FmnistError)
    try:
        checkpoint = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # corrupt or foreign file: say which and why
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FmnistError(f"cannot read checkpoint {path}: {reason}") from None
    if not isinstance(checkpoint, dict):
        raise FmnistError(f"cannot read checkpoint {path}: not a checkpoint of fmnist")
    return checkpoint


def load_state(run: Run, path: Path) -> None:
    """The one place the run's state is read back; refuses a checkpoint of other settings."""
    if not path.exists():
        raise FmnistError(f"nothing to resume: no {CHECKPOINT_NAME} in {path.parent}")
    ck = load_checkpoint(path)
    if ck.get("format") != CHECKPOINT_FORMAT or ck.get("fingerprint") != run.cfg.fingerprint:
        raise FmnistError(
            f"checkpoint {path} was written for other settings or data "
            f"({ck.get('fingerprint')}); resume with the same model, parameters and data, "
            "or train afresh without --resume")
    try:
        run.net.load_state_dict(ck["net"])
        run.opt.load_state_dict(ck["opt"])
        run.history, run.start_epoch = list(ck["history"]), int(ck["epoch"])
        for cb in run.callbacks:
            if cb.name in ck["callbacks"]:
                cb.load_state_dict(ck["callbacks"][cb.name])
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as exc:
        raise FmnistError(f"checkpoint {path} is damaged ({type(exc).__name__}); train afresh "
                          "without --resume") from None


def _callbacks(cfg: TrainConfig, ckpt: Path | None,
               on_epoch_end: Callable[[dict[str, Any]], None] | None) -> list[Callback]:
    """In notification order: state-changing callbacks first (lookahead's final average before
    the best-weight restore), then display, saving, the hook."""
    cbs: list[Callback] = [Lookahead()] if cfg.lookahead else []
    cbs += [EarlyStopping(cfg.patience, cfg.restore_best), ProgressBar(cfg.verbose)]
    if ckpt is not None:
        cbs.append(Checkpoint(lambda run: save_state(run, ckpt)))
    if on_epoch_end is not None:
        cbs.append(EpochHook(on_epoch_end))
    return cbs


def train(net: nn.Module, x_train: torch.Tensor, y_train: torch.Tensor,
          w_train: torch.Tensor | None, x_val: torch.Tensor | None, y_val: torch.Tensor | None,
          cfg: TrainConfig, on_epoch_end: Callable[[dict[str, Any]], None] | None = None,
          ) -> TrainResult:
    """Train `net` in place on uint8 images `[N, 1, H, W]` (int64 labels, optional per-sample
    weights of mean 1) and leave the best-validation weights in it when `restore_best`.

    Ctrl-C (KeyboardInterrupt) ends training cleanly after restoring the best weights so far."""
    cfg.check()
    benchmark = torch.backends.cudnn.benchmark
    run = setup(net, x_train, y_train, w_train, x_val, y_val, cfg)
    ckpt = Path(cfg.checkpoint_dir) / CHECKPOINT_NAME if cfg.checkpoint_dir else None
    run.callbacks = _callbacks(cfg, ckpt, on_epoch_end)
    if cfg.resume:
        assert ckpt is not None
        load_state(run, ckpt)
    if ckpt is not None:
        ckpt.parent.mkdir(parents=True, exist_ok=True)
    stopper = next(cb for cb in run.callbacks if isinstance(cb, EarlyStopping))
    progress = next(cb for cb in run.callbacks if isinstance(cb, ProgressBar))
    interrupted = False
    run.notify("on_train_begin")
    try:
        for epoch in range(run.start_epoch, cfg.epochs):
            if stopper.should_stop:
                break
            rec = run_epoch(run, epoch)
            if run.x_val is not None:
                rec["val_loss"], rec["val_acc"] = validate(
                    net, run.x_val, run.y_val, run.device, cfg.eval_batch_size,
                    cfg.val_tta, cpu_bf16=cfg.cpu_bf16)
            run.history.append(rec)
            run.notify("on_epoch_end", rec)
    except KeyboardInterrupt:
        interrupted = True
        progress.interrupted()
    finally:
        run.notify("on_train_end")
        torch.backends.cudnn.benchmark = benchmark  # `setup` turned it on for CUDA
    net.eval()
    return TrainResult(history=copy.deepcopy(run.history), best_epoch=stopper.best_epoch,
                       interrupted=interrupted,
                       stopped_early=stopper.should_stop and len(run.history) < cfg.epochs)
