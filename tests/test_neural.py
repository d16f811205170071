"""Neural models: architectures, the training engine and the sklearn wrapper, on real data
subsets (a few hundred to 2,000 images, one or two epochs: the whole file runs in well under a
minute on 2 cores)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from fmnist.errors import FmnistError
from fmnist.models import create_model, get_spec
from fmnist.models.engine import TrainConfig, lr_factor, parse_augment, train
from fmnist.models.nets import ARCHS, build_net, count_params
from fmnist.models.neural import build_adaboost
from fmnist.models.torch_estimator import BoostedTorchClassifier, TorchClassifier
from fmnist.models.training.augment import AugmentContext, apply

NEURAL = ("cnn-seed1", "cnn-seed2", "cnn-seed3", "cnn", "resnet", "vgg", "mlp", "adaboost-cnn")
TINY = {"arch": "cnn", "width": 4, "depth": 2, "verbose": False, "random_state": 0}


def _weights(model: TorchClassifier) -> dict[str, torch.Tensor]:
    return model.state_tensors()


def _same(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# -- architectures ------------------------------------------------------------------------------
EXPECTED_PARAMS = {"seed1": 693_962, "seed2": 290_954, "seed3": 289_610, "cnn": 113_386,
                   "resnet": 272_186, "vgg": 1_121_242, "mlp": 535_818, "speednet": 1_962_120}


@pytest.mark.parametrize("arch", ARCHS)
def test_architecture_output_shape_and_parameter_count(arch: str) -> None:
    net = build_net(arch)
    assert count_params(net) == EXPECTED_PARAMS[arch]
    assert net(torch.zeros(3, 1, 28, 28)).shape == (3, 10)


def test_seed_cnn1_matches_the_keras_summary_layer_by_layer() -> None:
    net = build_net("seed1")
    shapes = [tuple(p.shape) for p in net.parameters()]
    # Conv2D(32, 3×3): 320; Dense(5408 → 128): 692,352; Dense(128 → 10): 1,290.
    assert shapes == [(32, 1, 3, 3), (32,), (128, 5408), (128,), (10, 128), (10,)]


def test_vgg_has_13_convolutions_and_3_linear_layers() -> None:
    net = build_net("vgg")
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    linears = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    assert (len(convs), len(linears)) == (13, 3)


def test_networks_accept_other_image_sizes() -> None:
    for arch in ("seed1", "cnn", "resnet", "vgg", "mlp", "speednet"):
        assert build_net(arch, (40, 32))(torch.zeros(2, 1, 40, 32)).shape == (2, 10)


@pytest.mark.parametrize("side", [28, 7])
def test_a_strided_resnet_shortcut_is_a_strided_one_by_one_convolution(side: int) -> None:
    from fmnist.models.nets import BasicBlock

    torch.manual_seed(0)
    block = BasicBlock(4, 8, stride=2).eval()
    x = torch.randn(3, 4, side, side)
    conv, bn = block.shortcut
    strided = bn(torch.nn.functional.conv2d(x, conv.weight, stride=2))
    reference = torch.relu(block.body(x) + strided)
    torch.testing.assert_close(block(x), reference)


def test_a_narrow_resnet_trains_channels_last_on_this_cpu() -> None:
    # torch 2.13's 1×1 stride-2 channels_last convolution backward corrupted memory on AVX2
    # CPUs at these widths (the process died); the shortcut no longer uses it.
    torch.manual_seed(0)
    net = build_net("resnet", width=4, depth=1).to(memory_format=torch.channels_last)
    for _ in range(20):
        x = torch.randn(128, 1, 28, 28).contiguous(memory_format=torch.channels_last)
        net.zero_grad()
        net(x).sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())


def test_unused_or_unknown_architecture_options_are_user_errors() -> None:
    with pytest.raises(FmnistError, match="no option width"):
        build_net("mlp", width=8)
    with pytest.raises(FmnistError, match="unknown architecture"):
        build_net("alexnet")


@pytest.mark.parametrize("name", NEURAL)
def test_registry_builds_every_neural_model_with_its_quick_overrides(name: str) -> None:
    spec = get_spec(name)
    assert spec.family == "neural"
    model = create_model(name, **spec.quick)
    assert model.get_params()  # a real sklearn estimator
    assert create_model(name, epochs=1).get_params()["epochs" if name != "adaboost-cnn"
                                                     else "estimator__epochs"] == 1


# -- engine pieces ------------------------------------------------------------------------------
def augment_batch(x: torch.Tensor, ops: frozenset[str], translate: int,
                  gen: torch.Generator) -> torch.Tensor:
    ctx = AugmentContext(gen=gen, epoch=0, indices=torch.arange(len(x)), translate=translate)
    return apply(x, ops, ctx)


def test_translate_pads_with_black_and_flip_mirrors() -> None:
    x = torch.full((64, 1, 28, 28), 255.0)
    gen = torch.Generator().manual_seed(0)
    shifted = augment_batch(x, frozenset({"translate"}), 2, gen)
    assert shifted.shape == x.shape
    assert set(shifted.unique().tolist()) == {0.0, 255.0}  # background fill is black, not grey
    assert (shifted == 0).any() and (shifted == 255).all(dim=(1, 2, 3)).any()
    ramp = torch.arange(28.0).expand(8, 1, 28, 28)
    flipped = augment_batch(ramp, frozenset({"flip"}), 0, gen)
    mirrored = (flipped == ramp.flip(-1)).all(dim=(1, 2, 3))
    unchanged = (flipped == ramp).all(dim=(1, 2, 3))
    assert bool((mirrored | unchanged).all()) and mirrored.any()


def test_random_erasing_blacks_out_a_box_in_about_half_the_images() -> None:
    x = torch.full((400, 1, 28, 28), 200.0)
    out = augment_batch(x, frozenset({"erase"}), 0, torch.Generator().manual_seed(1))
    erased = (out == 0).any(dim=(1, 2, 3)).float().mean().item()
    assert 0.35 < erased < 0.65
    assert set(out.unique().tolist()) <= {0.0, 200.0}


def test_parse_augment() -> None:
    assert parse_augment(True) == {"translate", "flip", "erase"}
    assert parse_augment("flip, translate") == {"flip", "translate"}
    assert parse_augment(False) == frozenset()
    with pytest.raises(FmnistError, match="unknown augmentation"):
        parse_augment("rotate")


def test_schedules_warm_up_and_decay() -> None:
    assert lr_factor("linear", 0.2, 0, 100) == 0
    assert lr_factor("linear", 0.2, 20, 100) == pytest.approx(1)
    assert lr_factor("linear", 0.2, 99, 100) < 0.02
    assert lr_factor("cosine", 0.0, 50, 100) == pytest.approx(0.5)
    assert lr_factor("onecycle", 0.3, 0, 100) == pytest.approx(1 / 25)
    assert lr_factor("constant", 0.0, 77, 100) == 1


# -- training on real data ------------------------------------------------------------------
def test_short_training_is_clearly_above_chance(small_train, small_test) -> None:
    model = TorchClassifier(**{**TINY, "width": 8}, epochs=2, batch_size=64, val_fraction=0.1)
    model.fit(small_train.images, small_train.labels)
    assert model.score(small_test.images, small_test.labels) > 0.6  # chance is 0.1
    assert [h["epoch"] for h in model.history_] == [1, 2]
    assert set(model.history_[0]) == {"epoch", "train_loss", "train_acc", "val_loss", "val_acc",
                                      "lr", "seconds", "images_per_s"}
    proba = model.predict_proba(small_test.images[:5])
    assert proba.shape == (5, 10) and np.allclose(proba.sum(1), 1)


def test_seed_cnn_trains_with_micro_batches(small_train, small_test) -> None:
    model = create_model("cnn-seed1", epochs=2, verbose=False, batch_size=256)
    model.fit(small_train.images, small_train.labels)
    assert model.score(small_test.images, small_test.labels) > 0.5


def test_micro_batches_hold_twice_the_images_with_bf16_steps() -> None:
    from fmnist.models.engine import setup

    x, y = torch.zeros((8, 1, 28, 28), dtype=torch.uint8), torch.zeros(8, dtype=torch.long)
    micro = {}
    for arch, bf16 in (("seed1", False), ("seed1", True), ("speednet", True)):
        cfg = TrainConfig(batch_size=512, cpu_bf16=bf16)
        micro[arch, bf16] = setup(build_net(arch), x, y, None, None, None, cfg).micro
    # bf16 activations take half the bytes; BatchNorm nets are never split (it would change
    # their batch statistics)
    assert micro == {("seed1", False): 128, ("seed1", True): 256, ("speednet", True): 512}


def test_validation_follows_the_step_precision(small_train) -> None:
    """A run of bf16 steps validates in bf16 (it only ranks epochs, and runs 1.5× faster):
    the same accuracy within a few images, a loss that shows the bf16 rounding; fp32 runs
    validate in fp32 exactly as the prediction path computes."""
    from fmnist.models.engine import validate
    from fmnist.models.training.inference import place, predict_logits

    torch.manual_seed(0)
    net = place(build_net("seed1"), torch.device("cpu"))
    data = small_train.head(n_per_class=30)
    x = torch.from_numpy(data.images.copy()).reshape(-1, 1, 28, 28)
    y = torch.from_numpy(data.labels.astype(np.int64))
    cpu = torch.device("cpu")
    loss32, acc32 = validate(net, x, y, cpu, 64)
    loss16, acc16 = validate(net, x, y, cpu, 64, cpu_bf16=True)
    expected = torch.nn.functional.cross_entropy(predict_logits(net, x, cpu), y).item()
    assert loss32 == pytest.approx(expected, rel=1e-5)
    assert loss16 != loss32 and loss16 == pytest.approx(loss32, rel=0.02)
    assert abs(acc16 - acc32) <= 3 / len(y)


def test_same_seed_gives_the_same_weights(small_train) -> None:
    data = small_train.head(n_per_class=40)
    params = {**TINY, "epochs": 1, "batch_size": 32, "augment": True, "val_fraction": 0.2}
    a = TorchClassifier(**params).fit(data.images, data.labels)
    b = TorchClassifier(**params).fit(data.images, data.labels)
    c = TorchClassifier(**{**params, "random_state": 1}).fit(data.images, data.labels)
    assert _same(_weights(a), _weights(b))
    assert not _same(_weights(a), _weights(c))


def test_resume_continues_where_it_stopped(small_train, tmp_path) -> None:
    data = small_train.head(n_per_class=40)
    params = {**TINY, "batch_size": 32, "augment": "translate,flip", "schedule": "constant",
              "warmup": 0.0, "val_fraction": 0.2, "restore_best": False}
    straight = TorchClassifier(**params, epochs=3).fit(data.images, data.labels)
    TorchClassifier(**params, epochs=2, checkpoint_dir=str(tmp_path)).fit(
        data.images, data.labels)
    assert (tmp_path / "checkpoint.pt").exists()
    resumed = TorchClassifier(**params, epochs=3, checkpoint_dir=str(tmp_path), resume=True)
    resumed.fit(data.images, data.labels)
    assert [h["epoch"] for h in resumed.history_] == [1, 2, 3]
    assert resumed.history_[2]["train_loss"] == straight.history_[2]["train_loss"]
    assert _same(_weights(resumed), _weights(straight))  # identical to never stopping


def test_resume_refuses_other_settings_or_a_missing_checkpoint(small_train, tmp_path) -> None:
    data = small_train.head(n_per_class=20)
    with pytest.raises(FmnistError, match="nothing to resume"):
        TorchClassifier(**TINY, checkpoint_dir=str(tmp_path), resume=True).fit(
            data.images, data.labels)
    TorchClassifier(**TINY, epochs=1, checkpoint_dir=str(tmp_path)).fit(data.images, data.labels)
    with pytest.raises(FmnistError, match="other settings"):
        TorchClassifier(**{**TINY, "lr": 0.01}, epochs=2, checkpoint_dir=str(tmp_path),
                        resume=True).fit(data.images, data.labels)


def test_ctrl_c_keeps_the_best_weights_so_far(small_train) -> None:
    data = small_train.head(n_per_class=30)
    x = torch.from_numpy(data.images.copy()).unsqueeze(1)
    y = torch.from_numpy(data.labels.astype(np.int64))
    net = build_net("cnn", width=4, depth=2)
    snapshots = []

    def interrupt_after_two(rec: dict) -> None:
        snapshots.append({k: v.clone() for k, v in net.state_dict().items()})
        if rec["epoch"] == 2:
            raise KeyboardInterrupt

    cfg = TrainConfig(epochs=5, batch_size=32, lr=0.05, optimizer="sgd", verbose=False)
    result = train(net, x[:240], y[:240], None, x[240:], y[240:], cfg,
                   on_epoch_end=interrupt_after_two)
    assert result.interrupted and len(result.history) == 2
    best = result.best_epoch
    assert best in (1, 2)
    assert _same(net.state_dict(), snapshots[best - 1])


def test_early_stopping_stops_and_restores_the_best_epoch(small_train) -> None:
    data = small_train.head(n_per_class=20)
    model = TorchClassifier(**TINY, epochs=30, lr=3.0, optimizer="sgd", patience=1,
                            batch_size=32).fit(data.images, data.labels)
    assert model.stopped_early_ and len(model.history_) < 30
    losses = [h["val_loss"] for h in model.history_]
    assert model.best_epoch_ == int(np.argmin(losses)) + 1


def test_sample_weights_change_the_fit(small_train) -> None:
    data = small_train.head(n_per_class=40)
    params = {**TINY, "epochs": 2, "batch_size": 32, "val_fraction": 0.0}
    plain = TorchClassifier(**params).fit(data.images, data.labels)
    uniform = TorchClassifier(**params).fit(data.images, data.labels,
                                            sample_weight=np.full(len(data), 7.0))
    assert _same(_weights(plain), _weights(uniform))  # only relative weights matter
    w = np.where(data.labels == 3, 1.0, 0.01)
    skewed = TorchClassifier(**params).fit(data.images, data.labels, sample_weight=w)
    assert not _same(_weights(plain), _weights(skewed))
    assert (skewed.predict(data.images) == 3).mean() > (plain.predict(data.images) == 3).mean()


def test_bad_input_is_a_clear_user_error(small_train) -> None:
    model = TorchClassifier(**TINY, epochs=1)
    with pytest.raises(FmnistError, match=r"\[N, H, W\]"):
        model.fit(small_train.images.reshape(len(small_train), -1), small_train.labels)
    with pytest.raises(FmnistError, match=r"0\.\.255"):  # one rule: fmnist.images.arrays
        model.fit(small_train.images * 2.0, small_train.labels)
    with pytest.raises(FmnistError, match="one per image"):
        model.fit(small_train.images, small_train.labels[:-1])
    with pytest.raises(FmnistError, match="tta=True needs flips"):
        TorchClassifier(**TINY, tta=True).fit(small_train.images[:50], small_train.labels[:50])
    with pytest.raises(FmnistError, match="unknown device 'nope'"):  # with or without a GPU
        TorchClassifier(**TINY, device="nope").fit(small_train.images[:50],
                                                   small_train.labels[:50])
    if not torch.cuda.is_available():
        with pytest.raises(FmnistError, match="no CUDA"):
            TorchClassifier(**TINY, device="cuda").fit(small_train.images[:50],
                                                       small_train.labels[:50])


# -- state protocol and AdaBoost ----------------------------------------------------------------
def test_state_protocol_round_trip_predicts_identically(small_train, small_test) -> None:
    model = TorchClassifier(**TINY, epochs=1, augment="flip", batch_size=64)
    model.fit(small_train.images[:600], small_train.labels[:600])
    meta = json.loads(json.dumps(model.state_meta()))  # must be JSON-serialisable
    again = TorchClassifier.from_state(meta, model.state_tensors())
    assert again.tta_ is True
    np.testing.assert_array_equal(again.predict_proba(small_test.images),
                                  model.predict_proba(small_test.images))
    assert again.get_params() == model.get_params()


def test_adaboost_over_a_tiny_cnn_runs_and_round_trips(small_train, small_test) -> None:
    ens = build_adaboost(n_estimators=3, **{**TINY, "epochs": 1, "batch_size": 64,
                                            "val_fraction": 0.0})
    ens.fit(small_train.images[:800], small_train.labels[:800])
    assert isinstance(ens, BoostedTorchClassifier) and 1 <= len(ens.estimators_) <= 3
    assert ens.score(small_test.images, small_test.labels) > 0.3
    seeds = {m.random_state for m in ens.estimators_}
    assert len(seeds) == len(ens.estimators_)  # AdaBoost re-seeds every member
    meta = json.loads(json.dumps(ens.state_meta()))
    again = BoostedTorchClassifier.from_state(meta, ens.state_tensors())
    np.testing.assert_array_equal(again.predict_proba(small_test.images),
                                  ens.predict_proba(small_test.images))


def test_store_saves_and_reloads_torch_models_without_pickle(small_train, small_test,
                                                             tmp_path) -> None:
    from fmnist.runs import store

    single = TorchClassifier(**TINY, epochs=1).fit(small_train.images[:400],
                                                   small_train.labels[:400])
    ens = build_adaboost(n_estimators=2, **{**TINY, "epochs": 1, "val_fraction": 0.0})
    ens.fit(small_train.images[:400], small_train.labels[:400])
    for name, model in (("single", single), ("ens", ens)):
        store.save(model, tmp_path / name, {"model": name})
        assert (tmp_path / name / "model.safetensors").exists()
        loaded = store.load(tmp_path / name).model
        np.testing.assert_array_equal(loaded.predict_proba(small_test.images[:200]),
                                      model.predict_proba(small_test.images[:200]))


def test_cpu_bf16_trains_in_bf16_only_where_the_cpu_computes_it(small_train, small_test,
                                                                  tmp_path) -> None:
    """`cpu_bf16="auto"` takes bf16 steps exactly where the CPU has bf16 hardware (elsewhere it
    would be emulated and slower); True is refused there; prediction stays fp32 either way and
    the run records what it trained in."""
    from fmnist.errors import ConfigError
    from fmnist.models.training.inference import native_cpu_bf16
    from fmnist.runs import store

    data = small_train.head(n_per_class=20)
    params = {"arch": "speednet", "width": 4, "epochs": 1, "val_fraction": 0.0,
              "device": "cpu", "verbose": False, "random_state": 0}
    fp32 = TorchClassifier(**params).fit(data.images, data.labels)
    auto = TorchClassifier(**params, cpu_bf16="auto").fit(data.images, data.labels)
    assert auto.train_bf16_ is native_cpu_bf16() and fp32.train_bf16_ is False
    proba = auto.predict_proba(small_test.images[:50])
    assert proba.dtype == np.float64 and np.allclose(proba.sum(1), 1.0)
    if native_cpu_bf16():  # the steps really ran in bf16: other weights than fp32's
        assert not _same(_weights(fp32), _weights(auto))
    else:
        assert _same(_weights(fp32), _weights(auto))
        with pytest.raises(ConfigError, match="no native bf16"):
            TorchClassifier(**params, cpu_bf16=True).fit(data.images, data.labels)
    with pytest.raises(ConfigError, match="cpu_bf16 must be"):
        TorchClassifier(**params, cpu_bf16="maybe").fit(data.images, data.labels)
    store.save(auto, tmp_path / "run", {"model": "speednet"})
    meta = json.loads((tmp_path / "run" / "model.json").read_text())
    expected = "bf16" if native_cpu_bf16() else "fp32"
    assert meta["estimator"]["state_meta"]["train_precision"] == expected
