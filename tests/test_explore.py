"""`fmnist.reporting.explore`, `fmnist.reporting.html`, `fmnist explore`: real data subsets,
checked with numpy."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fmnist.data import Dataset
from fmnist.errors import FmnistError
from fmnist.reporting import html
from fmnist.reporting.document import Document, Section
from fmnist.reporting.explore import FIGURES, ExploreResult, explore
from fmnist.reporting.render import render_html, render_markdown


@pytest.fixture(scope="module")
def explored(small_train: Dataset, small_test: Dataset,
             tmp_path_factory: pytest.TempPathFactory) -> ExploreResult:
    """One analysis of 2,000 train / 1,000 test images, shared by the checks below."""
    return explore(small_train, small_test, tmp_path_factory.mktemp("explore"),
                   points_per_class=50)


def _assert_real_png(data: bytes, what: str) -> None:
    """A PNG Pillow can decode, of a sensible size, with a picture on it (not one colour)."""
    with Image.open(io.BytesIO(data)) as img:
        assert img.format == "PNG", what
        assert img.width >= 300 and img.height >= 200, f"{what}: {img.size}"
        pixels = np.asarray(img.convert("L"))
    assert pixels.std() > 5, f"{what} is blank"
    assert (pixels < 128).mean() > 0.005, f"{what} has almost nothing drawn on it"


# --- figures and files ---

def test_every_figure_is_a_real_png(explored: ExploreResult) -> None:
    assert set(explored.figures) == set(FIGURES)
    for name, path in explored.figures.items():
        assert path.parent == explored.out_dir and path.suffix == ".png"
        _assert_real_png(path.read_bytes(), name)


def test_html_page_embeds_every_figure_and_links_nothing(explored: ExploreResult) -> None:
    page = (explored.out_dir / "index.html").read_text(encoding="utf-8")
    sources = re.findall(r'\b(?:src|href)="([^"]*)"', page)
    assert len(sources) == len(FIGURES)
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    assert "<link" not in page and "<script" not in page
    for src in sources:
        _assert_real_png(base64.b64decode(src.split(",", 1)[1]), "embedded image")
    embedded = {src.split(",", 1)[1] for src in sources}
    on_disk = {base64.b64encode(p.read_bytes()).decode() for p in explored.figures.values()}
    assert embedded == on_disk
    for name in explored.stats["class_names"]:
        assert html.escape(name) in page


def test_section_is_one_object_rendered_twice(explored: ExploreResult, tmp_path: Path) -> None:
    """Another report includes the analysis as a `Section`: both renderers nest it under the
    including document's headings, with no text surgery (figure links stay valid from there)."""
    doc = Document("Outer", sections=[Section("Intro"), explored.section("Data")])
    page = render_html(doc)
    assert '<section id="data"><h2>Data</h2>' in page
    assert page.count("data:image/png;base64,") == len(FIGURES)
    markdown = render_markdown(doc, tmp_path)
    assert markdown.startswith("# Outer\n") and "\n## Data\n" in markdown
    for path in explored.figures.values():
        assert f"]({Path(os.path.relpath(path, tmp_path)).as_posix()})" in markdown


def test_summary_and_stats_files(explored: ExploreResult) -> None:
    summary = (explored.out_dir / "summary.md").read_text(encoding="utf-8")
    for path in explored.figures.values():
        assert f"]({path.name})" in summary
    for name in explored.stats["class_names"]:
        assert f"| {name} |" in summary
    on_disk = json.loads((explored.out_dir / "stats.json").read_text())
    assert on_disk["per_class"] == json.loads(json.dumps(explored.stats["per_class"]))
    assert set(explored.files) == {"stats", "summary", "html"}
    assert not list(explored.out_dir.glob("*.tmp"))


# --- statistics against numpy ---

def test_split_counts_and_pixels(explored: ExploreResult, small_train: Dataset,
                                 small_test: Dataset) -> None:
    for split, ds in (("train", small_train), ("test", small_test)):
        row = explored.stats["splits"][split]
        counts = np.bincount(ds.labels, minlength=10)
        assert list(row["per_class"].values()) == counts.tolist()
        assert row["images"] == len(ds)
        assert row["ink_fraction"] == pytest.approx((ds.images > 0).mean())
        assert row["pixel_mean"] == pytest.approx(ds.images.mean())
        assert row["histogram"] == np.bincount(ds.images.ravel(), minlength=256).tolist()
    assert [r["train_images"] for r in explored.stats["per_class"]] == [200] * 10
    assert [r["test_images"] for r in explored.stats["per_class"]] == [100] * 10


def test_per_class_table(explored: ExploreResult, small_train: Dataset) -> None:
    names = small_train.class_names
    means = np.stack([small_train.images[small_train.labels == c].astype(float).mean(axis=0)
                      for c in range(10)]).reshape(10, -1) / 255.0
    for c, row in enumerate(explored.stats["per_class"]):
        members = small_train.images[small_train.labels == c]
        assert row["class"] == names[c]
        assert row["mean_intensity"] == pytest.approx(members.mean())
        assert row["ink_fraction"] == pytest.approx(np.count_nonzero(members) / members.size)
        dist = {names[k]: np.linalg.norm(means[c] - means[k]) for k in range(10) if k != c}
        nearest = min(dist, key=dist.get)
        assert row["nearest_class"] == nearest
        assert row["nearest_distance"] == pytest.approx(dist[nearest])
    by_name = {r["class"]: r for r in explored.stats["per_class"]}
    # facts about Fashion-MNIST any sane analysis must find
    assert by_name["Pullover"]["nearest_class"] in {"Coat", "Shirt"}
    assert by_name["Sandal"]["ink_fraction"] < by_name["Pullover"]["ink_fraction"]


def test_pca_variance_against_eigenvalues(explored: ExploreResult,
                                          small_train: Dataset) -> None:
    X = small_train.images.reshape(len(small_train), -1) / 255.0
    eig = np.sort(np.linalg.eigvalsh(np.cov(X, rowvar=False)))[::-1]
    cumulative = np.cumsum(eig) / eig.sum()
    pca = explored.stats["pca"]
    np.testing.assert_allclose(pca["cumulative_variance"], cumulative, atol=1e-4)
    for label, n in pca["components_for"].items():
        threshold = float(label.rstrip("%")) / 100
        assert cumulative[n - 1] >= threshold - 1e-4
        assert n == 1 or cumulative[n - 2] < threshold + 1e-4
    counts = list(pca["components_for"].values())
    assert counts == sorted(counts) and counts[0] > 10


def test_lda_shares(explored: ExploreResult) -> None:
    shares = np.array(explored.stats["lda"]["criterion_share"])
    assert len(shares) == 9
    assert shares.sum() == pytest.approx(1.0, abs=1e-5)  # stored rounded to 6 places
    assert np.all(np.diff(shares) <= 1e-9)  # discriminants come sorted by separation
    assert shares[:2].sum() > 0.4


# --- other inputs ---

def test_explore_without_test_split_with_an_empty_class(small_train: Dataset,
                                                        tmp_path: Path) -> None:
    keep = np.isin(small_train.labels, [1, 5, 8])
    labels = np.array([0, 2, 3])[np.searchsorted([1, 5, 8], small_train.labels[keep][:90])]
    ds = Dataset(small_train.images[keep][:90], labels, ("Trouser", "Hat", "Sandal", "Bag"))
    result = explore(ds, None, tmp_path, points_per_class=20)
    assert set(result.stats["splits"]) == {"train"}
    assert len(result.stats["lda"]["criterion_share"]) == 2  # three classes present
    hat = result.stats["per_class"][1]
    assert hat["train_images"] == 0 and hat["nearest_class"] is None
    assert all(r["nearest_class"] != "Hat" for r in result.stats["per_class"])
    assert result.stats["per_class"][0]["test_images"] is None
    for name in ("lda_projection", "class_distances", "samples"):
        _assert_real_png(result.figures[name].read_bytes(), name)
    def no_nan(token: str) -> None:
        raise AssertionError(f"stats.json holds {token}, which is not JSON")

    json.loads((tmp_path / "stats.json").read_text(), parse_constant=no_nan)
    assert "no test split" in (tmp_path / "index.html").read_text(encoding="utf-8")


def test_explore_rejects_bad_input(small_train: Dataset, small_test: Dataset,
                                   tmp_path: Path) -> None:
    one_class = small_train.subset(np.flatnonzero(small_train.labels == 3))
    with pytest.raises(FmnistError, match="fewer than two classes"):
        explore(one_class, None, tmp_path)
    renamed = Dataset(small_test.images, small_test.labels, tuple("abcdefghij"))
    with pytest.raises(FmnistError, match="differ from the training data's"):
        explore(small_train, renamed, tmp_path)
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(FmnistError, match="cannot create the output folder"):
        explore(small_train, small_test, blocker / "out")



# --- fmnist.reporting.html ---

def test_html_helpers_escape_and_format(tmp_path: Path) -> None:
    cell = html.table([{"name": "<b>&", "n": 12345, "acc": 0.91234, "gone": None}],
                      {"name": "Name", "n": "N", "acc": "Acc", "gone": "Gone"},
                      caption="a<b", formats={"acc": ".1%"})
    assert "&lt;b&gt;&amp;" in cell and "<b>" not in cell
    assert '<td class="num">12,345</td>' in cell and '<td class="num">91.2%</td>' in cell
    assert "<td></td>" in cell and "<caption>a&lt;b</caption>" in cell
    png = tmp_path / "x.png"
    Image.new("L", (4, 3), 7).save(png)
    uri = html.data_uri(png)
    assert base64.b64decode(uri.split(",", 1)[1]) == png.read_bytes()
    fig = html.figure(png, 'say "hi"')
    assert 'alt="say &#34;hi&#34;"' in fig and "<figcaption>" in fig
    out = html.write_page(tmp_path / "p.html", "T<", html.section("S", "<p>x</p>", "s"))
    text = out.read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>") and "<title>T&lt;</title>" in text
    assert '<section id="s"><h2>S</h2><p>x</p></section>' in text


# --- the command line ---

def _write_csv(path: Path, ds: Dataset) -> Path:
    table = np.column_stack([ds.labels, ds.images.reshape(len(ds), -1)])
    header = "label," + ",".join(f"pixel{i + 1}" for i in range(table.shape[1] - 1))
    np.savetxt(path, table, fmt="%d", delimiter=",", header=header, comments="")
    return path


def _fmnist(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fmnist", *args], capture_output=True,
                          text=True, timeout=120)


def test_cli_explore_from_csv(small_train: Dataset, small_test: Dataset, tmp_path: Path) -> None:
    train_csv = _write_csv(tmp_path / "train.csv", small_train.head(n_per_class=30))
    test_csv = _write_csv(tmp_path / "test.csv", small_test.head(n_per_class=10))
    out = tmp_path / "out"
    result = _fmnist("explore", "--data", str(train_csv), "--test-data", str(test_csv),
                     "--out", str(out), "--points", "10")
    assert result.returncode == 0, result.stderr
    assert "wrote 8 figures" in result.stdout
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"{name}.png" for name in FIGURES] + ["index.html", "stats.json", "summary.md"])
    stats = json.loads((out / "stats.json").read_text())
    assert stats["splits"]["train"]["images"] == 300
    assert stats["splits"]["test"]["per_class"]["Ankle boot"] == 10


def test_cli_explore_errors_are_clear(tmp_path: Path) -> None:
    result = _fmnist("explore", "--test-data", str(tmp_path / "t.csv"), "--out", str(tmp_path))
    assert result.returncode == 2 and "--test-data needs --data" in result.stderr
    bad = tmp_path / "bad.csv"
    bad.write_text("pixel1,pixel2\n1,2\n")
    result = _fmnist("explore", "--data", str(bad), "--out", str(tmp_path / "o"))
    assert result.returncode == 2 and "bad.csv" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert not (tmp_path / "o").exists()


def test_cli_explore_takes_a_photo_folder_like_compare(small_train: Dataset,
                                                       tmp_path: Path) -> None:
    """`explore --data` accepts what `compare --data` accepts: a folder with one sub-folder of
    photos per class (not only a CSV), read at `--size`."""
    from PIL import Image

    root = tmp_path / "photos"
    for label in (0, 1, 9):
        folder = root / small_train.class_names[label].replace("/", "-")
        folder.mkdir(parents=True)
        for i, image in enumerate(small_train.images[small_train.labels == label][:6]):
            Image.fromarray(image).resize((56, 56)).save(folder / f"{i}.png")
    out = tmp_path / "out"
    result = _fmnist("explore", "--data", str(root), "--size", "20", "--out", str(out),
                     "--points", "5")
    assert result.returncode == 0, result.stderr
    stats = json.loads((out / "stats.json").read_text())
    assert stats["splits"]["train"]["images"] == 18
    assert stats["splits"]["train"]["shape"] == [20, 20] and "test" not in stats["splits"]
