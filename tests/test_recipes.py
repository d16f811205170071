"""The fast-training ingredients (issue 13) one by one on small real subsets: patch whitening,
dirac init, frozen BN scales and the BN-bias learning rate, the alternating flip, lookahead,
the triangular schedule, test-time views, the augmentation registry, and the whole recipe's
determinism and exact resume. Each test runs in seconds on 2 cores."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fmnist.errors import ConfigError, FmnistError
from fmnist.models import create_model
from fmnist.models.engine import Run, TrainConfig, train
from fmnist.models.nets import PatchWhitening, SpeedNet, build_net, count_params
from fmnist.models.torch_estimator import TorchClassifier
from fmnist.models.training import augment as aug
from fmnist.models.training.callbacks import Lookahead
from fmnist.models.training.inference import tta_logits, tta_views
from fmnist.models.training.optim import lr_factor, make_optimizer, param_groups, set_lr

SPEED = {"arch": "speednet", "width": 8, "optimizer": "sgd", "lr": 0.2, "momentum": 0.85,
         "weight_decay": 5e-4, "bn_bias_lr": 16.0, "schedule": "triangular", "warmup": 0.0,
         "label_smoothing": 0.2, "lookahead": True, "augment": "translate,altflip",
         "tta": "flip-shift", "batch_size": 64, "verbose": False, "random_state": 0}


def _raw(data) -> torch.Tensor:
    return torch.from_numpy(data.images.copy()).unsqueeze(1)


# -- whitening, dirac, frozen BN -----------------------------------------------------------------
def test_patch_whitening_decorrelates_patches_to_unit_variance(small_train) -> None:
    net = SpeedNet(width=8)
    x = _raw(small_train)[:1000]
    net.init_from_data(x)
    stem = net.features[1]
    assert isinstance(stem, PatchWhitening) and not stem.conv.weight.requires_grad
    w = stem.conv.weight.detach().double().view(8, 4)
    cov = stem.patch_covariance(net.features[0](x.float()))
    eigvals = torch.linalg.eigvalsh(cov).flip(0)
    white = w[:4] @ cov @ w[:4].T  # the positive half: W Σ Wᵀ = diag(λ / (λ + eps))
    np.testing.assert_allclose(white.numpy(), torch.diag(eigvals / (eigvals + 5e-4)).numpy(),
                               atol=1e-6)
    assert torch.equal(w[4:], -w[:4])  # ± pairs, so a ReLU-like activation keeps both signs
    assert cov.shape == (4, 4) and (eigvals > 0).all()


def test_fit_sets_the_whitening_filters_from_the_training_images(small_train) -> None:
    model = TorchClassifier(**{**SPEED, "epochs": 1, "val_fraction": 0.0})
    model.fit(small_train.images[:256], small_train.labels[:256])
    w = model.net_.features[1].conv.weight.detach().double().view(8, 4)
    assert torch.linalg.matrix_rank(w[:4]) == 4  # not the random init: an orthogonal basis
    gram = (w[:4] / w[:4].norm(dim=1, keepdim=True)) @ (w[:4] / w[:4].norm(dim=1, keepdim=True)).T
    np.testing.assert_allclose(gram.numpy(), np.eye(4), atol=1e-5)


def test_dirac_init_makes_each_conv_start_as_identity_on_its_inputs() -> None:
    net = SpeedNet(width=8, whiten=False)
    conv = net.features[3][4]  # the first group's second conv: 8 → 8 channels
    assert isinstance(conv, torch.nn.Conv2d) and conv.in_channels == conv.out_channels == 8
    x = torch.randn(2, 8, 6, 6)
    torch.testing.assert_close(conv(x), x)


def test_batchnorm_scales_are_frozen_and_biases_get_their_own_learning_rate() -> None:
    net = build_net("speednet", width=8)
    bns = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns and all(not bn.weight.requires_grad and bn.bias.requires_grad for bn in bns)
    groups = param_groups(net, weight_decay=1e-3, bn_bias_lr=64.0)
    bias_group = next(g for g in groups if g["lr_scale"] == 64.0)
    assert {id(p) for p in bias_group["params"]} == {id(bn.bias) for bn in bns}
    assert bias_group["weight_decay"] == 0.0
    assert sum(p.numel() for g in groups for p in g["params"]) == count_params(net)
    opt = make_optimizer(net, "sgd", 0.1, 0.9, 1e-3, 64.0, torch.device("cpu"))
    set_lr(opt, 0.5)
    assert sorted(g["lr"] for g in opt.param_groups) == [0.5, 0.5, 32.0]


# -- schedule, alternating flip, lookahead --------------------------------------------------------
def test_triangular_schedule_rises_to_one_then_falls_to_seven_percent() -> None:
    values = [lr_factor("triangular", 0.25, s, 100) for s in range(101)]
    assert values[0] == pytest.approx(0.2) and values[25] == pytest.approx(1.0)
    assert values[100] == pytest.approx(0.07) and max(values) == pytest.approx(1.0)
    assert values[:26] == sorted(values[:26]) and values[25:] == sorted(values[25:], reverse=True)


def test_alternating_flip_shows_every_image_once_each_way_per_two_epochs() -> None:
    base = torch.rand(1000, generator=torch.Generator().manual_seed(0)) < 0.5
    e0, e1, e2 = (aug.alternating_flip_mask(base, e) for e in (0, 1, 2))
    assert torch.equal(e0, base) and torch.equal(e1, ~base) and torch.equal(e2, e0)
    ramp = torch.arange(28.0).expand(1000, 1, 28, 28)
    ctx = aug.AugmentContext(gen=torch.Generator(), epoch=1, indices=torch.arange(1000),
                             base_flip=base)
    out = aug.altflip(ramp, ctx)
    mirrored = (out == ramp.flip(-1)).all(dim=(1, 2, 3))
    assert torch.equal(mirrored, ~base)
    with pytest.raises(FmnistError, match="choose one"):
        aug.parse_augment("flip,altflip")


class _Tiny(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = torch.nn.Linear(2, 2)


def _run_of(net: torch.nn.Module, total_steps: int) -> Run:
    cfg = TrainConfig(epochs=1, batch_size=total_steps)
    x = torch.zeros(total_steps * total_steps, 1, 1, 1, dtype=torch.uint8)
    return Run(net=net, forward=net, opt=torch.optim.SGD(net.parameters(), lr=0.1), cfg=cfg,
               x=x, y=torch.zeros(len(x), dtype=torch.long), w=None, x_val=None, y_val=None,
               micro=1, base_flip=None)


def test_lookahead_moves_an_average_and_sets_the_net_to_it() -> None:
    net = _Tiny()
    run = _run_of(net, total_steps=10)
    look = Lookahead(every=5, decay=0.5, power=1.0)
    look.on_train_begin(run)
    start = net.lin.weight.detach().clone()
    with torch.no_grad():
        net.lin.weight.add_(1.0)
    look.on_step_end(run, 3)  # step 4: not an update step
    torch.testing.assert_close(net.lin.weight, start + 1)
    look.on_step_end(run, 4)  # step 5 of 10: decay = 0.5 × (5/10)¹ = 0.25
    expected = 0.25 * start + 0.75 * (start + 1)
    torch.testing.assert_close(net.lin.weight.detach(), expected)
    torch.testing.assert_close(look.ema["lin.weight"], expected)
    with torch.no_grad():
        net.lin.weight.add_(5.0)
    look.on_train_end(run)  # the net ends on the average, not on the last raw steps
    torch.testing.assert_close(net.lin.weight.detach(), expected)


# -- test-time views ------------------------------------------------------------------------
def test_tta_views_are_weighted_flips_and_one_pixel_shifts() -> None:
    x = torch.zeros(3, 1, 28, 28)
    x[:, :, 10, 5] = 255
    views = tta_views(x, "flip-shift")
    assert len(views) == 6 and sum(w for _, w in views) == pytest.approx(1.0)
    assert all(v.shape == x.shape for v, _ in views)
    assert torch.equal(views[1][0], x.flip(-1))
    assert views[2][0][0, 0, 9, 4] == 255 and views[4][0][0, 0, 11, 6] == 255  # (−1,−1), (+1,+1)
    assert [w for _, w in tta_views(x, "flip")] == [0.5, 0.5]
    assert len(tta_views(x, "none")) == 1


def test_tta_logits_of_a_mirror_symmetric_net_equal_its_log_probabilities() -> None:
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                              torch.nn.Linear(1, 4))
    x = torch.rand(5, 1, 28, 28) * 255
    torch.testing.assert_close(tta_logits(net, x, "flip"), net(x).log_softmax(1))


def test_tta_settings_are_checked_against_training() -> None:
    images = np.zeros((20, 28, 28), np.uint8)
    labels = np.arange(20) % 2
    with pytest.raises(FmnistError, match="needs translate"):
        TorchClassifier(**{**SPEED, "augment": "altflip"}).fit(images, labels)
    with pytest.raises(FmnistError, match="unknown tta"):
        TorchClassifier(**{**SPEED, "tta": "rotate"}).fit(images, labels)


# -- the augmentation registry (the hook for photo hardening) --------------------------------------
def test_a_registered_augmentation_runs_on_each_training_batch(small_train) -> None:
    seen: list[tuple[int, ...]] = []

    def darken(x: torch.Tensor, ctx: aug.AugmentContext) -> torch.Tensor:
        seen.append((tuple(x.shape), ctx.epoch))
        return x * 0.5

    aug.register_augmentation("test-darken", darken)
    assert "test-darken" in aug.augmentation_names()
    with pytest.raises(FmnistError, match="already registered"):
        aug.register_augmentation("test-darken", lambda x, ctx: x)
    TorchClassifier(arch="cnn", width=4, depth=2, epochs=2, batch_size=50, val_fraction=0.0,
                    augment="translate,test-darken", verbose=False).fit(
        small_train.images[:100], small_train.labels[:100])
    assert seen == [((50, 1, 28, 28), 0)] * 2 + [((50, 1, 28, 28), 1)] * 2
    with pytest.raises(FmnistError, match="unknown augmentation"):
        aug.parse_augment("translate,nope")


# -- the whole recipe ------------------------------------------------------------------------
@pytest.mark.parametrize(("n_train", "batch"), [(60_000, 1024), (54_000, 1024),
                                                 (20_000, 256), (3_000, 128), (600, 128)])
def test_a_gpu_batch_is_as_large_as_fifty_steps_an_epoch_allow(n_train, batch) -> None:
    gpu, cpu = torch.device("cuda"), torch.device("cpu")
    cnn = create_model("cnn")  # lr 0.5 per 128, scaled by the square root
    assert cnn.batch_and_lr(gpu, n_train) == pytest.approx((batch, 0.5 * (batch / 128) ** 0.5))
    assert cnn.batch_and_lr(cpu, n_train) == (128, 0.5)
    fast = create_model("speednet")  # lr 0.19 per 128, scaled linearly
    assert fast.batch_and_lr(gpu, n_train) == pytest.approx((batch, 0.19 * batch / 128))
    fixed = create_model("cnn", batch_size=64, lr=0.1)
    assert fixed.batch_and_lr(gpu, n_train) == (64, 0.1)


def test_an_unknown_lr_scaling_is_refused() -> None:
    with pytest.raises(ConfigError, match="lr_scaling"):
        create_model("cnn", lr_scaling="cubic").batch_and_lr(torch.device("cuda"), 60_000)


def test_cuda_graphs_are_for_cuda_only_and_not_part_of_a_runs_identity(small_train) -> None:
    from fmnist.models.engine import setup

    x, y = _raw(small_train)[:256], torch.from_numpy(small_train.labels[:256].astype(np.int64))
    run = setup(SpeedNet(width=8), x, y, None, None, None, TrainConfig(batch_size=64))
    assert run.graphed is None  # a CPU step is not bound by kernel launches
    a = TorchClassifier(**SPEED, cuda_graph=True)._fingerprint(x.numpy(), y.numpy(), None)
    b = TorchClassifier(**SPEED, cuda_graph=False)._fingerprint(x.numpy(), y.numpy(), None)
    assert a == b  # a checkpoint resumes with or without graphs: the same computation


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA GPU")
def test_a_graphed_step_computes_the_eager_step_and_leaves_the_net_as_it_was(small_train
                                                                              ) -> None:
    from fmnist.models.training.graphs import graph_forward
    from fmnist.models.training.inference import autocast, place, to_input

    dev = torch.device("cuda")
    net = place(SpeedNet(width=8), dev)
    x = to_input(_raw(small_train)[:64].to(dev))
    y = torch.from_numpy(small_train.labels[:64].astype(np.int64)).to(dev)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    graphed = graph_forward(net, x)
    assert "forward" not in net.__dict__  # the module's own forward is back
    assert all(torch.equal(v, before[k]) for k, v in net.state_dict().items())

    def grads(forward) -> list[torch.Tensor]:
        net.zero_grad(set_to_none=True)
        with autocast(dev):
            torch.nn.functional.cross_entropy(forward(x).float(), y).backward()
        return [p.grad.clone() for p in net.parameters() if p.requires_grad]

    eager = grads(net)
    for g, e in zip(grads(graphed), eager, strict=True):
        torch.testing.assert_close(g, e, rtol=2e-2, atol=1e-3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA GPU")
def test_a_graphed_training_prints_no_autograd_stream_warning(small_train, tmp_path) -> None:
    """torch 2.11 warned once per process, from the capture, that the gradient accumulators'
    stream differs (expected with graphs, a stream wait per step): every `fmnist train` on a GPU
    printed it. A fresh process, since the warning comes only once per process."""
    import subprocess
    import sys

    code = ("import numpy as np, torch; from fmnist.models.torch_estimator import "
            "TorchClassifier as T; x = np.load('x.npy'); y = np.load('y.npy'); "
            f"T(**{dict(SPEED, device='cuda', epochs=1)!r}).fit(x, y)")
    np.save(tmp_path / "x.npy", small_train.images[:512])
    np.save(tmp_path / "y.npy", small_train.labels[:512])
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "AccumulateGrad" not in done.stderr, done.stderr


def test_speed_recipe_learns_and_is_deterministic(small_train, small_test) -> None:
    data = small_train.head(n_per_class=60)
    params = {**SPEED, "epochs": 2, "batch_size": 32, "val_fraction": 0.0}
    a = TorchClassifier(**params).fit(data.images, data.labels)
    b = TorchClassifier(**params).fit(data.images, data.labels)
    assert all(torch.equal(v, b.state_tensors()[k]) for k, v in a.state_tensors().items())
    # 38 steps of a width-8 net from scratch (measured 0.47); chance is 0.1.
    assert a.score(small_test.images, small_test.labels) > 0.35
    assert a.tta_mode_ == "flip-shift"


def test_speed_recipe_resumes_exactly_with_its_lookahead_state(small_train, tmp_path) -> None:
    data = small_train.head(n_per_class=30)
    x = torch.from_numpy(data.images.copy()).unsqueeze(1)
    y = torch.from_numpy(data.labels.astype(np.int64))
    cfg = {"epochs": 3, "batch_size": 32, "lr": 0.1, "optimizer": "sgd", "lookahead": True,
           "augment": frozenset({"translate", "altflip"}), "verbose": False,
           "schedule": "triangular", "bn_bias_lr": 8.0}

    def net() -> torch.nn.Module:
        torch.manual_seed(0)
        return build_net("speednet", width=4)

    straight = net()
    train(straight, x, y, None, None, None, TrainConfig(**cfg))

    def interrupt(rec: dict) -> None:
        if rec["epoch"] == 2:
            raise KeyboardInterrupt

    part = net()
    first = train(part, x, y, None, None, None,
                  TrainConfig(**cfg, checkpoint_dir=str(tmp_path)), on_epoch_end=interrupt)
    assert first.interrupted and len(first.history) == 2
    resumed = net()
    result = train(resumed, x, y, None, None, None,
                   TrainConfig(**cfg, checkpoint_dir=str(tmp_path), resume=True))
    assert [h["epoch"] for h in result.history] == [1, 2, 3]
    for k, v in straight.state_dict().items():
        assert torch.equal(v, resumed.state_dict()[k]), k


def test_speednet_with_shift_tta_saves_reloads_and_exports_identically(small_train, small_test,
                                                                       tmp_path) -> None:
    from fmnist.runs import export, store

    model = TorchClassifier(**{**SPEED, "epochs": 1, "val_fraction": 0.0})
    model.fit(small_train.images[:300], small_train.labels[:300])
    store.save(model, tmp_path / "run", {"model": "speednet"})
    run = store.load(tmp_path / "run")
    assert run.model.tta_mode_ == "flip-shift"
    np.testing.assert_array_equal(run.model.predict_proba(small_test.images[:100]),
                                  model.predict_proba(small_test.images[:100]))
    pytest.importorskip("onnxruntime")
    onnx_path, _ = export.export_onnx(run, tmp_path / "model.onnx",
                                      images=small_test.images[:100])
    np.testing.assert_allclose(export.onnx_probabilities(onnx_path, small_test.images[:100]),
                               model.predict_proba(small_test.images[:100]), atol=1e-4)
