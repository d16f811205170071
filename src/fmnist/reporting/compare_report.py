"""The comparison report: one `Document` built from a `Comparison`, rendered as `report.html`
and `report.md`.

The page leads with the verdict — the best model and whether the others are significantly
worse, the leaderboard, a table of contents — then shows the results, the best model and its
mistakes, the models' settings, and the data analysis last. Every number is printed from the
same `Comparison` that `results.json` is written from, with fixed formats (accuracy 4 decimals,
p-values 2 significant digits), so the report and the results always agree. The report reads
only the comparison: each result carries its model's registered defaults, so the registry is
never consulted here.
"""

from __future__ import annotations

import platform
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fmnist.concurrency import usable_cores
from fmnist.reporting.document import Document, Figure, Paragraph, Section, Table
from fmnist.reporting.render import write_document

if TYPE_CHECKING:
    from fmnist.evaluation.results import Comparison, ModelResult

LEADERBOARD_COLUMNS = {
    "rank": "rank", "model": "model", "family": "family", "accuracy": "accuracy",
    "ci": "95% CI", "macro_f1": "macro-F1", "mcnemar_p": "McNemar p vs best",
    "significant": "worse than best?", "fit_seconds": "fit s", "speed": "predict images/s",
    "n_params": "parameters", "size": "size MB", "train_images": "training images",
}

EXTRA_CAPTION = ("Model-specific metrics on the test set (k-means: how its clusters match the "
                 "classes; train_ = on its training data)")

RESULTS_NOTE = ("Accuracy on the test set with a 95% Wilson confidence interval. McNemar's exact "
                "test compares each model with the best one on the same test images (only the "
                "images exactly one of the two gets right count); 'yes' means worse at p < 0.05 "
                "(no correction for multiple comparisons).")


def fmt_acc(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def fmt_p(value: float | None) -> str:
    """Two significant digits; a p-value that underflowed to 0 is shown as below the smallest
    double rather than as an impossible exact 0."""
    if value is None:
        return ""
    return "<1e-300" if value == 0 else f"{value:.2g}"


def _subset_note(r: ModelResult, n_train: int, short: bool = False) -> str:
    """How many training images a model saw, saying so plainly when it was a subset."""
    if r.train_images < n_train:
        return (f"{r.train_images:,} (subset)" if short
                else f"{r.train_images:,} (subset of {n_train:,})")
    return f"{r.train_images:,} (all)"


def leaderboard_rows(c: Comparison) -> list[dict[str, Any]]:
    """Leaderboard cells as display strings (ranked; failed models at the end)."""
    rows = []
    n_train = len(c.train)
    for rank, r in enumerate(c.results, 1):
        if not r.ok:
            rows.append({"rank": "–", "model": r.name, "family": r.family,
                         "accuracy": "FAILED", "ci": r.error or "",
                         "train_images": _subset_note(r, n_train, short=True)})
            continue
        ev = r.evaluation
        if r.mcnemar is None:
            p, sig = "(best)", ""
        else:
            p = fmt_p(r.mcnemar.pvalue)
            sig = "yes" if r.mcnemar.significant(c.alpha) else "no (tie)"
        rows.append({
            "rank": rank, "model": r.name, "family": r.family, "accuracy": fmt_acc(ev.accuracy),
            "ci": f"{fmt_acc(ev.ci_low)}–{fmt_acc(ev.ci_high)}",
            "macro_f1": fmt_acc(ev.macro["f1"]), "mcnemar_p": p, "significant": sig,
            "fit_seconds": f"{ev.fit_seconds:.1f}" if ev.fit_seconds is not None else "",
            "speed": f"{ev.images_per_second:,.0f}",
            "n_params": f"{ev.n_params:,}" if ev.n_params is not None else "",
            "size": f"{ev.size_bytes / 1e6:.2f}" if ev.size_bytes is not None else "",
            "train_images": _subset_note(r, n_train, short=True),
        })
    return rows


def extra_rows(c: Comparison) -> list[dict[str, Any]]:
    """One row per model that reports its own metrics (`extra_metrics`), e.g. k-means ARI/NMI."""
    rows = [{"model": r.name, **{k: (round(v, 4) if isinstance(v, float) else v)
                                 for k, v in r.evaluation.extra.items()}}
            for r in c.results if r.ok and r.evaluation.extra]
    keys = list(dict.fromkeys(k for row in rows for k in row))  # every metric any model has
    return [{k: row.get(k, "") for k in keys} for row in rows]


def _params_text(r: ModelResult) -> str:
    """The settings that differ from the model's registered defaults (the full parameters are
    in results.json): what the preset changed."""
    changed = {k: v for k, v in r.params.items() if k not in r.defaults or r.defaults[k] != v}
    return ", ".join(f"{k}={v}" for k, v in changed.items()) or "defaults"


def model_rows(c: Comparison) -> list[dict[str, Any]]:
    """One row per model: data, settings, run folder, and (when any) the fit's warnings."""
    n_train = len(c.train)
    rows = [{"model": r.name, "family": r.family, "description": r.description,
             "training images": _subset_note(r, n_train), "settings": _params_text(r),
             "run": ("reused " if r.reused else "") + (r.run_dir.name if r.run_dir else ""),
             "warnings": "; ".join(r.warnings)}
            for r in c.results]
    if not any(r.warnings for r in c.results):
        rows = [{k: v for k, v in row.items() if k != "warnings"} for row in rows]
    return rows


def _summary_sentence(c: Comparison) -> str:
    best = c.best
    if best is None:
        return "Every model failed; see the failed models below for the reasons."
    ev = best.evaluation
    ties = [r.name for r in c.results[1:]
            if r.ok and r.mcnemar is not None and not r.mcnemar.significant(c.alpha)]
    tie_text = (f" Not significantly different from it (McNemar exact, p ≥ {c.alpha}): "
                f"{', '.join(ties)}." if ties else
                f" Every other model is significantly worse (McNemar exact, p < {c.alpha}).")
    return (f"Best model: {best.name} with test accuracy {fmt_acc(ev.accuracy)} "
            f"(95% CI {fmt_acc(ev.ci_low)}–{fmt_acc(ev.ci_high)}) and macro-F1 "
            f"{fmt_acc(ev.macro['f1'])} on {ev.n_images:,} test images.{tie_text}")


def _quick_warning(c: Comparison) -> str | None:
    """The quick preset trains deep nets for a few epochs on subsets: say so, with the numbers,
    before anyone reads the ranking as a verdict on the architectures."""
    nets = [r for r in c.results if r.family == "neural"]
    if not c.preset.use_quick or not nets:
        return None
    budgets = "; ".join(f"{r.name}: {r.params.get('epochs', '?')} epochs on "
                        f"{r.train_images:,} images" for r in nets)
    return (f"The quick preset under-trains its deep nets by design, to finish in minutes on a "
            f"CPU ({budgets}), so they rank below what they reach with full training. For "
            "their real accuracy run 'fmnist compare --preset standard' (every model, all "
            "data, default epochs) or '--preset best' (longest; meant for a GPU).")


def _subset_warning(c: Comparison) -> str | None:
    subset = [f"{r.name} ({r.train_images:,})" for r in c.results
              if r.train_images < len(c.train)]
    if not subset:
        return None
    return (f"Trained on a stratified subset of the {len(c.train):,} training images: "
            f"{', '.join(subset)}. Their accuracy is lower than with all data; all models are "
            f"tested on the same {len(c.test):,} test images.")


def _figures(c: Comparison, keys_and_captions: list[tuple[str, str]]) -> list[Figure]:
    return [Figure(c.figures[key], caption) for key, caption in keys_and_captions
            if key in c.figures]


def _curves(r: ModelResult) -> tuple[str, str]:
    return f"curves_{r.name}", f"{r.name}: loss and accuracy per epoch, training vs validation"


def _results_section(c: Comparison) -> Section:
    best_name = c.best.name if c.best else None
    blocks: list = [Paragraph(RESULTS_NOTE)]
    blocks += _figures(c, [("accuracy_vs_time", "Test accuracy (95% CI) against training time"),
                           ("f1_heatmap", "F1 per class and model: pale columns are the "
                                          "garments every model finds hard")])
    blocks += _figures(c, [_curves(r) for r in c.results if r.name != best_name])
    extra = extra_rows(c)
    if extra:
        blocks.append(Table(extra, caption=EXTRA_CAPTION))
    return Section("Results", blocks, anchor="results")


def _best_section(c: Comparison, best: ModelResult) -> Section:
    ev = best.evaluation
    where = f" Saved as a run in {c.best_dir}." if c.best_dir else ""
    facts = (f"{best.description}. Trained on {_subset_note(best, len(c.train))} images with "
             f"{_params_text(best)}.{where}")
    if ev.log_loss is not None:
        facts += f" Log-loss {ev.log_loss:.4f}; top-2 accuracy {fmt_acc(ev.top2_accuracy)}."
    per_class = [{**row, "precision": fmt_acc(row["precision"]), "recall": fmt_acc(row["recall"]),
                  "f1": fmt_acc(row["f1"])} for row in ev.per_class]
    blocks: list = [Paragraph(facts), Table(per_class, caption="Per-class report (test set)")]
    blocks += _figures(c, [("best_confusion", "Confusion matrix: rows are the actual class, "
                                              "colour the row share, numbers the counts"),
                           _curves(best)])
    return Section(f"The best model: {best.name}", blocks, anchor="best")


def _mistakes_section(c: Comparison, best: ModelResult) -> Section:
    pairs = [{**p, "rate": f"{p['rate']:.1%}"} for p in best.evaluation.confused_pairs]
    blocks: list = [Table(pairs, {"actual": "actual class", "predicted": "taken for",
                                  "count": "images", "rate": "share of the actual class"},
                          caption="Most confused class pairs")]
    blocks += _figures(c, [("best_mistakes", "The mistakes the model was surest of (its "
                                             "probability for the wrong class)"),
                           ("best_predictions", "Random test images: actual and predicted "
                                                "class, wrong ones framed red")])
    return Section("What it gets wrong", blocks, anchor="mistakes")


def build_report(c: Comparison) -> Document:
    """The whole report as one document: verdict first, data analysis last."""
    intro: list = [Paragraph(_summary_sentence(c))]
    intro += [Paragraph(text, "warning") for text in (_quick_warning(c),) if text]
    intro += [Paragraph(f"Preset '{c.preset.name}': {c.preset.description}", "note"),
              Paragraph(f"Data: {c.data_description}. Total time {c.seconds:.0f} s on "
                        f"{platform.machine()} ({usable_cores()} CPU cores); started "
                        f"{c.started}.", "note"),
              Table(leaderboard_rows(c), LEADERBOARD_COLUMNS, "Leaderboard",
                    anchor="leaderboard")]
    sections = [_results_section(c)]
    if c.best is not None:
        sections += [_best_section(c, c.best), _mistakes_section(c, c.best)]
    models: list = [Paragraph(text, "warning") for text in (_subset_warning(c),) if text]
    models.append(Table(model_rows(c), caption="Models in this comparison"))
    sections.append(Section("The models", models, anchor="models"))
    if c.explore is not None:
        sections.append(c.explore.section("The data"))
    failed = [{"model": r.name, "error": r.error} for r in c.results if not r.ok]
    if failed:
        sections.append(Section("Failed models", [Table(failed)], anchor="failed"))
    return Document(f"Fashion-MNIST model comparison ({c.preset.name})", intro, sections,
                    toc=True)


def write_reports(c: Comparison) -> dict[str, Path]:
    """Write `report.html` and `report.md` into the comparison's folder."""
    written = write_document(build_report(c), c.out_dir / "report.html",
                             c.out_dir / "report.md")
    return {"report.html": written["html"], "report.md": written["markdown"]}
