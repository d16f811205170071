"""HTML fragments for pages assembled by hand (the tuning and photo reports), rendered by the
same templates as every `Document` (`fmnist.reporting.render`), so there is one look and one
escaping rule.

A report must survive being mailed, zipped or opened offline, so nothing here ever links to a
file or a URL: every image is inlined and the style sheet travels in the page. Every piece of
text that reaches the page is escaped (`escape`), so class names like "T-shirt/top" or a
user's folder name can never break the markup; `section` and `page` take markup built with
these helpers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from markupsafe import Markup, escape

from fmnist.fileio import atomic_write_text
from fmnist.reporting.document import Figure, Paragraph, Table, format_cell
from fmnist.reporting.render import data_uri, environment

__all__ = ["data_uri", "escape", "figure", "format_cell", "page", "paragraph", "section",
           "table", "write_page"]


def _block(block: Paragraph | Table | Figure) -> str:
    return str(environment(True).get_template("blocks.html.j2").module.block(block))


def figure(png_path: str | Path, caption: str = "") -> str:
    """An embedded image with an optional caption (also its alt text)."""
    return _block(Figure(Path(png_path), caption))


def table(rows: Sequence[Mapping[str, object]],
          columns: Sequence[str] | Mapping[str, str] | None = None, caption: str = "",
          formats: Mapping[str, str] | None = None) -> str:
    """An HTML table of `rows` (dicts); see `fmnist.reporting.document.Table`."""
    return _block(Table(rows, columns, caption, formats or {}))


def paragraph(text: str, css_class: str = "") -> str:
    """A paragraph of plain (escaped) text."""
    return _block(Paragraph(text, css_class))


def section(title: str, body_html: str, anchor: str | None = None) -> str:
    """A titled `<section>`; `body_html` is trusted markup built with this module's helpers."""
    ident = Markup(' id="{}"').format(anchor) if anchor else ""
    return str(Markup("<section{}><h2>{}</h2>{}</section>").format(ident, title,
                                                                   Markup(body_html)))


def page(title: str, body_html: str) -> str:
    """A complete HTML5 document with the inline style sheet; `body_html` is trusted markup."""
    return environment(True).get_template("page.html.j2").render(title=title,
                                                                  body=Markup(body_html))


def write_page(path: str | Path, title: str, body_html: str) -> Path:
    """Write `page(title, body_html)` atomically (`fmnist.fileio`) and return the path."""
    return atomic_write_text(path, page(title, body_html))
