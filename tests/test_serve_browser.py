"""End to end: `fmnist serve RUN` in a subprocess on a free loopback port, the page in headless
Chromium (Debian's, driven by Playwright; nothing is downloaded), a real product photo sent
through the file picker, drag and drop, and paste, and the drawing canvas. The label the page
shows must be the one the API gives for the same bytes."""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from fmnist.runs.train import train_run

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
REPO = Path(__file__).resolve().parents[1]
PHOTOS = Path(os.environ.get("FMNIST_SHARED", REPO.parent / "shared")) / "photos"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(),
                       reason="Debian's /usr/bin/chromium is not installed "
                              "(apt-get install chromium, or ./scripts/install-browser.sh)"),
]


def photo(name: str) -> Path:
    path = PHOTOS / name
    if not path.is_file():
        pytest.skip(f"{path} is absent: the shared product photos are not next to the "
                    "repository (set FMNIST_SHARED to the folder holding photos/)")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cnn_run(small_train, small_test, tmp_path_factory) -> Path:
    """A small CNN (a few seconds to train): the torch/safetensors path of the store."""
    out = tmp_path_factory.mktemp("serve-browser")
    return train_run("cnn", {"width": 8, "epochs": 2, "val_fraction": 0.0}, small_train,
                     small_test, out_root=out).run_dir


@pytest.fixture(scope="module")
def server(cnn_run):
    """The real command, `fmnist serve RUN --port P`, until the module's tests are done."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "fmnist", "serve", str(cnn_run),
                             "--host", "127.0.0.1", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    try:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"fmnist serve exited with {proc.returncode}:\n{proc.stdout.read()}")
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("fmnist serve did not answer /healthz within 90 s")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser, server):
    """A fresh page on the app, with every request it makes recorded."""
    pg = browser.new_page(viewport={"width": 1100, "height": 820})
    pg.requests = []
    pg.on("request", lambda req: pg.requests.append(req.url))
    pg.goto(server + "/", wait_until="load")
    pg.wait_for_function("document.getElementById('model-line').textContent.startsWith('Model:')")
    yield pg
    pg.close()


def api_answer(server: str, path: Path) -> dict:
    response = httpx.post(f"{server}/predict", files={"file": (path.name, path.read_bytes())},
                          timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["predictions"][0]


def shown(page) -> dict:
    """What the page shows for the first result card."""
    page.wait_for_selector(".result", timeout=30_000)
    return page.eval_on_selector(".result", """el => ({
        label: el.dataset.label, verdict: el.querySelector('.verdict').textContent,
        unsure: el.classList.contains('unsure'), source: el.querySelector('.source').textContent,
        seen: el.querySelector('.preprocessed').naturalWidth,
        bars: Array.from(el.querySelectorAll('.bars li .name')).map(n => n.textContent)})""")


def assert_matches_api(result: dict, expected: dict, name: str) -> None:
    assert result["source"] == name
    assert result["label"] == expected["label"]
    assert result["unsure"] == expected["low_confidence"]
    if expected["low_confidence"]:
        assert result["verdict"].startswith("not sure: could be")
    else:
        assert result["verdict"].startswith(expected["label"])
    assert result["seen"] == 28  # the preprocessed image is shown, at its real size
    assert len(result["bars"]) == 10 and result["bars"][0] == expected["label"]


def test_picked_photo_shows_the_models_label(page, server, tmp_path):
    path = photo("sneaker.png")
    page.set_input_files("#file-input", str(path))
    assert_matches_api(shown(page), api_answer(server, path), "sneaker.png")
    assert "test accuracy" in page.text_content("#model-line")
    assert all(u.startswith(server) or u.startswith(("data:", "blob:")) for u in page.requests)
    page.screenshot(path=str(Path(os.environ.get("FMNIST_SCREENSHOTS", tmp_path))
                             / "serve-page.png"), full_page=True)


def _send_bytes_by_event(page, path: Path, event: str) -> None:
    """Drop or paste a file into the page the way a browser does: a DataTransfer with a File."""
    page.evaluate("""([b64, name, type, event]) => {
        const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
        const dt = new DataTransfer();
        dt.items.add(new File([bytes], name, {type}));
        if (event === 'drop') {
            document.getElementById('dropzone').dispatchEvent(
                new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
        } else {
            document.dispatchEvent(new ClipboardEvent('paste', {clipboardData: dt,
                                                                bubbles: true}));
        }
    }""", [base64.b64encode(path.read_bytes()).decode(), path.name, "image/jpeg", event])


@pytest.mark.parametrize("event", ["drop", "paste"])
def test_dropped_or_pasted_photo(page, server, event):
    path = photo("trouser.jpg")
    _send_bytes_by_event(page, path, event)
    assert_matches_api(shown(page), api_answer(server, path), "trouser.jpg")


def test_drawing_is_scored(page):
    page.click("#tab-draw")
    box = page.locator("#canvas").bounding_box()
    x, y = box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.15
    page.mouse.move(x, y)
    page.mouse.down()
    for step in range(1, 11):
        page.mouse.move(x, y + box["height"] * 0.07 * step)
    page.mouse.up()
    result = shown(page)
    assert result["source"] == "drawing.png" and result["seen"] == 28
    assert len(result["bars"]) == 10


def test_not_an_image_shows_the_servers_reason(page, tmp_path):
    fake = tmp_path / "notes.png"
    fake.write_text("this is not an image")
    page.set_input_files("#file-input", str(fake))
    page.wait_for_selector("#error:not([hidden])")
    assert "notes.png: not an image" in page.text_content("#error")


def test_a_bad_file_among_good_ones_is_shown_beside_their_results(page, tmp_path):
    fake = tmp_path / "notes.png"
    fake.write_text("this is not an image")
    page.set_input_files("#file-input", [str(photo("sneaker.png")), str(fake)])
    page.wait_for_selector(".result.failed", timeout=30_000)
    cards = page.eval_on_selector_all(".result", """els => els.map(e => ({
        failed: e.classList.contains('failed'), source: e.querySelector('.source').textContent,
        text: e.textContent}))""")
    assert [(c["source"], c["failed"]) for c in cards] == [("sneaker.png", False),
                                                           ("notes.png", True)]
    assert "notes.png: not an image" in cards[1]["text"]
    assert page.is_hidden("#error")
