"""The comparison report as one self-contained HTML page and a Markdown twin.

The page tells the story in order: the data (the `fmnist explore` analysis, first) → the models
that ran and on how much data → the leaderboard → the best model → what it gets wrong. Every
figure is embedded (`fmnist.reporting.html`), so `report.html` opens offline and survives being
mailed.
Numbers are printed from the same `Comparison` that `results.json` is written from, with fixed
formats (accuracy 4 decimals, p-values 2 significant digits), so the two always agree.
"""

from __future__ import annotations

import platform
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fmnist.fileio import atomic_write_text
from fmnist.reporting import html

if TYPE_CHECKING:
    from fmnist.evaluation.compare import Comparison, ModelResult

LEADERBOARD_COLUMNS = {
    "rank": "rank", "model": "model", "family": "family", "accuracy": "accuracy",
    "ci": "95% CI", "macro_f1": "macro-F1", "mcnemar_p": "McNemar p vs best",
    "significant": "worse than best?", "fit_seconds": "fit s", "speed": "predict images/s",
    "n_params": "parameters", "size": "size MB", "train_images": "training images",
}


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
            p = fmt_p(r.mcnemar["pvalue"])
            sig = "yes" if r.mcnemar["significant"] else "no (tie)"
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


EXTRA_CAPTION = ("Model-specific metrics on the test set (k-means: how its clusters match the "
                 "classes; train_ = on its training data)")


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
    from fmnist.models import get_spec

    defaults = get_spec(r.name).defaults
    changed = {k: v for k, v in r.params.items() if k not in defaults or defaults[k] != v}
    return ", ".join(f"{k}={v}" for k, v in changed.items()) or "defaults"


def model_rows(c: Comparison) -> list[dict[str, Any]]:
    n_train = len(c.train)
    return [{"model": r.name, "family": r.family, "description": r.description,
             "training images": _subset_note(r, n_train), "settings": _params_text(r),
             "run": ("reused " if r.reused else "") + (r.run_dir.name if r.run_dir else "")}
            for r in c.results]


def _summary_sentence(c: Comparison) -> str:
    best = c.best
    if best is None:
        return "Every model failed; see the table below for the reasons."
    ev = best.evaluation
    ties = [r.name for r in c.results[1:] if r.ok and r.mcnemar and not r.mcnemar["significant"]]
    tie_text = (f" Not significantly different from it (McNemar exact, p ≥ 0.05): "
                f"{', '.join(ties)}." if ties else
                " Every other model is significantly worse (McNemar exact, p < 0.05).")
    return (f"Best model: {best.name} with test accuracy {fmt_acc(ev.accuracy)} "
            f"(95% CI {fmt_acc(ev.ci_low)}–{fmt_acc(ev.ci_high)}) and macro-F1 "
            f"{fmt_acc(ev.macro['f1'])} on {ev.n_images:,} test images.{tie_text}")


def _subset_warning(c: Comparison) -> str | None:
    subset = [f"{r.name} ({r.train_images:,})" for r in c.results
              if r.train_images < len(c.train)]
    if not subset:
        return None
    return (f"Trained on a stratified subset of the {len(c.train):,} training images: "
            f"{', '.join(subset)}. Their accuracy is lower than with all data; all models are "
            f"tested on the same {len(c.test):,} test images.")


def html_report(c: Comparison) -> str:
    """The body of `report.html`."""
    parts = []
    intro = [html.paragraph(_summary_sentence(c)),
             html.paragraph(f"Preset '{c.preset.name}': {c.preset.description}", "note"),
             html.paragraph(f"Data: {c.data_description}. Total time {c.seconds:.0f} s on "
                            f"{platform.machine()} ({_cpu_count()} CPU cores); started "
                            f"{c.started}.", "note")]
    parts.append("\n".join(intro))
    if c.explore is not None:
        parts.append(c.explore.html_section("1. The data"))
    warning = _subset_warning(c)
    models_body = [html.table(model_rows(c), caption="Models in this comparison")]
    if warning:
        models_body.insert(0, html.paragraph(warning))
    parts.append(html.section("2. The models", "\n".join(models_body), anchor="models"))

    results_body = [
        html.paragraph(
            "Accuracy on the test set with a 95% Wilson confidence interval. McNemar's exact "
            "test compares each model with the best one on the same test images (only the "
            "images exactly one of the two gets right count); 'yes' means worse at p < 0.05 "
            "(no correction for multiple comparisons)."),
        f'<div id="leaderboard">{html.table(leaderboard_rows(c), LEADERBOARD_COLUMNS)}</div>',
    ]
    for key, caption in (("accuracy_vs_time", "Test accuracy (95% CI) against training time"),
                         ("f1_heatmap", "F1 per class and model: pale columns are the garments "
                                        "every model finds hard")):
        if key in c.figures:
            results_body.append(html.figure(c.figures[key], caption))
    best_name = c.best.name if c.best else None
    for r in c.results:
        if r.name != best_name and f"curves_{r.name}" in c.figures:
            results_body.append(html.figure(c.figures[f"curves_{r.name}"], _curves_caption(r)))
    extra = extra_rows(c)
    if extra:
        results_body.append(html.table(extra, caption=EXTRA_CAPTION))
    parts.append(html.section("3. Results", "\n".join(results_body), anchor="results"))

    best = c.best
    if best is not None:
        parts.append(html.section(f"4. The best model: {best.name}", _best_html(c, best),
                                  anchor="best"))
        parts.append(html.section("5. What it gets wrong", _mistakes_html(c, best),
                                  anchor="mistakes"))
    failed = [r for r in c.results if not r.ok]
    if failed:
        parts.append(html.section("Failed models", html.table(
            [{"model": r.name, "error": r.error} for r in failed]), anchor="failed"))
    return "\n".join(parts)


def _best_html(c: Comparison, best: ModelResult) -> str:
    ev = best.evaluation
    where = f" Saved as a run in {c.best_dir}." if c.best_dir else ""
    facts = (f"{best.description}. Trained on {_subset_note(best, len(c.train))} images with "
             f"{_params_text(best)}.{where}")
    extra = ""
    if ev.log_loss is not None:
        extra = f" Log-loss {ev.log_loss:.4f}; top-2 accuracy {fmt_acc(ev.top2_accuracy)}."
    body = [html.paragraph(facts + extra),
            html.table([{**row, "precision": fmt_acc(row["precision"]),
                         "recall": fmt_acc(row["recall"]), "f1": fmt_acc(row["f1"])}
                        for row in ev.per_class], caption="Per-class report (test set)")]
    if "best_confusion" in c.figures:
        body.append(html.figure(c.figures["best_confusion"],
                                "Confusion matrix: rows are the actual class, colour the row "
                                "share, numbers the counts"))
    if f"curves_{best.name}" in c.figures:
        body.append(html.figure(c.figures[f"curves_{best.name}"], _curves_caption(best)))
    return "\n".join(body)


def _curves_caption(r: ModelResult) -> str:
    return f"{r.name}: loss and accuracy per epoch, training vs validation"


def _mistakes_html(c: Comparison, best: ModelResult) -> str:
    ev = best.evaluation
    body = [html.table([{**p, "rate": f"{p['rate']:.1%}"} for p in ev.confused_pairs],
                       {"actual": "actual class", "predicted": "taken for", "count": "images",
                        "rate": "share of the actual class"},
                       caption="Most confused class pairs")]
    for key, caption in (("best_mistakes", "The mistakes the model was surest of "
                                           "(its probability for the wrong class)"),
                         ("best_predictions", "Random test images: actual and predicted "
                                              "class, wrong ones framed red")):
        if key in c.figures:
            body.append(html.figure(c.figures[key], caption))
    return "\n".join(body)


def markdown_report(c: Comparison) -> str:
    """`report.md`: the same story; figures are linked as files beside it."""
    lines = [f"# Fashion-MNIST model comparison ({c.preset.name})", "", _summary_sentence(c), "",
             f"_Preset '{c.preset.name}': {c.preset.description}_", "",
             f"_Data: {c.data_description}. Total time {c.seconds:.0f} s; started {c.started}._",
             ""]
    if c.explore is not None:
        lines += ["## 1. The data", "", _demoted_explore_md(c), ""]
    lines += ["## 2. The models", ""]
    warning = _subset_warning(c)
    if warning:
        lines += [f"**{warning}**", ""]
    lines += _md_table(model_rows(c)) + [""]
    lines += ["## 3. Results", "",
              "Accuracy with a 95% Wilson interval; McNemar's exact test against the best "
              "model (worse at p < 0.05, no multiple-comparison correction).", ""]
    rows = leaderboard_rows(c)
    lines += _md_table([{LEADERBOARD_COLUMNS[k]: row.get(k, "") for k in LEADERBOARD_COLUMNS}
                        for row in rows]) + [""]
    extra = extra_rows(c)
    if extra:
        lines += [f"_{EXTRA_CAPTION}_", ""] + _md_table(extra) + [""]
    best = c.best
    lines += _md_figures(c, ["accuracy_vs_time", "f1_heatmap"]
                         + [f"curves_{r.name}" for r in c.results if r is not best])
    if best is not None:
        ev = best.evaluation
        lines += [f"## 4. The best model: {best.name}", "",
                  f"{best.description}. Trained on {_subset_note(best, len(c.train))} images with "
                  f"{_params_text(best)}."
                  + (f" Saved as a run in `{c.best_dir}`." if c.best_dir else ""), ""]
        lines += _md_table([{**row, "precision": fmt_acc(row["precision"]),
                             "recall": fmt_acc(row["recall"]), "f1": fmt_acc(row["f1"])}
                            for row in ev.per_class]) + [""]
        lines += _md_figures(c, ["best_confusion", f"curves_{best.name}"])
        lines += ["## 5. What it gets wrong", ""]
        lines += _md_table([{"actual": p["actual"], "taken for": p["predicted"],
                             "images": p["count"], "share": f"{p['rate']:.1%}"}
                            for p in ev.confused_pairs]) + [""]
        lines += _md_figures(c, ("best_mistakes", "best_predictions"))
    failed = [r for r in c.results if not r.ok]
    if failed:
        lines += ["## Failed models", ""] + [f"- **{r.name}**: {r.error}" for r in failed] + [""]
    return "\n".join(lines)


def _demoted_explore_md(c: Comparison) -> str:
    """The explore summary without its title, headings one level down, figure links pointing
    into its folder (relative to the report)."""
    text = re.sub(r"\A# [^\n]*\n+", "", c.explore.markdown())  # its title: ours is "1. The data"
    text = re.sub(r"^(#+) ", lambda m: "#" * (len(m.group(1)) + 1) + " ", text, flags=re.M)
    try:
        rel = Path(c.explore.out_dir).resolve().relative_to(c.out_dir.resolve()).as_posix()
    except ValueError:
        rel = Path(c.explore.out_dir).resolve().as_posix()
    return re.sub(r"!\[([^\]]*)\]\(([^)/]+)\)", lambda m: f"![{m.group(1)}]({rel}/{m.group(2)})",
                  text)


def _md_figures(c: Comparison, keys) -> list[str]:
    lines = []
    for key in keys:
        if key in c.figures:
            path = Path(c.figures[key])
            lines += [f"![{key.replace('_', ' ')}](figures/{path.name})", ""]
    return lines


def _md_table(rows: list[dict[str, Any]]) -> list[str]:
    if not rows:
        return []
    keys = list(rows[0])

    def cell(value: Any) -> str:
        return html.format_cell(value).replace("|", "\\|").replace("\n", " ")

    out = ["| " + " | ".join(keys) + " |", "|" + "|".join(" --- " for _ in keys) + "|"]
    out += ["| " + " | ".join(cell(row.get(k, "")) for k in keys) + " |" for row in rows]
    return out


def _cpu_count() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def write_reports(c: Comparison) -> dict[str, Path]:
    """Write `report.html` and `report.md` into the comparison's folder."""
    title = f"Fashion-MNIST model comparison ({c.preset.name})"
    html_path = html.write_page(c.out_dir / "report.html", title, html_report(c))
    md_path = atomic_write_text(c.out_dir / "report.md", markdown_report(c))
    return {"report.html": html_path, "report.md": md_path}
