"""The comparison report in a real headless Chromium: every image loads, the page makes no
network request, the data analysis comes first, and the leaderboard shows results.json's
numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fmnist.evaluation.compare import compare

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason="Debian's /usr/bin/chromium is not installed "
                              "(apt-get install chromium, or ./scripts/install-browser.sh)"),
]


@pytest.fixture(scope="module")
def report(fmnist_train, fmnist_test, tmp_path_factory):
    out = tmp_path_factory.mktemp("report")
    compare(fmnist_train.head(n_per_class=60, seed=2), fmnist_test.head(n_per_class=40, seed=2),
            out, preset="quick", models=["bayes-1", "random-forest"], log=lambda _: None)
    return out


@pytest.fixture(scope="module")
def page_data(report):
    sync_api = pytest.importorskip("playwright.sync_api")
    url = (report / "report.html").resolve().as_uri()
    requests: list[str] = []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            page = browser.new_page()
            page.on("request", lambda req: requests.append(req.url))
            page.goto(url, wait_until="load")
            images = page.eval_on_selector_all(
                "img", "els => els.map(e => ({w: e.naturalWidth, ok: e.complete, "
                       "src: e.getAttribute('src').slice(0, 30)}))")
            headings = page.eval_on_selector_all("section > h2", "els => els.map(e => "
                                                 "e.textContent)")
            toc = page.eval_on_selector_all("nav.toc a", "els => els.map(e => e.textContent)")
            header = page.eval_on_selector_all("#leaderboard th", "els => els.map(e => "
                                               "e.textContent)")
            rows = page.eval_on_selector_all(
                "#leaderboard tbody tr",
                "rows => rows.map(r => Array.from(r.cells).map(c => c.textContent))")
        finally:
            browser.close()
    best = json.loads((report / "results.json").read_text())["best"]
    return {"url": url, "requests": requests, "images": images, "headings": headings,
            "toc": toc, "best": best,
            "rows": [dict(zip(header, r, strict=True)) for r in rows]}


def test_every_image_loads(page_data):
    images = page_data["images"]
    # explore's figures plus the comparison's (accuracy vs time, F1, confusion, mistakes, grid)
    assert len(images) >= 8
    for img in images:
        assert img["ok"] and img["w"] > 0, img
        assert img["src"].startswith("data:image/png;base64,")


def test_no_network_request(page_data):
    others = [u for u in page_data["requests"] if u != page_data["url"]
              and not u.startswith("data:")]
    assert others == []
    assert page_data["url"] in page_data["requests"]


def test_story_order_verdict_first(page_data, report):
    """The verdict (summary, leaderboard) and a table of contents lead; the data analysis
    comes last, after the results, the best model, its mistakes and the models."""
    assert page_data["headings"] == ["Results", f"The best model: {page_data['best']}",
                                     "What it gets wrong", "The models", "The data"]
    assert page_data["toc"] == page_data["headings"]
    text = (report / "report.html").read_text(encoding="utf-8")
    order = [text.index(mark) for mark in ("Best model:", 'id="leaderboard"', 'class="toc"',
                                           'id="results"', 'id="data"')]
    assert order == sorted(order)


def test_leaderboard_matches_results_json(page_data, report):
    data = json.loads((report / "results.json").read_text())
    board = data["leaderboard"]
    rows = page_data["rows"]
    assert [r["model"] for r in rows] == [b["model"] for b in board]
    for row, entry in zip(rows, board, strict=True):
        assert row["accuracy"] == f"{entry['accuracy']:.4f}"
        assert row["95% CI"] == f"{entry['ci_low']:.4f}–{entry['ci_high']:.4f}"
        assert row["macro-F1"] == f"{entry['macro_f1']:.4f}"
        assert row["fit s"] == f"{entry['fit_seconds']:.1f}"
        if entry["mcnemar_p"] is None:
            assert row["McNemar p vs best"] == "(best)"
        elif entry["mcnemar_p"] == 0.0:
            assert row["McNemar p vs best"] == "<1e-300"
        else:
            assert float(row["McNemar p vs best"]) == pytest.approx(entry["mcnemar_p"],
                                                                    rel=0.06)
            assert row["worse than best?"].startswith(
                "yes" if entry["significantly_worse"] else "no")
    assert f"Best model: {data['best']}" in (report / "report.html").read_text()
