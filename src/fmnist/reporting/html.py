"""Self-contained HTML pages: figures embedded as data URIs, inline CSS, no external assets.

A report must survive being mailed, zipped or opened offline, so nothing here ever links to a
file or a URL: every image is inlined and the style sheet travels in the page. Every piece of
text that reaches the page goes through `escape`, so class names like "T-shirt/top" or a user's
folder name can never break the markup.
"""

from __future__ import annotations

import base64
import html
import numbers
from collections.abc import Mapping, Sequence
from pathlib import Path

from fmnist.fileio import atomic_write_text

CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222;
       max-width: 1100px; margin: 2rem auto; padding: 0 1rem; line-height: 1.45; }
h1 { border-bottom: 2px solid #444; padding-bottom: .3rem; }
h2 { margin-top: 2.2rem; border-bottom: 1px solid #ccc; padding-bottom: .2rem; }
figure { margin: 1.2rem 0; text-align: center; }
figure img { max-width: 100%; height: auto; border: 1px solid #ddd; }
figcaption { font-size: .92rem; color: #555; margin-top: .3rem; }
table { border-collapse: collapse; margin: 1rem 0; font-size: .92rem; }
caption { caption-side: top; text-align: left; font-weight: 600; padding-bottom: .3rem; }
th, td { border: 1px solid #ccc; padding: .25rem .6rem; }
th { background: #f0f0f0; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr:nth-child(even) td { background: #fafafa; }
.note { color: #555; font-size: .92rem; }
"""


def escape(text: object) -> str:
    """HTML-escape any value's text (quotes included, so it is safe in attributes too)."""
    return html.escape(str(text), quote=True)


def data_uri(png_path: str | Path) -> str:
    """The PNG file's bytes as a `data:image/png;base64,...` URI (the page needs no files)."""
    data = Path(png_path).read_bytes()
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def figure(png_path: str | Path, caption: str = "", alt: str | None = None) -> str:
    """An embedded image with an optional caption; `alt` defaults to the caption."""
    alt_text = escape(alt if alt is not None else caption or Path(png_path).stem)
    cap = f"<figcaption>{escape(caption)}</figcaption>" if caption else ""
    return f'<figure><img src="{data_uri(png_path)}" alt="{alt_text}">{cap}</figure>'


def format_cell(value: object) -> str:
    """Numbers readable at a glance: floats to 4 significant digits, big ints with commas."""
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    if isinstance(value, numbers.Real):
        return f"{float(value):.4g}"
    return str(value)


def table(rows: Sequence[Mapping[str, object]],
          columns: Sequence[str] | Mapping[str, str] | None = None, caption: str = "",
          formats: Mapping[str, str] | None = None) -> str:
    """An HTML table of `rows` (dicts). `columns` picks and orders keys; a mapping also renames
    them (key → header). `formats` gives a format spec per key (e.g. `{"acc": ".2%"}`), others
    use `format_cell`. Numeric cells are right-aligned; missing keys render empty."""
    formats = formats or {}
    if columns is None:
        columns = list(rows[0]) if rows else []
    headers = dict(columns) if isinstance(columns, Mapping) else {c: c for c in columns}
    head = "".join(f"<th>{escape(h)}</th>" for h in headers.values())
    body = []
    for row in rows:
        cells = []
        for key in headers:
            value = row.get(key)
            numeric = isinstance(value, numbers.Real) and not isinstance(value, bool)
            cls = ' class="num"' if numeric else ""
            text = (format(value, formats[key]) if key in formats and value is not None
                    else format_cell(value))
            cells.append(f"<td{cls}>{escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    cap = f"<caption>{escape(caption)}</caption>" if caption else ""
    return (f"<table>{cap}<thead><tr>{head}</tr></thead>"
            f"<tbody>{''.join(body)}</tbody></table>")


def section(title: str, body_html: str, anchor: str | None = None) -> str:
    """A titled `<section>`; `body_html` is trusted markup built with this module's helpers."""
    ident = f' id="{escape(anchor)}"' if anchor else ""
    return f"<section{ident}><h2>{escape(title)}</h2>{body_html}</section>"


def paragraph(text: str, css_class: str = "") -> str:
    """A paragraph of plain (escaped) text."""
    cls = f' class="{escape(css_class)}"' if css_class else ""
    return f"<p{cls}>{escape(text)}</p>"


def page(title: str, body_html: str) -> str:
    """A complete HTML5 document with the inline style sheet; `body_html` is trusted markup."""
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{escape(title)}</title><style>{CSS}</style></head>"
            f"<body><h1>{escape(title)}</h1>\n{body_html}\n</body></html>\n")


def write_page(path: str | Path, title: str, body_html: str) -> Path:
    """Write `page(title, body_html)` atomically (`fmnist.fileio`) and return the path."""
    return atomic_write_text(path, page(title, body_html))
