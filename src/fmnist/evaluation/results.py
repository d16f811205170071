"""What a comparison produced, as plain data: the preset, one `ModelResult` per model and the
ranked `Comparison`.

These types sit below both the code that runs a comparison (`fmnist.evaluation.compare`) and
the report that presents it (`fmnist.reporting.compare_report`), so neither imports the other
for them. McNemar's test stays a typed `McNemarResult` from the metric to the report; it becomes
plain JSON only in `row()` / `to_dict()`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fmnist.data.dataset import Dataset
    from fmnist.evaluation.metrics import Evaluation, McNemarResult

#: Significance level of McNemar's test against the best model.
ALPHA = 0.05


@dataclass(frozen=True)
class Preset:
    """A named suite: which models, and which parameter overrides each gets.

    `models=None` means every registered model. `use_quick` applies each model's registered
    `quick` overrides (fewer epochs, a training subset) before the preset's own `overrides`.
    Neural models keep their own `val_fraction` (a parameter like any other).
    """

    name: str
    description: str
    models: tuple[str, ...] | None
    use_quick: bool = False
    overrides: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass
class ModelResult:
    """One model's line in the comparison: its run, its evaluation, or why it failed.

    `defaults` are the model's registered defaults (what `params` is compared with to say what
    the preset changed); `mcnemar` is the test against the best model (None for the best);
    `warnings` are the fit's captured warnings (kept out of the console, shown in the report).
    """

    name: str
    family: str
    description: str
    params: dict[str, Any]
    train_images: int
    defaults: dict[str, Any] = field(default_factory=dict)
    run_dir: Path | None = None
    reused: bool = False
    evaluation: Evaluation | None = None
    error: str | None = None
    history: list[dict] | None = None
    mcnemar: McNemarResult | None = None
    warnings: list[str] = field(default_factory=list)  # e.g. ConvergenceWarnings of the fit
    seconds: float = 0.0  # wall time for this model in this comparison: train/load + evaluate

    @property
    def ok(self) -> bool:
        return self.evaluation is not None

    def row(self, alpha: float = ALPHA) -> dict[str, Any]:
        """The leaderboard line (plain JSON values)."""
        ev = self.evaluation
        row: dict[str, Any] = {
            "model": self.name, "family": self.family, "status": "ok" if ev else "failed",
            "error": self.error, "train_images": self.train_images, "params": self.params,
            "run_dir": str(self.run_dir) if self.run_dir else None, "reused": self.reused,
            "wall_seconds": self.seconds, "warnings": self.warnings,
        }
        if ev is not None:
            test = self.mcnemar
            row.update({
                "accuracy": ev.accuracy, "ci_low": ev.ci_low, "ci_high": ev.ci_high,
                "macro_f1": ev.macro["f1"], "weighted_f1": ev.weighted["f1"],
                "log_loss": ev.log_loss, "top2_accuracy": ev.top2_accuracy,
                "fit_seconds": ev.fit_seconds, "predict_images_per_s": ev.images_per_second,
                "n_params": ev.n_params, "size_bytes": ev.size_bytes,
                "mcnemar_p": test.pvalue if test is not None else None,
                "significantly_worse": test.significant(alpha) if test is not None else None,
            })
        return row


@dataclass
class Comparison:
    """Everything one comparison produced, ranked best first (failed models last)."""

    preset: Preset
    results: list[ModelResult]
    train: Dataset
    test: Dataset
    out_dir: Path
    seconds: float
    started: str
    data_description: str
    explore: Any = None  # fmnist.reporting.explore.ExploreResult, or None when skipped
    figures: dict[str, Path] = field(default_factory=dict)
    best_dir: Path | None = None
    alpha: float = ALPHA

    @property
    def best(self) -> ModelResult | None:
        return next((r for r in self.results if r.ok), None)

    def to_dict(self) -> dict[str, Any]:
        best = self.best
        return {
            "preset": self.preset.name, "preset_description": self.preset.description,
            "started": self.started, "total_seconds": self.seconds,
            "data": {"description": self.data_description, "train_images": len(self.train),
                     "test_images": len(self.test), "train_source": self.train.source,
                     "test_source": self.test.source, "checksum": self.train.checksum,
                     "class_names": list(self.test.class_names)},
            "alpha": self.alpha,
            "best": best.name if best else None,
            "best_dir": str(self.best_dir) if self.best_dir else None,
            "leaderboard": [r.row(self.alpha) for r in self.results],
            "evaluations": {r.name: r.evaluation.to_dict() for r in self.results if r.ok},
        }
