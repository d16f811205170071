"""Hyper-parameter search spaces: one per registered model, keyed by the model's name.

The spaces live here rather than in each `register(...)` call so that tuning stays one optional
layer over the registry (the registry and the families keep no Optuna knowledge); a test checks
that every registered model has a space and that every parameter in it is one the model accepts,
so the two cannot drift apart. Each space is centred on the measured defaults
(docs/classical.md, docs/neural.md) and wide enough to find a better setting.

What a user gives (a `--space` JSON file or `--param name=low:high`) is data, never code: it is
size-bounded, every number is checked finite, and every name must be a parameter of the model.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fmnist.errors import FmnistError

MAX_PARAMS = 32
MAX_CHOICES = 64
MAX_SPACE_BYTES = 64 * 1024
MAX_INT = 10**9
# Run settings and the selection protocol: never searched (they would change what is compared).
NOT_TUNABLE = frozenset({"val_fraction", "random_state", "checkpoint_dir", "resume", "verbose",
                         "device", "num_threads", "n_jobs", "max_train", "eval_batch_size"})
Choice = None | bool | int | float | str


@dataclass(frozen=True)
class Param:
    """One dimension: a float or int range (`log` = sampled on a log scale; `step` for a grid),
    or a list of categorical `choices` (JSON scalars)."""

    kind: str  # "float" | "int" | "categorical"
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Choice, ...] = ()

    def suggest(self, trial: Any, name: str) -> Any:
        """Ask an Optuna trial for a value of this dimension."""
        if self.kind == "categorical":
            return trial.suggest_categorical(name, list(self.choices))
        if self.kind == "int":
            return trial.suggest_int(name, int(self.low), int(self.high), log=self.log,
                                     step=int(self.step or 1))
        return trial.suggest_float(name, self.low, self.high, log=self.log, step=self.step)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form `parse_param_dict` reads back (used in files and study attributes)."""
        if self.kind == "categorical":
            return {"type": "categorical", "choices": list(self.choices)}
        out: dict[str, Any] = {"type": self.kind, "low": self.low, "high": self.high}
        if self.log:
            out["log"] = True
        if self.step is not None:
            out["step"] = self.step
        return out


Space = dict[str, Param]


def flt(low: float, high: float, log: bool = False) -> Param:
    """A float range (the registered spaces' shorthand)."""
    return Param("float", float(low), float(high), log)


def integer(low: int, high: int, log: bool = False, step: int | None = None) -> Param:
    """An int range."""
    return Param("int", low, high, log, step)


def cat(*choices: Choice) -> Param:
    """Categorical choices."""
    return Param("categorical", choices=tuple(choices))


_SGD_NET = {"lr": flt(0.01, 0.3, log=True), "weight_decay": flt(1e-5, 3e-3, log=True),
            "label_smoothing": flt(0.0, 0.2), "warmup": flt(0.0, 0.3)}
_SEED_NET = {"lr": flt(1e-4, 1e-2, log=True), "batch_size": cat(128, 256, 512),
             "weight_decay": flt(1e-6, 1e-3, log=True), "label_smoothing": flt(0.0, 0.2)}
_REDUCE = cat("none", "pca:50", "pca:100", "pca:0.95")

SPACES: dict[str, Space] = {
    # neural: epochs stay at the model's default (they are the budget the pruner slices)
    # `cnn` is speednet at a CPU width with the airbench recipe (its flip test-time views
    # need its flip training, so augmentation is not searched)
    "cnn": {"lr": flt(0.1, 1.0, log=True), "weight_decay": flt(3e-4, 5e-3, log=True),
            "label_smoothing": flt(0.0, 0.3), "bn_bias_lr": flt(8.0, 64.0, log=True),
            "width": cat(16, 20, 24)},
    "resnet": {**_SGD_NET, "width": cat(8, 16, 24)},
    "speednet": {"lr": flt(0.05, 0.5, log=True), "weight_decay": flt(3e-4, 5e-3, log=True),
                 "label_smoothing": flt(0.0, 0.3), "bn_bias_lr": flt(8.0, 64.0, log=True),
                 "width": cat(32, 48, 64)},
    "vgg": {**_SGD_NET, "hidden": cat(128, 256, 512), "dropout": flt(0.0, 0.5)},
    "mlp": {"lr": flt(1e-4, 1e-2, log=True), "dropout": flt(0.0, 0.5),
            "hidden": cat("256", "512,256", "1024,512"), "batch_size": cat(128, 256, 512),
            "weight_decay": flt(1e-6, 1e-2, log=True)},
    "cnn-seed1": dict(_SEED_NET),
    "cnn-seed2": dict(_SEED_NET),
    "cnn-seed3": dict(_SEED_NET),
    "adaboost-cnn": {"n_estimators": integer(2, 8), "learning_rate": flt(0.1, 1.0, log=True),
                     "lr": flt(0.01, 0.3, log=True)},
    # classical
    "knn": {"n_neighbors": integer(1, 20), "weights": cat("uniform", "distance"),
            "reduce": cat("pca:30", "pca:50", "pca:100", "lda")},
    "svm": {"C": flt(0.3, 100.0, log=True), "reduce": cat("pca:50", "pca:100", "pca:200")},
    "hog-svm": {"C": flt(1.0, 100.0, log=True), "pixels_per_cell": cat(4, 7),
                "pixel_weight": flt(0.0, 2.0)},
    "linear-svm": {"C": flt(1e-3, 10.0, log=True), "scale": cat("unit", "standard")},
    "logistic": {"C": flt(1e-3, 10.0, log=True), "scale": cat("unit", "standard")},
    "perceptron": {"max_iter": integer(5, 50), "average": cat(True, False)},
    "decision-tree": {"criterion": cat("gini", "entropy"), "max_depth": integer(4, 30),
                      "min_samples_leaf": integer(1, 20, log=True)},
    "random-forest": {"n_estimators": integer(50, 300, log=True), "max_depth": cat(None, 20, 40),
                      "max_features": cat("sqrt", "log2", 0.05, 0.1)},
    "adaboost": {"n_estimators": integer(30, 200, log=True),
                 "learning_rate": flt(0.05, 1.0, log=True), "max_depth": integer(2, 8),
                 "reduce": _REDUCE},
    "gradient-boosting": {"max_iter": integer(50, 300, log=True),
                          "learning_rate": flt(0.03, 0.3, log=True),
                          "max_leaf_nodes": integer(15, 63), "reduce": cat("none", "pca:50")},
    "bayes-1": {"reduce": cat("lda", "pca:30", "pca:50")},
    "bayes-2": {"reduce": cat("lda", "pca:30", "pca:50")},
    "bayes-3": {"reg": flt(1e-3, 0.5, log=True), "reduce": cat("lda", "pca:30", "pca:50")},
    "kmeans": {"n_clusters": integer(10, 200, log=True), "reduce": cat("pca:30", "pca:50", "lda")},
}


def default_space(model: str) -> Space:
    """The registered space of `model` (a copy), or a user error saying how to give one."""
    if model not in SPACES:
        raise FmnistError(f"model {model!r} has no registered search space; give one with "
                          "--space FILE.json or --param name=low:high")
    return dict(SPACES[model])


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or not math.isfinite(value) or abs(value) > 1e12:
        raise FmnistError(f"{where}: expected a finite number, got {value!r}")
    return value


def _choice(value: Any, where: str) -> Choice:
    if value is None or isinstance(value, bool | str):
        if isinstance(value, str) and len(value) > 200:
            raise FmnistError(f"{where}: a choice longer than 200 characters")
        return value
    return _number(value, where)


def parse_param_dict(name: str, spec: Any) -> Param:
    """One dimension from its JSON form: {"type": "float"|"int", "low", "high", "log"?,
    "step"?} or {"type": "categorical", "choices": [...]} — checked, never evaluated."""
    where = f"search space, parameter {name!r}"
    if not isinstance(spec, Mapping):
        raise FmnistError(f"{where}: expected an object with a 'type', got {spec!r:.80}")
    kind = spec.get("type")
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not 1 <= len(choices) <= MAX_CHOICES:
            raise FmnistError(f"{where}: 'choices' must be a list of 1 to {MAX_CHOICES} values")
        values = tuple(_choice(c, where) for c in choices)
        if len({json.dumps(v) for v in values}) != len(values):
            raise FmnistError(f"{where}: a choice is listed twice")
        return cat(*values)
    if kind not in ("float", "int"):
        raise FmnistError(f"{where}: 'type' must be float, int or categorical, got {kind!r:.40}")
    unknown = set(spec) - {"type", "low", "high", "log", "step"}
    if unknown:
        raise FmnistError(f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    low, high = _number(spec.get("low"), where), _number(spec.get("high"), where)
    log, step = spec.get("log", False), spec.get("step")
    if not isinstance(log, bool):
        raise FmnistError(f"{where}: 'log' must be true or false")
    if step is not None and _number(step, where) <= 0:
        raise FmnistError(f"{where}: 'step' must be positive")
    if not low < high:
        raise FmnistError(f"{where}: needs low < high, got {low} and {high}")
    if log and (low <= 0 or step is not None):
        raise FmnistError(f"{where}: a log scale needs low > 0 and no step")
    if kind == "int":
        if not all(float(v).is_integer() and abs(v) <= MAX_INT for v in (low, high, step or 1)):
            raise FmnistError(f"{where}: int bounds and step must be whole numbers "
                              f"within ±{MAX_INT:,}")
        return integer(int(low), int(high), log, int(step) if step is not None else None)
    return Param("float", float(low), float(high), log, float(step) if step else None)


def load_space_file(path: Path) -> Space:
    """A whole space from a JSON file `{"name": {...}, ...}` (bounded in size and count)."""
    from fmnist.files import load_json

    # the one bounded reader: regular files only (a FIFO cannot hang it), size and depth checked
    raw = load_json(Path(path), MAX_SPACE_BYTES, what="search space file", max_depth=4)
    if not isinstance(raw, dict) or not raw:
        raise FmnistError(f"{path}: expected a JSON object of parameter → range")
    if len(raw) > MAX_PARAMS:
        raise FmnistError(f"{path}: at most {MAX_PARAMS} parameters")
    return {str(k): parse_param_dict(str(k), v) for k, v in raw.items()}


def _scalar(text: str) -> Choice:
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_param_option(text: str) -> tuple[str, Param]:
    """`--param` syntax: `name=low:high` (int when both ends are whole numbers),
    `name=low:high:log`, or `name=a|b|c` for categorical choices (JSON scalars, else strings)."""
    name, sep, rest = text.partition("=")
    name = name.strip()
    if not sep or not name or not rest:
        raise FmnistError(f"--param expects name=low:high, name=low:high:log or name=a|b|c; "
                          f"got {text!r:.80}")
    if "|" in rest or ":" not in rest:
        return name, parse_param_dict(name, {"type": "categorical",
                                             "choices": [_scalar(c) for c in rest.split("|")]})
    parts = rest.split(":")
    log = parts[-1] == "log"
    if log:
        parts = parts[:-1]
    if len(parts) != 2:
        raise FmnistError(f"--param {name}: expected low:high or low:high:log, got {rest!r:.80}")
    try:
        low, high = (json.loads(p) for p in parts)
    except ValueError:
        raise FmnistError(f"--param {name}: bounds must be numbers, got {rest!r:.80}") from None
    kind = "int" if all(isinstance(v, int) and not isinstance(v, bool) for v in (low, high)) \
        else "float"
    return name, parse_param_dict(name, {"type": kind, "low": low, "high": high, "log": log})


def build_space(model: str, space_file: Path | None, overrides: Sequence[str],
                fixed: Mapping[str, Any], accepted: Sequence[str]) -> Space:
    """The space a study searches: the file's (or the registered one), each `--param` replacing
    or adding a dimension, minus the parameters fixed with `--set`; every name checked against
    the model's `accepted` parameters."""
    space = load_space_file(space_file) if space_file is not None else None
    if space is None:
        space = default_space(model) if not overrides or model in SPACES else {}
    for text in overrides:
        name, param = parse_param_option(text)
        space[name] = param
    if "val_fraction" in fixed:
        raise FmnistError("the validation split is the study's own: use --val-fraction, "
                          "not --set val_fraction")
    for name in fixed:
        space.pop(name, None)
    for name in space:
        if name in NOT_TUNABLE:
            raise FmnistError(f"{name!r} is a run setting, not a hyper-parameter; it cannot be "
                              "searched (the validation split and seed are the study's own)")
        if name not in accepted:
            raise FmnistError(f"model {model!r} has no parameter {name!r}; it accepts: "
                              f"{', '.join(sorted(set(accepted) - NOT_TUNABLE))}")
    if not space:
        raise FmnistError("the search space is empty: nothing to tune")
    if len(space) > MAX_PARAMS:
        raise FmnistError(f"at most {MAX_PARAMS} parameters can be searched")
    return space


def space_to_json(space: Mapping[str, Param]) -> dict[str, Any]:
    """The space as plain JSON (what a study records, so a joining worker can check it)."""
    return {name: p.to_dict() for name, p in sorted(space.items())}
