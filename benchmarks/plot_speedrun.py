"""Accuracy against training time for every speedrun recipe measured (issue 13, item 4).

    .venv/bin/python benchmarks/plot_speedrun.py benchmarks/results/speedrun_*.jsonl \
        --out benchmarks/results/speedrun.svg

Reads the `summary` lines `benchmarks/speedrun.py` writes (one per recipe and epoch count) and
draws one panel per machine: numbers from different machines never share axes, because the
guide compares timings only within one machine and session. Each point is a recipe's mean test
accuracy over its seeds (error bar: the standard deviation across seeds) at its mean training
time; the x axis is logarithmic because GPU and CPU recipes span seconds to minutes.
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen before pyplot loads)

MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*", "<", ">")


def read_summaries(paths: list[Path]) -> dict[str, list[dict[str, Any]]]:
    """The summary lines of every file, grouped by the machine they name; each keeps the name
    of its file (`source`), which tells apart runs of one recipe before and after a change."""
    by_machine: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for path in paths:
        for line in path.read_text().splitlines():
            if not line.strip():
                continue
            record = json.loads(line)
            if record.get("phase") == "summary":
                record["source"] = path.stem
                by_machine[record.get("machine", "unknown machine")].append(record)
    return by_machine


LABELLED = ("width", "lr", "batch_size", "augment", "compile", "cuda_graph")
"""Settings named in a point's label where the run set them."""


def label(summary: dict[str, Any]) -> str:
    """Recipe name and the `LABELLED` settings the run set, the epochs actually trained, the
    seeds and the results file (older lines name the overrides `params`)."""
    params = summary.get("overrides") or summary.get("params") or {}
    overridden = [f"{key} {params[key]}" for key in LABELLED if key in params]
    parts = [summary["recipe"], *overridden]
    return (" ".join(parts) + f", {summary['epochs']} ep × {summary['seeds']} seeds"
            + (f" [{summary['source']}]" if "source" in summary else ""))


def plot(by_machine: dict[str, list[dict[str, Any]]], out: Path) -> None:
    """One panel per machine; points labelled with `label`."""
    machines = sorted(by_machine)
    fig, axes = plt.subplots(len(machines), 1, figsize=(9, 4.5 * len(machines)), squeeze=False)
    for ax, name in zip(axes[:, 0], machines, strict=True):
        # Recipes often sit at the same accuracy, so they are named in a legend, not on the plot.
        for index, summary in enumerate(sorted(by_machine[name], key=lambda s: s["train_s_mean"])):
            ax.errorbar(summary["train_s_mean"], summary["acc_mean"],
                        yerr=summary.get("acc_std", 0.0), fmt=MARKERS[index % len(MARKERS)],
                        capsize=3, label=label(summary))
        ax.legend(fontsize=7, loc="lower right")
        ax.set_xscale("log")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("training time, s (data in memory; log scale)")
        ax.set_ylabel("official test accuracy")
        ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path, help="speedrun.jsonl files")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/speedrun.svg"))
    args = parser.parse_args()
    by_machine = read_summaries(args.files)
    if not by_machine:
        raise SystemExit("no summary lines in the given files")
    plot(by_machine, args.out)
    print(f"{sum(map(len, by_machine.values()))} recipes on {len(by_machine)} machine(s) "
          f"-> {args.out}")


if __name__ == "__main__":
    main()
