"""Fashion-MNIST speedrun: test accuracy against training time for named recipes, over seeds.

    PYTHONPATH=src python3 benchmarks/speedrun.py --recipe speedrun --seeds 10 \
        --epochs-grid 8,10,12,14 --target 0.945 --device cuda --out-dir results/

Protocol (issue 13):
- the number of epochs is fixed before any test image is looked at: either given (`--epochs`)
  or chosen on a stratified 10 % validation split of the *training* set (`--epochs-grid`: the
  fewest epochs whose mean validation accuracy over `--choose-seeds` seeds reaches `--target`,
  else the most accurate);
- then each seed trains on all training images and is scored once on the official test set;
- "train s" is `fit_seconds_`: the training loop with the data already in memory (moving it
  to the device, the epochs, the final weight averaging) — no file reading, no evaluation; on a
  GPU one untimed warm-up fit first pays for CUDA/cuDNN start-up, as airbench does; the whole
  command's wall time is reported separately;
- a recipe stops starting new seeds when the next one would end past `--time-cap` seconds
  (counted from the first seed; every finished seed is already written out).
Ablation (`--ablate all` or a comma list of `ABLATIONS` names, airbench's table): the recipe as
is (`full`), then with one ingredient switched off at a time, each over `--seeds` seeds on the
same data and epochs; the test-time-view rows re-score the `full` row's trained nets with fewer
views (the same weights, so the difference is the views' alone, and no retraining).
Results: one JSON line per run and per recipe summary (`speedrun.jsonl`) and a Markdown table
(`speedrun.md`) in `--out-dir`, with the machine named on every line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from fmnist.data import Dataset, load_fashion_mnist
from fmnist.models import create_model
from fmnist.models.engine import pick_device
from fmnist.models.families import FAST_SGD

COMMAND_START = time.perf_counter()

RECIPES: dict[str, tuple[str, dict[str, Any]]] = {
    # name: (registered model, overrides of its defaults)
    "cnn": ("cnn", {}),
    "speedrun": ("speednet", {}),
    "best": ("speednet", {"width": 128, "epochs": 40, "augment": "translate,altflip,erase"}),
    # `best` scaled for 2 CPU cores (issue 13 row "≥ 0.945 within 15 min"): width 32, no erasing
    # (it pays only on long schedules); run with --fit-budget so the epochs fit the budget.
    "cpu-best": ("speednet", {"width": 32, "epochs": 16, "augment": "translate,altflip"}),
    # The `cnn` default before issue 13 (FastCNN 32-64-128, FAST_SGD, 5 epochs, 10 % held out),
    # kept as the baseline the speed recipe is measured against.
    "fastcnn": ("cnn", {"arch": "cnn", "width": 32, "depth": 3, "epochs": 5,
                        "val_fraction": 0.1, "augment": False, "tta": "auto",
                        "lookahead": False, "bn_bias_lr": 1.0, **FAST_SGD}),
    "resnet-best": ("resnet", {"width": 64, "epochs": 40, "batch_size": 512, "lr": 0.4,
                               "augment": "translate,flip,erase", "tta": "flip-shift",
                               "val_fraction": 0.0}),
}


ABLATIONS: dict[str, dict[str, Any]] = {
    # ingredient: the overrides that switch it off in the recipe (the rest stays as it is);
    # the augmentations are switched off by `switch_off`, from the recipe's own list
    "whitening": {"whiten": False},  # a plain trainable 2x2 conv in its place
    "bn-bias-64x": {"bn_bias_lr": 1.0},
    "triangular": {"schedule": "linear", "warmup": 0.2},  # the old FAST_SGD schedule instead
    "label-smoothing": {"label_smoothing": 0.0},
    "lookahead": {"lookahead": False},
    "translate": {},  # no shifts (and no shifted test-time views: they need shifted training)
    "altflip": {},  # random flips instead of alternating ones
}
TTA_ROWS = {"tta-shift": "flip", "tta": "none"}
"""Test-time-view ablations: the `full` nets re-scored with only these views."""


def switch_off(ingredient: str, model_name: str, params: dict[str, Any]) -> dict[str, Any] | None:
    """The overrides that switch `ingredient` off in the recipe `params` of `model_name`, or None
    when the recipe does not use it (its registry defaults count: `cnn` trains without shifts,
    so its `translate` row would be the `full` row again)."""
    from fmnist.models.training.augment import ordered, parse_augment

    settings = create_model(model_name, **params).get_params()
    ops = parse_augment(settings.get("augment"))
    if ingredient == "translate":
        if "translate" not in ops:
            return None
        tta = "flip" if settings.get("tta") == "flip-shift" else settings.get("tta")
        return {"augment": ",".join(ordered(ops - {"translate"})) or "none", "tta": tta}
    if ingredient == "altflip":
        if "altflip" not in ops:
            return None
        return {"augment": ",".join(ordered(ops - {"altflip"} | {"flip"}))}
    off = ABLATIONS[ingredient]
    return None if all(settings.get(k) == v for k, v in off.items()) else off


def machine(device: torch.device) -> str:
    """What ran it, for every result line (numbers from different machines never compare)."""
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}"
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {torch.get_num_threads()} threads, torch {torch.__version__}"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def fit_and_score(model_name: str, params: dict[str, Any], train: Dataset, test: Dataset,
                  device: torch.device, rescore: tuple[str, ...] = ()) -> dict[str, Any]:
    """Train one model and score it once; times the training loop and the evaluation (whose
    images/s is the prediction speed, test-time views included). `rescore`: test-time view
    modes to score the same trained net with as well (`tta_<mode>` keys)."""
    model = create_model(model_name, **params)
    _sync(device)
    model.fit(train.images, train.labels)
    _sync(device)
    t0 = time.perf_counter()
    acc = float(model.score(test.images, test.labels))
    _sync(device)
    eval_s = time.perf_counter() - t0
    epochs = model.history_
    ips = [h["images_per_s"] for h in epochs[1:]] or [h["images_per_s"] for h in epochs]
    return {"accuracy": acc, "train_s": round(model.fit_seconds_, 3),
            "eval_s": round(eval_s, 3), "predict_img_s": round(len(test) / eval_s),
            "epochs": len(epochs), "n_train": int(model.n_train_),
            "median_epoch_img_s": round(statistics.median(ips)),
            "img_s": round(model.n_train_ * len(epochs) / model.fit_seconds_),
            **{f"tta_{mode}": _score_with_views(model, test, mode) for mode in rescore},
            **({"val_curve": [round(h["val_acc"], 4) for h in epochs]}
               if epochs and epochs[0]["val_acc"] is not None else {})}


def _score_with_views(model: Any, test: Dataset, mode: str) -> float:
    """Test accuracy of a fitted TorchClassifier predicting with the views of `mode`: the mode
    is a fitted attribute (what `from_state` restores), so setting it re-scores the very same
    weights; the model's own mode is put back."""
    own = model.tta_mode_
    model.tta_mode_ = mode
    try:
        return float(model.score(test.images, test.labels))
    finally:
        model.tta_mode_ = own


def choose_epochs(model_name: str, params: dict[str, Any], train: Dataset, grid: list[int],
                  seeds: int, target: float, device: torch.device, log: Any) -> int:
    """The fewest epochs of `grid` whose mean validation accuracy reaches `target` (else the
    best), on a stratified 90/10 split of the training set: the test set is never seen."""
    from fmnist.data import split

    fit_part, val_part = split(train, 0.1, seed=12345)
    best_epochs, best_acc = grid[-1], -1.0
    for epochs in grid:
        accs = [fit_and_score(model_name, {**params, "epochs": epochs, "random_state": 1000 + s},
                              fit_part, val_part, device)["accuracy"] for s in range(seeds)]
        mean = statistics.fmean(accs)
        log({"phase": "choose", "epochs": epochs, "val_accuracy": accs, "val_mean": mean})
        if mean >= target:
            return epochs
        if mean > best_acc:
            best_epochs, best_acc = epochs, mean
    return best_epochs


def warm_up(model_name: str, params: dict[str, Any], train: Dataset,
            device: torch.device) -> float:
    """Two short untimed epochs at the batch of the full run, so CUDA context, cuDNN autotuning
    and compilation are paid before timing; returns the second epoch's seconds per training
    image (an over-estimate: a few steps an epoch). On a GPU the subset ends, like the full
    run, in a batch of `n % batch` images: cuDNN tunes each new shape once a process, and that
    last batch had cost the first timed fit 1.4–2.7 s more than the next (H100, 2026-11-27)."""
    n = min(len(train), params.get("max_train") or len(train))
    batch, lr = create_model(model_name, **params).batch_and_lr(device, n)
    size = 300 if device.type != "cuda" else n % batch + batch * max(1, 10_000 // batch)
    small = train.head(n=min(size, len(train)))
    model = create_model(model_name, **{**params, "epochs": 2, "max_train": None,
                                        "batch_size": batch, "lr": lr})
    model.fit(small.images, small.labels)
    return model.history_[-1]["seconds"] / model.n_train_


def _stats(values: list[float], key: str) -> dict[str, float]:
    """`<key>_mean`, `<key>_std` (0 for one value) and `<key>_min`, rounded to 4 places."""
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return {f"{key}_mean": round(statistics.fmean(values), 4), f"{key}_std": round(std, 4),
            f"{key}_min": round(min(values), 4)}


def summarise(name: str, runs: list[dict[str, Any]], epochs: int, where: str) -> dict[str, Any]:
    """Mean ± std over seeds of accuracy (and of any re-scored `tta_<mode>` accuracy), training
    time and speeds."""
    secs = _stats([r["train_s"] for r in runs], "train_s")
    rescored = {key: _stats([r[key] for r in runs], key)
                for key in runs[0] if key.startswith("tta_")}
    return {"phase": "summary", "recipe": name, "epochs": epochs, "seeds": len(runs),
            **_stats([r["accuracy"] for r in runs], "acc"),
            "train_s_mean": round(secs["train_s_mean"], 2),
            "train_s_std": round(secs["train_s_std"], 2),
            "img_s_mean": round(statistics.fmean(r["img_s"] for r in runs)),
            "predict_img_s_mean": round(statistics.fmean(r["predict_img_s"] for r in runs)),
            **{k: v for stats in rescored.values() for k, v in stats.items()},
            "machine": where}


def run_recipe(name: str, args: argparse.Namespace, train: Dataset, test: Dataset,
               device: torch.device, log: Any, ablate: str | None = None,
               rescore: tuple[str, ...] = ()) -> dict[str, Any] | None:
    """Choose epochs (optionally), then train and score seed after seed within the time cap;
    `ablate` names the `ABLATIONS` ingredient switched off (the row is `name - ablate`)."""
    model_name, recipe = RECIPES[name]
    params = {**recipe, **_overrides(args.set), "device": str(device), "verbose": False}
    if ablate:
        off = switch_off(ablate, model_name, params)
        if off is None:
            log({"recipe": name, "phase": "skipped", "ablate": ablate,
                 "why": "the recipe does not use it"})
            return None
        params, name = {**params, **off}, f"{name} - {ablate}"
    if args.max_train:
        params["max_train"] = args.max_train
    per_image = warm_up(model_name, params, train, device)
    epochs = args.epochs or params.get("epochs") or create_model(model_name).epochs
    if args.fit_budget:  # never start a fit that cannot end inside the step's time limit
        n = min(len(train), args.max_train or len(train))
        fits = max(1, int(args.fit_budget / (per_image * n)))
        log({"recipe": name, "phase": "fit-budget", "est_epoch_s": round(per_image * n, 2),
             "epochs_wanted": epochs, "epochs_allowed": fits})
        epochs = min(epochs, fits)
    if args.epochs_grid:
        grid = [int(v) for v in args.epochs_grid.split(",")]
        epochs = choose_epochs(model_name, params, train, grid, args.choose_seeds, args.target,
                               device, lambda rec: log({"recipe": name, **rec}))
    runs: list[dict[str, Any]] = []
    started = time.perf_counter()  # the cap bounds the seeds, not the epoch choice before them
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        spent = time.perf_counter() - started
        last = runs[-1]["train_s"] + runs[-1]["eval_s"] if runs else 0.0
        if args.time_cap and spent + last > args.time_cap:
            log({"recipe": name, "phase": "time-cap", "seeds_done": len(runs),
                 "spent_s": round(spent, 1)})
            break
        run = fit_and_score(model_name, {**params, "epochs": epochs, "random_state": seed},
                            train, test, device, rescore)
        runs.append(run)
        log({"recipe": name, "phase": "run", "seed": seed, **run})
    if not runs:
        return None
    summary = summarise(name, runs, int(epochs or 0), machine(device))
    log({**summary, "overrides": {**{k: v for k, v in params.items() if k != "verbose"},
                                  "epochs": epochs}})
    return summary


def ablation(name: str, which: list[str], args: argparse.Namespace, train: Dataset,
             test: Dataset, device: torch.device, log: Any) -> list[dict[str, Any]]:
    """airbench's ablation table for recipe `name`: `full` (the recipe as is, its nets also
    re-scored with fewer test-time views) and each named ingredient switched off on its own."""
    model_name, recipe = RECIPES[name]
    own_views = create_model(model_name, **{**recipe, **_overrides(args.set)}).get_params()["tta"]
    views = {row: mode for row, mode in TTA_ROWS.items() if mode != own_views}
    out = []
    for ingredient in which:
        if ingredient == "full":
            full = run_recipe(name, args, train, test, device, log,
                              rescore=tuple(views.values()))
            out += [full] if full else []
            out += [_rescored_row(full, row, mode) for row, mode in views.items()
                    if full and row in which]
            continue
        if ingredient in TTA_ROWS:
            continue  # re-scored inside the `full` row's runs
        row = run_recipe(name, args, train, test, device, log, ablate=ingredient)
        out += [row] if row else []
    return out


def _rescored_row(full: dict[str, Any], row: str, mode: str) -> dict[str, Any]:
    """The `full` summary with its accuracy replaced by the re-scored one of view `mode` (its
    prediction speed was not measured for that mode: 0)."""
    return {**full, "recipe": f"{full['recipe']} - {row}", "predict_img_s_mean": 0,
            **{f"acc_{s}": full[f"tta_{mode}_{s}"] for s in ("mean", "std", "min")}}


def _overrides(pairs: list[str]) -> dict[str, Any]:
    """`key=value` pairs; values parsed as JSON when they can be (numbers, true, null)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, _, value = pair.partition("=")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def markdown(summaries: list[dict[str, Any]], command_s: float, ablation: bool = False) -> str:
    """The results table (one row per recipe; for an ablation with the accuracy change against
    the first, `full`, row) and the whole command's wall time."""
    delta = "| Δ acc vs full " if ablation else ""
    lines = [f"| recipe | epochs | seeds | test accuracy (mean ± std, min) {delta}| train s (mean "
             "± std) | train img/s | predict img/s | machine |",
             "| --- " * (8 + bool(ablation)) + "|"]
    for s in summaries:
        change = f"| {s['acc_mean'] - summaries[0]['acc_mean']:+.4f} " if ablation else ""
        lines.append(f"| {s['recipe']} | {s['epochs']} | {s['seeds']} | {s['acc_mean']:.4f} ± "
                     f"{s['acc_std']:.4f} (min {s['acc_min']:.4f}) {change}| "
                     f"{s['train_s_mean']:.2f} ± {s['train_s_std']:.2f} | {s['img_s_mean']:,} | "
                     f"{s['predict_img_s_mean'] or '–'} | {s['machine']} |")
    lines.append(f"\nWhole command: {command_s:.1f} s wall time (loading, warm-up, epoch "
                 "choice, every seed's training and evaluation).")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipe", action="append", choices=sorted(RECIPES), required=True)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0,
                        help="seeds are first-seed … first-seed + seeds − 1 (add seeds to a run)")
    parser.add_argument("--epochs", type=int, help="fixed epochs (else the recipe's own)")
    parser.add_argument("--epochs-grid", help="comma list of epochs to choose from on val")
    parser.add_argument("--choose-seeds", type=int, default=1)
    parser.add_argument("--target", type=float, default=1.0, help="val accuracy to reach")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--max-train", type=int, help="stratified training subset (smoke)")
    parser.add_argument("--max-test", type=int, help="stratified test subset (smoke only)")
    parser.add_argument("--time-cap", type=float, help="seconds per recipe before seeds stop")
    parser.add_argument("--fit-budget", type=float,
                        help="seconds one fit may take: fewer epochs if the warm-up says so")
    parser.add_argument("--set", action="append", default=[], help="key=value override")
    parser.add_argument("--ablate", help="'all' or a comma list of full, "
                        + ", ".join([*ABLATIONS, *TTA_ROWS]) + ": one ingredient off per row")
    parser.add_argument("--out-dir", type=Path, default=Path("."))
    args = parser.parse_args()
    device = pick_device(args.device)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    jsonl = args.out_dir / "speedrun.jsonl"

    def log(rec: dict[str, Any]) -> None:
        line = json.dumps({"device": str(device), **rec})
        print(line, flush=True)
        with jsonl.open("a") as fh:
            fh.write(line + "\n")

    train = load_fashion_mnist("train", allow_download=False)
    test = load_fashion_mnist("test", allow_download=False)
    if args.max_test:
        test = test.head(n_per_class=max(1, args.max_test // 10))
    if args.ablate:
        which = (["full", *ABLATIONS, *TTA_ROWS] if args.ablate == "all"
                 else [w.strip() for w in args.ablate.split(",")])
        unknown = set(which) - {"full", *ABLATIONS, *TTA_ROWS}
        if unknown:
            parser.error(f"unknown ablation {', '.join(sorted(unknown))}")
        summaries = [s for name in args.recipe
                     for s in ablation(name, which, args, train, test, device, log)]
    else:
        summaries = [s for name in args.recipe
                     if (s := run_recipe(name, args, train, test, device, log)) is not None]
    command_s = time.perf_counter() - COMMAND_START
    log({"phase": "command", "recipes": args.recipe, "command_s": round(command_s, 1),
         "machine": machine(device), "pid": os.getpid()})
    with (args.out_dir / "speedrun.md").open("a") as fh:
        fh.write(markdown(summaries, command_s, ablation=bool(args.ablate)))


if __name__ == "__main__":
    main()
