"""Shared matplotlib set-up for every figure: headless backend, one style, one colour per class.

Figures are written by scripts and servers with no display, so the Agg backend is forced before
pyplot is imported. Each area keeps its figures in its own module (`plots.data`, ...), one
function per figure, returning the saved PNG's path. Every text that comes from data (class
names, model names, titles that quote them) goes through `plain` inside the figure function.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)

STYLE = {
    "figure.dpi": 100,
    "savefig.dpi": 110,
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": False,
    "legend.frameon": False,
}


MAX_LABEL_CHARS = 60


def plain(text: object, limit: int = MAX_LABEL_CHARS) -> str:
    """`text` as matplotlib should draw it: literally.

    A `$` is escaped, so a class named `$x^2$` is never parsed as mathtext (an unbalanced one
    made the figure raise, and the report was never written); names longer than `limit` are cut
    with an ellipsis, so one long name cannot stretch a figure to an enormous canvas.
    """
    value = str(text)
    if len(value) > limit:
        value = value[:limit - 1] + "…"
    return value.replace("$", r"\$")


def plain_all(texts: Iterable[object], limit: int = MAX_LABEL_CHARS) -> list[str]:
    """`plain` of every item (tick labels, legend entries)."""
    return [plain(t, limit) for t in texts]


def class_colors(n: int) -> list:
    """A distinct colour per class (tab10, extended with tab20 beyond ten classes)."""
    cmap = plt.get_cmap("tab10" if n <= 10 else "tab20")
    return [cmap(i % cmap.N) for i in range(n)]


def style():
    """Context manager applying the shared style; wrap a whole figure function in it, since
    matplotlib reads most settings when each artist is created."""
    return plt.rc_context(STYLE)


def save(fig, path: str | Path) -> Path:
    """Save as PNG (tight, white background), close the figure to free memory, return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with plt.rc_context(STYLE):
        fig.savefig(path, format="png", bbox_inches="tight", facecolor="white")
    plt.close(fig)
    return path
