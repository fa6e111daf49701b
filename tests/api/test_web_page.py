"""The web page in headless Chromium (Debian's package, driven by Playwright's Python package; no browser download).

A real uvicorn server on loopback serves the app over the shared indexed corpus; the browser uploads, reads the
results grid, plays a video result from its matched second, drops an image, opens the duplicates view, and
unlocks a keyed service through its dialog. Screenshots are written to LOOKALIKE_SCREENSHOTS (or the test's tmp).
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn
from PIL import Image

from lookalike.api.app import create_app
from lookalike.config import Settings

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None and os.environ.get("LOOKALIKE_REQUIRE_BROWSER"):
    raise RuntimeError("CI must run the browser test: install Debian's chromium (make install does, as root)")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def live_server(settings: Settings) -> Iterator[str]:
    """The app served by uvicorn on a loopback port, in a thread; yields its base URL."""
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("LOOKALIKE_SCREENSHOTS", tmp_path))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _is_picture(path: Path) -> bool:
    im = Image.open(path).convert("L")
    lo, hi = im.getextrema()
    return im.width >= 800 and hi - lo > 100  # a rendered page, not a blank one


def _loaded_images(page, selector: str) -> int:
    return page.eval_on_selector_all(selector, "imgs => imgs.filter(i => i.complete && i.naturalWidth > 0).length")


def test_upload_grid_and_a_video_result_plays_from_its_matched_second(indexed, corpus, browser, shots):
    settings, _ = indexed
    with live_server(settings) as base:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(base + "/")
        page.wait_for_selector("body[data-ready=true]")
        assert "files" in page.inner_text("#library")

        # upload a video excerpt: the grid shows the source videos with the matched ranges
        page.set_input_files("#file", str(corpus.videos["bikes_excerpt"]))
        page.wait_for_selector("#results .card")
        first = page.locator("#results .card").first
        assert first.get_attribute("data-kind") == "video"
        start = float(first.get_attribute("data-start"))
        assert 3.0 <= start <= 5.0  # the excerpt is 4 s - 8 s of bikes
        assert "matched" in first.inner_text() and "score" in first.inner_text()
        page.wait_for_function("() => [...document.querySelectorAll('#results .card img')].every(i => i.complete)")
        assert _loaded_images(page, "#results .card img") == page.locator("#results .card").count()
        page.screenshot(path=str(shots / "results.png"), full_page=True)

        # click it: the player starts at the matched second and really plays on from there
        first.click()
        page.wait_for_function(
            "s => { const v = document.querySelector('#player');"
            " return v.readyState >= 2 && !v.paused && v.currentTime >= s - 0.05; }",
            arg=start,
            timeout=20_000,
        )
        t0 = page.evaluate("() => document.querySelector('#player').currentTime")
        assert start - 0.05 <= t0 <= start + 1.0
        page.wait_for_timeout(800)
        t1 = page.evaluate("() => document.querySelector('#player').currentTime")
        assert t1 > t0 + 0.2, (t0, t1)
        assert "matched" in page.inner_text("#player-info")
        page.screenshot(path=str(shots / "video_playing.png"), full_page=True)
        assert _is_picture(shots / "results.png") and _is_picture(shots / "video_playing.png")
        assert errors == []


def test_drop_an_image_then_open_the_duplicates_view(indexed, corpus, browser, shots):
    settings, _ = indexed
    data = base64.b64encode(corpus.copies[("chelsea", "blur")].read_bytes()).decode()
    with live_server(settings) as base:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(base + "/")
        page.wait_for_selector("body[data-ready=true]")
        transfer = page.evaluate_handle(
            """b64 => { const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
                        const dt = new DataTransfer();
                        dt.items.add(new File([bytes], 'dropped.jpg', {type: 'image/jpeg'}));
                        return dt; }""",
            data,
        )
        page.dispatch_event("#drop", "drop", {"dataTransfer": transfer})
        page.wait_for_selector("#results .card")
        names = page.locator("#results .card .name").all_inner_texts()
        assert sum(n.startswith("chelsea") for n in names[:8]) == 8
        assert "dropped.jpg" in page.inner_text("#status")

        page.click("#tab-dupes")
        page.wait_for_selector("#dupes .group")
        assert page.locator("#dupes .group").count() >= 8
        first_groups = "#dupes .group:nth-child(-n+2) img"  # in view; the rest load lazily as one scrolls
        page.wait_for_function(f"() => [...document.querySelectorAll('{first_groups}')].every(i => i.complete)")
        assert _loaded_images(page, first_groups) == page.locator(first_groups).count() >= 4
        page.screenshot(path=str(shots / "duplicates.png"), full_page=False)
        assert _is_picture(shots / "duplicates.png")


def test_a_keyed_service_asks_for_the_key_once_and_thumbnails_load(indexed, corpus, browser):
    settings, _ = indexed
    with live_server(settings.with_(api_key="correct horse")) as base:
        page = browser.new_context().new_page()
        page.goto(base + "/")
        page.wait_for_selector("#key-dialog[open]")
        page.fill("#key", "wrong")
        page.click("#key-form button")
        page.wait_for_function("() => document.querySelector('#key-error').textContent.length > 0")
        page.fill("#key", "correct horse")
        page.click("#key-form button")
        page.wait_for_selector("body[data-ready=true]")
        page.set_input_files("#file", str(corpus.originals["rocket"]))
        page.wait_for_selector("#results .card")
        page.wait_for_function("() => [...document.querySelectorAll('#results .card img')].every(i => i.complete)")
        assert _loaded_images(page, "#results .card img") == page.locator("#results .card").count() > 0
