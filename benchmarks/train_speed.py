"""Training-speed and accuracy benchmarks of the neural models (run under the CPU lock:
`flock /tmp/fmnist-cpu.lock .venv/bin/python benchmarks/train_speed.py seed1`).

  seed1      cnn-seed1 under the seed protocol: s/epoch (median of epochs 2..N) of our engine
             against the same model in plain eager PyTorch in the same process, + test accuracy
  cnn        `cnn` test accuracy after fitting within wall-clock budgets (one run per budget,
             settings sized to the budget), + inference images/s
  curve      a short run of a deep model (resnet / vgg): validation accuracy against training
             seconds, throughput, and the projected time of a full training
  model      fit any registered model with overrides and report fit time + test accuracy
  quick      fit neural models with their registry `quick` overrides (the comparison preset)
  seeds      does averaging nets help? a model fitted with seeds 0..K-1, test accuracy of each
             and of the mean of the first k members' probabilities (a deep ensemble)
  adaboost   does boosting help a CNN? `adaboost-cnn` test accuracy after each member, against
             one member alone and one CNN given the whole ensemble's epochs (McNemar on both)
  profile    where a training epoch's time goes: torch.profiler over a few steps of a model
             (top operators by device and host time), to profile before tuning (issue 13)

Every result is printed as one JSON line (and appended to --out when given).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fmnist.data import load_fashion_mnist
from fmnist.models import create_model
from fmnist.models.engine import pick_device, predict_logits
from fmnist.models.torch_estimator import as_images


def _emit(result: dict[str, Any], out: Path | None) -> None:
    result = {"torch": torch.__version__, "threads": torch.get_num_threads(),
              "date": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()), **result}
    line = json.dumps(result)
    print(line, flush=True)
    if out is not None:
        with out.open("a") as fh:
            fh.write(line + "\n")


class PlainSeedCNN(nn.Module):
    """The seed's CNN 1 written the obvious way (NCHW, ReLU before the pool), the baseline."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 32, 3)
        self.fc1 = nn.Linear(32 * 13 * 13, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv(x)), 2)
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


def plain_eager(x_tr: np.ndarray, y_tr: np.ndarray, x_te: np.ndarray, y_te: np.ndarray,
                epochs: int) -> dict[str, Any]:
    """Plain eager PyTorch: float tensors in memory, `X[idx]` batches of 512, Adam 1e-3."""
    torch.manual_seed(0)
    net = PlainSeedCNN()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    x = torch.from_numpy(x_tr.copy()).float().unsqueeze(1) / 255
    y = torch.from_numpy(y_tr.astype(np.int64))
    times = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        perm = torch.randperm(len(x))
        for s in range(0, len(x), 512):
            idx = perm[s:s + 512]
            opt.zero_grad()
            F.cross_entropy(net(x[idx]), y[idx]).backward()
            opt.step()
        times.append(time.perf_counter() - t0)
    with torch.no_grad():
        xt = torch.from_numpy(x_te.copy()).float().unsqueeze(1) / 255
        acc = (net(xt).argmax(1).numpy() == y_te).mean()
    return {"epoch_seconds": times, "test_accuracy": float(acc)}


def bench_seed1(args: argparse.Namespace) -> None:
    """`--rounds` times: our fit, then the plain eager baseline on the same 48k images. The VM's
    speed drifts by a third within minutes, so each round's ratio is taken back to back and the
    summary line gives the median ratio over rounds."""
    train, test = load_fashion_mnist("train"), load_fashion_mnist("test")
    params = json.loads(args.params) if args.params else {}
    ratios = []
    for round_ in range(1, args.rounds + 1):
        ratios.append(_seed1_round(args, params, train, test, round_))
    if args.rounds > 1:
        _emit({"bench": "seed1-summary", "params": params, "rounds": args.rounds,
               "ours_over_eager": [round(r, 3) for r in ratios],
               "median_ours_over_eager": round(statistics.median(ratios), 3)}, args.out)


def _seed1_round(args: argparse.Namespace, params: dict[str, Any], train: Any, test: Any,
                 round_: int) -> float:
    # The engine's run: its own 80/20 stratified split; the baseline trains on the same 48k.
    model = create_model("cnn-seed1", epochs=args.epochs, verbose=False, **params)
    t0 = time.perf_counter()
    model.fit(train.images, train.labels)
    fit_s = time.perf_counter() - t0
    ours = [h["seconds"] for h in model.history_]
    acc = model.score(test.images, test.labels)
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(train))[:model.n_train_]
    base = plain_eager(train.images[idx], train.labels[idx], test.images, test.labels,
                       args.baseline_epochs)
    ours_med = statistics.median(ours[1:])
    base_med = statistics.median(base["epoch_seconds"][1:])
    _emit({"bench": "seed1", "round": round_, "params": params, "n_train": model.n_train_,
           "epochs": args.epochs, "ours_epoch_seconds": ours, "ours_median_s": round(ours_med, 2),
           "ours_fit_s": round(fit_s, 1), "ours_test_accuracy": acc,
           "baseline_epochs": args.baseline_epochs, "baseline_epoch_seconds": base["epoch_seconds"],
           "baseline_median_s": round(base_med, 2),
           "baseline_test_accuracy": base["test_accuracy"],
           "speedup": round(base_med / ours_med, 2)}, args.out)
    return ours_med / base_med


def inference_rate(model: Any, images: np.ndarray, repeats: int = 3) -> float:
    """Best-of-`repeats` images/s of `predict_proba` on `images` (raw uint8)."""
    model.predict_proba(images[:256])  # warm-up
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        model.predict_proba(images)
        best = max(best, len(images) / (time.perf_counter() - t0))
    return best


def bench_cnn(args: argparse.Namespace) -> None:
    train, test = load_fashion_mnist("train"), load_fashion_mnist("test")
    for spec in args.runs:
        params = json.loads(spec)
        model = create_model("cnn", verbose=False, **params)
        t0 = time.perf_counter()
        model.fit(train.images, train.labels)
        fit_s = time.perf_counter() - t0
        _emit({"bench": "cnn", "params": params, "fit_s": round(fit_s, 1),
               "test_accuracy": model.score(test.images, test.labels),
               "val_acc_by_epoch": [h["val_acc"] for h in model.history_],
               "epoch_seconds": [h["seconds"] for h in model.history_],
               "n_params": model.n_params_,
               "inference_images_per_s": round(inference_rate(model, test.images)),
               "device": model.device_}, args.out)


def bench_curve(args: argparse.Namespace) -> None:
    train, test = load_fashion_mnist("train"), load_fashion_mnist("test")
    params = json.loads(args.params or "{}")
    model = create_model(args.model, verbose=False, **params)
    t0 = time.perf_counter()
    model.fit(train.images, train.labels)
    fit_s = time.perf_counter() - t0
    hist = model.history_
    ips = statistics.median(h["images_per_s"] for h in hist)
    full_epoch_s = 54_000 / ips  # the registry default trains on 90 % of the 60k
    cum, curve = 0.0, []
    for h in hist:
        cum += h["seconds"]
        curve.append({"epoch": h["epoch"], "train_s": round(cum, 1), "val_acc": h["val_acc"]})
    default_epochs = create_model(args.model).get_params()["epochs"]
    _emit({"bench": "curve", "model": args.model, "params": params, "n_train": model.n_train_,
           "n_params": model.n_params_, "fit_s": round(fit_s, 1),
           "test_accuracy": model.score(test.images, test.labels), "curve": curve,
           "train_images_per_s": round(ips), "projected_full_epoch_s": round(full_epoch_s),
           "default_epochs": default_epochs,
           "projected_default_training_min": round(default_epochs * full_epoch_s / 60, 1),
           "inference_images_per_s": round(inference_rate(model, test.images, 1))}, args.out)


def bench_model(args: argparse.Namespace) -> None:
    train, test = load_fashion_mnist("train"), load_fashion_mnist("test")
    params = json.loads(args.params or "{}")
    model = create_model(args.model, **params)
    if "verbose" in model.get_params():
        model.set_params(verbose=False)
    t0 = time.perf_counter()
    model.fit(train.images, train.labels)
    fit_s = time.perf_counter() - t0
    _emit({"bench": "model", "model": args.model, "params": params, "fit_s": round(fit_s, 1),
           "test_accuracy": model.score(test.images, test.labels),
           "inference_images_per_s": round(inference_rate(model, as_images(test.images), 1))},
          args.out)


def bench_quick(args: argparse.Namespace) -> None:
    from fmnist.models import get_spec
    train, test = load_fashion_mnist("train"), load_fashion_mnist("test")
    for name in args.models:
        spec = get_spec(name)
        model = create_model(name, **spec.quick)
        quiet = {k: False for k in ("verbose", "estimator__verbose") if k in model.get_params()}
        model.set_params(**quiet)
        t0 = time.perf_counter()
        model.fit(train.images, train.labels)
        _emit({"bench": "quick", "model": name, "quick": dict(spec.quick),
               "fit_s": round(time.perf_counter() - t0, 1),
               "test_accuracy": model.score(test.images, test.labels)}, args.out)


def bench_adaboost(args: argparse.Namespace) -> None:
    """AdaBoost over small CNNs against the two fair single-CNN baselines.

    The first member is trained on uniform weights, so the staged accuracy at one member is the
    base CNN alone; the equal-compute baseline trains one CNN for as many epochs as the whole
    ensemble, which is what the boosting time could have bought instead.
    """
    from fmnist.evaluation.metrics import mcnemar_exact
    train, test = load_fashion_mnist("train"), load_fashion_mnist("test")
    params = json.loads(args.params or "{}")
    boosted = create_model("adaboost-cnn", verbose=False, **params)
    t0 = time.perf_counter()
    boosted.fit(train.images, train.labels)
    boost_s = time.perf_counter() - t0
    staged = [np.asarray(p) == test.labels for p in boosted.staged_predict(test.images)]
    base = boosted.estimator.get_params()
    n_members = len(boosted.estimators_)
    single = create_model("cnn", **{**base, "verbose": False, "epochs": base["epochs"] * n_members})
    t0 = time.perf_counter()
    single.fit(train.images, train.labels)
    single_s = time.perf_counter() - t0
    single_ok = single.predict(test.images) == test.labels
    _emit({"bench": "adaboost", "params": params, "members": n_members,
           "member_epochs": base["epochs"], "boost_fit_s": round(boost_s, 1),
           "accuracy_by_members": [round(float(ok.mean()), 4) for ok in staged],
           "member_errors": [round(float(e), 4) for e in boosted.estimator_errors_],
           "single_epochs": base["epochs"] * n_members, "single_fit_s": round(single_s, 1),
           "single_accuracy": round(float(single_ok.mean()), 4),
           "mcnemar_vs_first_member": mcnemar_exact(staged[-1], staged[0]).to_dict(),
           "mcnemar_vs_equal_compute": mcnemar_exact(staged[-1], single_ok).to_dict()},
          args.out)


def bench_seeds(args: argparse.Namespace) -> None:
    """A deep ensemble by hand: the same model with `--members` seeds, each scored alone, and
    the mean of the first k members' probabilities scored after each, against the time spent."""
    train, test = load_fashion_mnist("train"), load_fashion_mnist("test")
    params = json.loads(args.params or "{}")
    probs, singles, fit_s = [], [], []
    for seed in range(args.members):
        model = create_model(args.model, verbose=False, **{**params, "random_state": seed})
        model.fit(train.images, train.labels)
        fit_s.append(round(model.fit_seconds_, 1))
        probs.append(np.asarray(model.predict_proba(test.images)))
        singles.append(float(np.mean(probs[-1].argmax(1) == test.labels)))
    mean_of = [float(np.mean(np.mean(probs[:k], axis=0).argmax(1) == test.labels))
               for k in range(1, args.members + 1)]
    _emit({"bench": "seeds", "model": args.model, "params": params, "fit_s": fit_s,
           "single_accuracy": singles, "ensemble_accuracy_by_members": mean_of}, args.out)


def bench_inference(args: argparse.Namespace) -> None:
    """Raw forward throughput of an untrained net at several batch sizes (speed only)."""
    from fmnist.models.nets import build_net
    dev = pick_device("auto")
    x = torch.from_numpy(load_fashion_mnist("test").images.copy()).unsqueeze(1)
    for arch in args.archs:
        net = build_net(arch).eval()
        rates = {}
        for bs in (512, 2048, 4096):
            predict_logits(net, x[:bs], dev, bs)
            t0 = time.perf_counter()
            predict_logits(net, x, dev, bs)
            rates[bs] = round(len(x) / (time.perf_counter() - t0))
        _emit({"bench": "inference", "arch": arch, "images_per_s_by_batch": rates}, args.out)


def bench_profile(args: argparse.Namespace) -> None:
    """Profile `args.steps` training steps of a registered model after a warm-up epoch."""
    from torch.profiler import ProfilerActivity, profile

    from fmnist.models import engine

    params = {**json.loads(args.params or "{}"), "verbose": False}
    model = create_model(args.model, **params)
    data = load_fashion_mnist("train").head(n=args.images)
    model.set_params(epochs=1, val_fraction=0.0).fit(data.images, data.labels)  # warm-up
    dev = pick_device(model.device_)
    cfg = engine.TrainConfig(epochs=1, batch_size=args.batch, lr=0.01, optimizer="sgd",
                             device=dev, verbose=False,
                             augment=engine.parse_augment(model.get_params()["augment"]),
                             cpu_bf16=dev.type == "cpu" and model.train_bf16_)  # as fit ran
    x = torch.from_numpy(data.images.copy()).unsqueeze(1)
    y = torch.from_numpy(data.labels.astype(np.int64))
    run = engine.setup(model.net_, x, y, None, None, None, cfg)
    run.net.train()
    gen = torch.Generator(device=dev).manual_seed(0)
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if dev.type == "cuda" else [])
    with profile(activities=acts) as prof:
        t0 = time.perf_counter()
        for step in range(args.steps):
            idx = torch.randint(0, len(x), (args.batch,), device=dev)
            engine.train_step(run, idx, step, gen, 0)
        if dev.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
    key = "self_cuda_time_total" if dev.type == "cuda" else "self_cpu_time_total"
    print(prof.key_averages().table(sort_by=key, row_limit=25), flush=True)
    _emit({"bench": "profile", "model": args.model, "params": params, "batch": args.batch,
           "steps": args.steps, "ms_per_step": round(1000 * seconds / args.steps, 2),
           "images_per_s": round(args.batch * args.steps / seconds), "device": str(dev)},
          args.out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=None, help="append JSON lines here")
    sub = parser.add_subparsers(dest="bench", required=True)
    p = sub.add_parser("seed1")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--baseline-epochs", type=int, default=10)
    p.add_argument("--rounds", type=int, default=1, help="ours then eager, this many times")
    p.add_argument("--params", default=None, help="JSON parameter overrides of ours")
    p = sub.add_parser("cnn")
    p.add_argument("runs", nargs="+", help='JSON parameter overrides per run, e.g. '
                   '\'{"width": 16, "epochs": 5}\'')
    p = sub.add_parser("curve")
    p.add_argument("model")
    p.add_argument("--params", default=None, help="JSON parameter overrides")
    p = sub.add_parser("model")
    p.add_argument("model")
    p.add_argument("--params", default=None, help="JSON parameter overrides")
    p = sub.add_parser("quick")
    p.add_argument("models", nargs="+")
    p = sub.add_parser("seeds")
    p.add_argument("model")
    p.add_argument("--members", type=int, default=4)
    p.add_argument("--params", default=None, help="JSON parameter overrides")
    p = sub.add_parser("adaboost")
    p.add_argument("--params", default=None, help="JSON overrides of adaboost-cnn")
    p = sub.add_parser("inference")
    p.add_argument("archs", nargs="+")
    p = sub.add_parser("profile")
    p.add_argument("model")
    p.add_argument("--params", default=None, help="JSON parameter overrides")
    p.add_argument("--batch", type=int, default=1024)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--images", type=int, default=8192, help="training images to warm up on")
    args = parser.parse_args()
    benches = {"seed1": bench_seed1, "cnn": bench_cnn, "curve": bench_curve, "model": bench_model,
               "quick": bench_quick, "seeds": bench_seeds, "adaboost": bench_adaboost,
               "inference": bench_inference, "profile": bench_profile}
    benches[args.bench](args)


if __name__ == "__main__":
    main()
