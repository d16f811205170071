"""CUDA graphs for the training step's forward and backward pass (issue 13, one H100).

A small net on a GPU is bound by the host, not the GPU: the default `cnn` at batch 1024 took
≈ 7.7 ms of Python and kernel launches a step for 2.35 ms of GPU work (torch.profiler, H100,
benchmarks/RESULTS.md). `torch.cuda.make_graphed_callables` records the net's forward and its
backward once and replays each as one launch, so a step costs the GPU's time. Loss, optimiser,
augmentation and the learning-rate schedule stay outside the graph and are unchanged.

A graph has fixed shapes: it serves the full batches, and the last, smaller batch of an epoch
runs eagerly on the same parameters. Capturing runs the net four times on a sample batch
(three warm-ups and the recording); the BatchNorm statistics those runs would move are put back
afterwards, so graphing changes no state the net had.

Autograd warns once that the parameters' gradient accumulators were made on the capture's side
stream and are now fed from the main one: a stream wait per step, no error (measured: the
default `cnn` went from 154k to 296k images/s, 370k after its first fit). On an H100 (torch
2.11) it reached the terminal once in every process that trained with graphs, past a warnings
filter around the training loop — so from the capture, before that loop. `graph_forward` turns it
off with torch's own switch before capturing; `warnings.catch_warnings` would not do, as it is
not thread-safe.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from fmnist.models.training.inference import autocast


def graph_forward(net: nn.Module, sample: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """The training-mode forward of `net` on inputs shaped like `sample`, as a CUDA graph whose
    backward is a graph too; `net` itself is left as it was (its own forward, its buffers)."""
    saved = {name: buf.clone() for name, buf in net.named_buffers()}
    quiet = getattr(torch.autograd.graph, "set_warn_on_accumulate_grad_stream_mismatch", None)
    if quiet is not None:  # newer torch only; the warning is expected with graphs (above)
        quiet(False)
    net.train()
    try:
        with autocast(sample.device):
            torch.cuda.make_graphed_callables(net, (sample,), allow_unused_input=True)
        return net.forward  # make_graphed_callables set the module's forward to the graph's
    finally:
        net.__dict__.pop("forward", None)  # the class's forward: eval mode, other shapes, copies
        with torch.no_grad():
            for name, buf in net.named_buffers():
                buf.copy_(saved[name])
