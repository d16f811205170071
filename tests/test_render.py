"""One report model, two renderers: escaping, nesting and figure links. Fast tier (no data)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from fmnist.reporting.document import Document, Figure, Paragraph, Section, Table
from fmnist.reporting.render import md_escape, render_html, render_markdown, write_document

HOSTILE = "<script>alert(1)</script> | *bold* _x_ [link](http://e.example) # & `code`"


def _doc(tmp_path: Path) -> Document:
    png = tmp_path / "figures" / "fig.png"
    png.parent.mkdir()
    Image.new("L", (4, 3), 9).save(png)
    rows = [{"class": HOSTILE, "n": 1234, "acc": 0.91234}, {"class": "T-shirt/top", "n": 5}]
    inner = Section("Inner " + HOSTILE, [Figure(png, "cap " + HOSTILE, "Fig title")], "inner")
    return Document("Title " + HOSTILE,
                    intro=[Paragraph("verdict " + HOSTILE), Paragraph("careful", "warning")],
                    sections=[Section("Outer", [Table(rows, {"class": "class", "n": "images",
                                                             "acc": "accuracy"},
                                                      caption="cap", formats={"acc": ".1%"},
                                                      anchor="board")],
                                      "outer", [inner])], toc=True)


def test_html_escapes_every_text_and_embeds_figures(tmp_path: Path) -> None:
    page = render_html(_doc(tmp_path))
    assert "<script>" not in page and "&lt;script&gt;" in page
    assert page.count("data:image/png;base64,") == 1 and 'src="figures/' not in page
    assert '<table id="board">' in page and '<td class="num">91.2%</td>' in page
    assert '<section id="inner"><h3>Inner' in page  # nested: one level down
    assert '<nav class="toc"><h2>Contents</h2><ol><li><a href="#outer">Outer</a>' in page
    assert page.index('class="warning"') < page.index('class="toc"') < page.index('id="outer"')


def test_markdown_escapes_names_and_links_figures_relatively(tmp_path: Path) -> None:
    text = render_markdown(_doc(tmp_path), tmp_path)
    assert "<script>" not in text and "*bold*" not in text and "[link](" not in text
    assert md_escape(HOSTILE) in text  # the name appears, escaped, in the cell and headings
    assert "\n## Outer\n" in text and "\n### Inner " in text
    assert "\n| class | images | accuracy |\n| --- | ---: | ---: |\n" in text
    assert "\n| T-shirt/top | 5 |  |\n" in text
    assert "](figures/fig.png)" in text
    assert "\n\n\n" not in text


def test_md_escape_round_trips_as_literal_text() -> None:
    assert md_escape("a|b") == r"a\|b"
    assert md_escape("x\ny") == "x y"
    assert md_escape("T-shirt/top (95% CI)") == "T-shirt/top (95% CI)"


def test_write_document_writes_both_atomically(tmp_path: Path) -> None:
    written = write_document(_doc(tmp_path), tmp_path / "r.html", tmp_path / "r.md")
    assert written["html"].read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert written["markdown"].read_text(encoding="utf-8").startswith("# Title")
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
