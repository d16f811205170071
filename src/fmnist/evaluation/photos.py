"""Real-photo evaluation: a model and a photo pipeline on a labelled folder of photos.

The official test set says little about photos (a ResNet at 0.949 on it names about half of real
product photos), so a folder of labelled photos is scored as its own benchmark: top-1 and top-2
accuracy with Wilson intervals (a few dozen photos leave wide ones), per class, how often a
wrong answer was at least flagged "not sure", and a self-contained HTML contact sheet showing
each photo, every conversion step, the 28×28 the model saw and its top-3.

A folder is labelled by a `labels.tsv` (file name, a tab, the class name; `#` comments and
blank lines ignored) or, without one, by one sub-folder per class named like the class.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fmnist.concurrency import default_workers, ordered_map
from fmnist.data.folder import IMAGE_SUFFIXES
from fmnist.errors import DataError, FmnistError
from fmnist.evaluation.metrics import accuracy_ci
from fmnist.images.photo import DEFAULT_PIPELINE, PhotoResult, prepare_photo
from fmnist.predict import UNSURE_BELOW, ResolvedModel, photo_views, predict_proba

LABELS_FILE = "labels.tsv"
# A labels.tsv longer than this is refused (it is read whole).
MAX_LABELS_BYTES = 1 << 20


@dataclass
class PhotoOutcome:
    """One photo's answer: true class, top-3 (name, probability), and the conversion steps."""

    path: Path
    true: str
    top: list[tuple[str, float]]
    unsure: bool
    steps: list[tuple[str, np.ndarray]] = field(default_factory=list)
    error: str | None = None

    @property
    def correct(self) -> bool:
        return bool(self.top) and self.top[0][0] == self.true

    @property
    def in_top2(self) -> bool:
        return any(name == self.true for name, _ in self.top[:2])


@dataclass
class PhotoEvaluation:
    """All outcomes of one run, with the summary numbers computed from them."""

    outcomes: list[PhotoOutcome]
    class_names: tuple[str, ...]
    pipeline: str

    @property
    def scored(self) -> list[PhotoOutcome]:
        return [o for o in self.outcomes if o.error is None]

    def summary(self) -> dict[str, Any]:
        """Top-1/top-2 with 95 % Wilson intervals, unsure-flag rates and per-class counts."""
        scored = self.scored
        n = len(scored)
        top1 = sum(o.correct for o in scored)
        top2 = sum(o.in_top2 for o in scored)
        wrong = [o for o in scored if not o.correct]
        right = [o for o in scored if o.correct]
        out: dict[str, Any] = {
            "pipeline": self.pipeline, "photos": len(self.outcomes), "scored": n,
            "unreadable": len(self.outcomes) - n, "top1": top1, "top2": top2,
            "wrong_flagged_unsure": sum(o.unsure for o in wrong), "wrong": len(wrong),
            "right_flagged_unsure": sum(o.unsure for o in right),
        }
        if n:
            out["top1_accuracy"], out["top2_accuracy"] = top1 / n, top2 / n
            out["top1_ci"], out["top2_ci"] = accuracy_ci(top1, n), accuracy_ci(top2, n)
        out["per_class"] = {
            name: {"photos": len(rows), "top1": sum(o.correct for o in rows),
                   "top2": sum(o.in_top2 for o in rows)}
            for name in self.class_names
            if (rows := [o for o in scored if o.true == name])}
        return out


def read_labelled_folder(folder: Path | str, class_names: Sequence[str]) -> list[tuple[Path, str]]:
    """(photo path, class name) pairs from `labels.tsv` or from one sub-folder per class."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder of photos")
    known = {name.casefold(): name for name in class_names}
    labels = folder / LABELS_FILE
    if labels.is_file():
        return _read_labels_tsv(labels, known)
    pairs = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        name = known.get(sub.name.casefold()) or known.get(sub.name.replace("_", "/").casefold())
        if name is None:
            raise DataError(f"{sub}: sub-folder name is not a class of the model "
                            f"({', '.join(class_names)})")
        pairs += [(p, name) for p in sorted(sub.iterdir())
                  if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    if not pairs:
        raise DataError(f"{folder}: no {LABELS_FILE} and no class sub-folders with photos")
    return pairs


def _read_labels_tsv(path: Path, known: dict[str, str]) -> list[tuple[Path, str]]:
    if path.stat().st_size > MAX_LABELS_BYTES:
        raise DataError(f"{path}: larger than {MAX_LABELS_BYTES >> 10} KiB")
    pairs = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        file_name, sep, label = line.partition("\t")
        name = known.get(label.strip().casefold())
        if not sep or name is None:
            raise DataError(f"{path}:{number}: expected 'file<TAB>class' with a class of the "
                            f"model, got {line!r}")
        photo = path.parent / file_name.strip()
        if photo.parent != path.parent:
            raise DataError(f"{path}:{number}: {file_name!r} is not a file in this folder")
        pairs.append((photo, name))
    if not pairs:
        raise DataError(f"{path}: lists no photos")
    return pairs


Converter = Callable[[Path], PhotoResult]


def evaluate_photos(resolved: ResolvedModel, pairs: Sequence[tuple[Path, str]], *,
                    pipeline: str = DEFAULT_PIPELINE, keep_steps: bool = True,
                    unsure_below: float = UNSURE_BELOW, convert: Converter | None = None,
                    workers: int | None = None) -> PhotoEvaluation:
    """Convert every photo with `pipeline` (or `convert`), score all in one batch (footwear
    also turned, as `fmnist predict` does: `fmnist.footwear_views`), keep steps.

    Photos are converted on `workers` threads (default: one per core, `fmnist.concurrency`);
    on one when steps are kept, as `fmnist predict --show` does."""
    convert = convert or (lambda p: prepare_photo(p, resolved.size, keep_steps=keep_steps,
                                                  pipeline=pipeline))

    def attempt(pair: tuple[Path, str]) -> PhotoResult | FmnistError:
        try:
            return convert(pair[0])
        except FmnistError as exc:
            return exc

    threads = 1 if keep_steps else workers or default_workers()
    outcomes: list[PhotoOutcome] = []
    images = []
    for (path, true), result in zip(pairs, ordered_map(attempt, pairs, threads), strict=True):
        if isinstance(result, FmnistError):
            outcomes.append(PhotoOutcome(path, true, [], False, error=str(result)))
            continue
        outcomes.append(PhotoOutcome(path, true, [], False, steps=result.steps))
        images.append(result.image)
    if images:
        batch = np.stack(images)
        proba = photo_views(resolved, predict_proba(resolved, batch), batch)
        rows = iter(proba)
        for outcome in outcomes:
            if outcome.error is None:
                row = next(rows)
                order = np.argsort(-row, kind="stable")[:3]
                outcome.top = [(resolved.class_names[i], float(row[i])) for i in order]
                outcome.unsure = bool(row[order[0]] < unsure_below)
    return PhotoEvaluation(outcomes, resolved.class_names, pipeline)


def png_data_uri(array: np.ndarray, min_edge: int = 84) -> str:
    """A step image as an inline PNG, enlarged (nearest) so a 28×28 is visible as pixels."""
    import base64

    from PIL import Image

    image = Image.fromarray(array)
    factor = max(1, min_edge // max(image.size))
    if factor > 1:
        image = image.resize((image.width * factor, image.height * factor),
                             Image.Resampling.NEAREST)
    elif max(image.size) > 160:
        image.thumbnail((160, 160))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


SHEET_CSS = ("<style>.photo{display:flex;flex-wrap:wrap;align-items:flex-end;gap:.4rem;"
             "border-top:1px solid #ccc;padding:.5rem 0}.photo figure{margin:0}"
             ".photo figcaption{font-size:.75rem}.wrong{background:#fff2f2}"
             ".verdict{min-width:14rem;font-size:.85rem}</style>")


def summary_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The headline numbers as table rows (top-1, top-2 with intervals, unsure flags)."""
    n = summary["scored"]
    rows = []
    for key, label in (("top1", "top-1"), ("top2", "top-2")):
        if n:
            low, high = summary[f"{key}_ci"]
            rows.append({"measure": label, "value": f"{summary[key]}/{n} "
                         f"({summary[key] / n:.1%}, 95% CI {low:.1%}–{high:.1%})"})
    rows.append({"measure": "wrong answers flagged 'not sure'",
                 "value": f"{summary['wrong_flagged_unsure']}/{summary['wrong']}"})
    rows.append({"measure": "right answers flagged 'not sure'",
                 "value": f"{summary['right_flagged_unsure']}/{summary['top1']}"})
    rows.append({"measure": "unreadable photos", "value": str(summary["unreadable"])})
    return rows


def _photo_row(outcome: PhotoOutcome) -> str:
    from fmnist.reporting.html import escape

    figures = "".join(f'<figure><img src="{png_data_uri(array)}" alt="{escape(step)}">'
                      f"<figcaption>{escape(step)}</figcaption></figure>"
                      for step, array in outcome.steps)
    if outcome.error:
        verdict = f"error: {escape(outcome.error)}"
    else:
        ranked = "<br>".join(f"{escape(name)} {p:.1%}" for name, p in outcome.top)
        mark = "right" if outcome.correct else "WRONG"
        unsure = " (not sure)" if outcome.unsure else ""
        verdict = f"<b>{escape(outcome.path.name)}</b>: {mark}{unsure}<br>true: " \
                  f"{escape(outcome.true)}<br>{ranked}"
    css = "photo" if outcome.correct else "photo wrong"
    return f'<div class="{css}"><div class="verdict">{verdict}</div>{figures}</div>'


def write_contact_sheet(evaluation: PhotoEvaluation, path: Path | str, title: str) -> Path:
    """A self-contained HTML page: summary, per class, then photo → steps → 28×28 → top-3."""
    from fmnist.reporting import html

    summary = evaluation.summary()
    per_class = [{"class": name, **counts} for name, counts in summary["per_class"].items()]
    body = (SHEET_CSS
            + html.paragraph(f"photo pipeline: {evaluation.pipeline}")
            + html.table(summary_rows(summary), caption="Summary")
            + html.table(per_class, caption="Per class (photos, top-1 right, top-2 right)")
            + html.section("Every photo", "".join(_photo_row(o) for o in evaluation.outcomes)))
    return html.write_page(path, title, body)


def summary_text(summary: dict[str, Any]) -> str:
    """The summary as lines for a terminal: headline numbers, then one line per class."""
    lines = [f"photos: {summary['photos']} (pipeline {summary['pipeline']})"]
    lines += [f"{row['measure']}: {row['value']}" for row in summary_rows(summary)]
    lines += [f"  {name:<12} top-1 {c['top1']}/{c['photos']}  top-2 {c['top2']}/{c['photos']}"
              for name, c in summary["per_class"].items()]
    return "\n".join(lines)


def evaluate_photo_folder(model_or_run: Any, folder: Path | str, *,
                          pipeline: str = DEFAULT_PIPELINE,
                          report: Path | str | None = None) -> PhotoEvaluation:
    """Read a labelled folder, score it, and write the contact sheet to `report` if given."""
    from fmnist.predict import resolve_model

    resolved = resolve_model(model_or_run)
    pairs = read_labelled_folder(folder, resolved.class_names)
    evaluation = evaluate_photos(resolved, pairs, pipeline=pipeline,
                                 keep_steps=report is not None)
    if report is not None:
        write_contact_sheet(evaluation, report, f"Real photos: {Path(folder).name}")
    return evaluation
