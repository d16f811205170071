"""Real-photo development numbers: models × photo pipelines on ../shared/photos/real.

    python benchmarks/photos_dev.py RUN [RUN…] [--pipelines paper,v2] [--default]

For every model (run folders; `--default` adds the shipped model) and pipeline: top-1 and top-2
with Wilson intervals on the 41-photo development set, per class, per hard condition (the tags
table of SOURCES.md), how many wrong answers were flagged "not sure", and the 6 easy photos of
../shared/photos. The shared folder sits beside the repository; it is never shipped.
"""

from __future__ import annotations

import argparse
import re
from collections import defaultdict
from pathlib import Path

from fmnist.evaluation.metrics import accuracy_ci
from fmnist.evaluation.photos import evaluate_photos, read_labelled_folder
from fmnist.predict import resolve_model
from fmnist.runs.store import load
from fmnist.weights import load_default

SHARED = Path(__file__).resolve().parents[2] / "shared" / "photos"
EASY = {"bag.jpg": "Bag", "dress.jpg": "Dress", "sandal.jpg": "Sandal", "shirt.jpg": "Shirt",
        "sneaker.png": "Sneaker", "trouser.jpg": "Trouser"}


def condition_tags(sources: Path) -> dict[str, list[str]]:
    """file → its hard-condition tags, from the last table of SOURCES.md."""
    text = sources.read_text(encoding="utf-8")
    table = text[text.index("## Hard-condition tags"):]
    tags = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and re.search(r"\.(jpg|png|webp)$", cells[0]):
            tags[cells[0]] = [t.strip() for t in cells[2].split(",") if t.strip()]
    return tags


def _rate(hits: int, n: int) -> str:
    low, high = accuracy_ci(hits, n)
    return f"{hits}/{n} = {hits / n:.1%} [{low:.1%}, {high:.1%}]"


def report(name: str, model, pipeline: str, tags: dict[str, list[str]]) -> None:
    resolved = resolve_model(model)
    pairs = read_labelled_folder(SHARED / "real", resolved.class_names)
    ev = evaluate_photos(resolved, pairs, pipeline=pipeline, keep_steps=False)
    s = ev.summary()
    easy = evaluate_photos(resolved, [(SHARED / f, c) for f, c in EASY.items()],
                           pipeline=pipeline, keep_steps=False).summary()
    print(f"## {name} · pipeline {pipeline}")
    print(f"top-1 {_rate(s['top1'], s['scored'])}; top-2 {_rate(s['top2'], s['scored'])}; "
          f"wrong flagged not sure {s['wrong_flagged_unsure']}/{s['wrong']}; "
          f"easy 6: {easy['top1']}/{easy['scored']}")
    print("per class: " + "; ".join(f"{c} {v['top1']}/{v['photos']}"
                                     for c, v in s["per_class"].items()))
    by_tag: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for o in ev.scored:
        for tag in tags.get(o.path.name, []):
            by_tag[tag][0] += o.correct
            by_tag[tag][1] += o.in_top2
            by_tag[tag][2] += 1
    print("per condition (top-1/top-2/n): " + "; ".join(
        f"{t} {a}/{b}/{n}" for t, (a, b, n) in sorted(by_tag.items())))
    print("wrong: " + ", ".join(f"{o.path.stem}→{o.top[0][0]}" for o in ev.scored
                                if not o.correct))
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="*", type=Path)
    parser.add_argument("--pipelines", default="paper,v2")
    parser.add_argument("--default", action="store_true", help="include the shipped model")
    args = parser.parse_args()
    if not (SHARED / "real").is_dir():
        raise SystemExit(f"{SHARED / 'real'} is absent: nothing to measure")
    tags = condition_tags(SHARED / "real" / "SOURCES.md")
    models = [(str(run), load(run)) for run in args.runs]
    if args.default:
        models.append(("shipped default", load_default()))
    for name, model in models:
        for pipeline in args.pipelines.split(","):
            report(name, model, pipeline, tags)


if __name__ == "__main__":
    main()
