"""The two renderers of a `Document`: a self-contained HTML page and its Markdown twin.

Both are Jinja2 templates shipped in `fmnist/reporting/templates/`. HTML autoescaping is on, so
no text from data — a class called `<script>`, a user's folder name — can become markup, and
every figure is embedded as a data URI, so the page opens offline and survives being mailed.
The Markdown renderer escapes every text the same way (`md_escape`), so `report.md` never
writes a name raw either; its figures are links relative to the Markdown file.
"""

from __future__ import annotations

import base64
import os
import re
from functools import cache
from pathlib import Path
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from fmnist.fileio import atomic_write_text
from fmnist.reporting.document import Document, Figure, Paragraph, Table

#: Characters with a meaning in (CommonMark/GitHub) Markdown; each is backslash-escaped.
MD_SPECIAL = re.compile(r"([\\`*_\[\]<>#|&~])")


def md_escape(text: object) -> str:
    """`text` as literal Markdown: specials backslash-escaped, line breaks as spaces."""
    return MD_SPECIAL.sub(r"\\\1", " ".join(str(text).splitlines()))


def data_uri(png_path: str | Path) -> str:
    """The PNG file's bytes as a `data:image/png;base64,...` URI (the page needs no files)."""
    data = Path(png_path).read_bytes()
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def md_table(table: Table) -> str:
    """A Markdown pipe table: escaped cells, numeric columns right-aligned."""
    headers = list(table.headers.values())
    cells = table.cells()
    numeric = [any(row[i].numeric for row in cells) for i in range(len(headers))]
    lines = ["| " + " | ".join(md_escape(h) for h in headers) + " |",
             "|" + "|".join(" ---: " if n else " --- " for n in numeric) + "|"]
    lines += ["| " + " | ".join(md_escape(c.text) for c in row) + " |" for row in cells]
    return "\n".join(lines)


@cache
def environment(autoescape: bool) -> Environment:
    """The Jinja2 environment of the shipped templates: HTML-autoescaping, or (for Markdown)
    plain with the `md` filter; one of each per process."""
    env = Environment(loader=PackageLoader("fmnist.reporting", "templates"),
                      autoescape=select_autoescape(["j2"]) if autoescape else False,
                      undefined=StrictUndefined, trim_blocks=not autoescape,
                      lstrip_blocks=not autoescape, keep_trailing_newline=True)
    env.tests.update(paragraph=lambda b: isinstance(b, Paragraph),
                     table=lambda b: isinstance(b, Table),
                     figure=lambda b: isinstance(b, Figure))
    env.filters.update(md=md_escape, md_table=md_table)
    env.globals.update(data_uri=data_uri)
    return env


def render_html(doc: Document) -> str:
    """The document as one HTML5 page with inline CSS and embedded figures."""
    return environment(True).get_template("report.html.j2").render(doc=doc, title=doc.title)


def render_markdown(doc: Document, base_dir: str | Path) -> str:
    """The document as Markdown for a file in `base_dir` (figure links are relative to it)."""
    base = Path(base_dir).resolve()

    def link(path: Path) -> str:
        return quote(Path(os.path.relpath(Path(path).resolve(), base)).as_posix())

    text = environment(False).get_template("report.md.j2").render(doc=doc, link=link)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def write_document(doc: Document, html_path: str | Path | None = None,
                   md_path: str | Path | None = None) -> dict[str, Path]:
    """Render and write (atomically) the HTML page and/or the Markdown file."""
    written = {}
    if html_path is not None:
        written["html"] = atomic_write_text(html_path, render_html(doc))
    if md_path is not None:
        written["markdown"] = atomic_write_text(md_path, render_markdown(doc, Path(md_path).parent))
    return written
