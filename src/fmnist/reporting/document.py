"""A report as data: sections of paragraphs, tables and figures, built once, rendered twice.

The comparison report and the data analysis are each built as one `Document` from their
numbers; `fmnist.reporting.render` turns the same document into a self-contained HTML page and
into Markdown. Nothing is written twice by hand, so the two formats cannot drift apart, and a
section built by one report (the data analysis) is included in another (the comparison) as a
plain object — its headings move one level down by nesting, not by editing text.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path


def format_cell(value: object) -> str:
    """Numbers readable at a glance: floats to 4 significant digits, big ints with commas."""
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    if isinstance(value, numbers.Real):
        return f"{float(value):.4g}"
    return str(value)


@dataclass(frozen=True)
class Paragraph:
    """Plain text (never markup); `style` is "note" (smaller, grey) or "warning" (bold)."""

    text: str
    style: str = ""


@dataclass(frozen=True)
class Cell:
    """One formatted table cell; numbers are right-aligned by the renderers."""

    text: str
    numeric: bool = False


@dataclass
class Table:
    """Rows of values under named columns.

    `columns` picks and orders keys; a mapping also renames them (key → header). `formats`
    gives a format spec per key (e.g. `{"acc": ".2%"}`); other values use `format_cell`.
    """

    rows: Sequence[Mapping[str, object]]
    columns: Sequence[str] | Mapping[str, str] | None = None
    caption: str = ""
    formats: Mapping[str, str] = field(default_factory=dict)
    anchor: str = ""

    @property
    def headers(self) -> dict[str, str]:
        columns = self.columns if self.columns is not None else (
            list(self.rows[0]) if self.rows else [])
        return dict(columns) if isinstance(columns, Mapping) else {c: c for c in columns}

    def cells(self) -> list[list[Cell]]:
        """Every row's cells, formatted, in column order (missing keys are empty)."""
        out = []
        for row in self.rows:
            line = []
            for key in self.headers:
                value = row.get(key)
                numeric = isinstance(value, numbers.Real) and not isinstance(value, bool)
                text = (format(value, self.formats[key]) if key in self.formats
                        and value is not None else format_cell(value))
                line.append(Cell(text, numeric))
            out.append(line)
        return out


@dataclass(frozen=True)
class Figure:
    """A PNG on disk with its caption; `title` (optional) is a small heading above it."""

    path: Path
    caption: str = ""
    title: str = ""


Block = Paragraph | Table | Figure


@dataclass
class Section:
    """A titled part of a document; `anchor` is its id in HTML (and its table-of-contents
    link). Subsections render one heading level below their parent."""

    title: str
    blocks: list[Block] = field(default_factory=list)
    anchor: str = ""
    subsections: list[Section] = field(default_factory=list)


@dataclass
class Document:
    """A whole report: its title, the blocks before the first section (the verdict), the
    sections, and whether to list the sections in a table of contents."""

    title: str
    intro: list[Block] = field(default_factory=list)
    sections: list[Section] = field(default_factory=list)
    toc: bool = False
