"""The web page in headless Chromium (Debian's package, driven by Playwright's Python package; no browser download).

A real uvicorn server on loopback serves the app over the shared indexed corpus; the browser uploads, reads the
results grid, plays a video result from its matched second, drops an image, opens the duplicates view, and
unlocks a keyed service through its dialog. Screenshots are written to LOOKALIKE_SCREENSHOTS (or the test's tmp).
"""

from __future__ import annotations

import base64
import os
import re
import shutil
from pathlib import Path

import pytest
from PIL import Image

from lookalike.config import Settings
from tests.api.serving import live_server

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
DUPES_TIMEOUT_MS = 180_000


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
        # the first answer verifies every candidate pair with local features: tens of seconds on a busy small machine
        page.wait_for_selector("#dupes .group", timeout=DUPES_TIMEOUT_MS)
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


@pytest.fixture(scope="module")
def collage_library(images, settings_factory, tmp_path_factory) -> tuple[Settings, Path]:
    """A photo, a tight crop of it, a 2x2 collage holding it in the bottom-right quadrant (the other quadrants are
    pictures not indexed on their own), and an unrelated photo; indexed once."""
    from lookalike.workspace import Workspace

    root = tmp_path_factory.mktemp("explained")
    cat = images["chelsea"]  # 451 x 300
    w, h = cat.size
    cat.save(root / "cat.png")
    cat.crop((90, 60, 361, 240)).save(root / "cat_cropped.jpg", quality=90)
    collage = Image.new("RGB", (2 * w, 2 * h))
    fillers = ("retina", "hubble_deep_field", "immunohistochemistry")  # never indexed on their own
    for (x, y), other in zip(((0, 0), (w, 0), (0, h)), fillers, strict=True):
        collage.paste(images[other].resize((w, h)), (x, y))
    collage.paste(cat, (w, h))
    collage.save(root / "cat_in_collage.jpg", quality=90)
    images["coffee"].save(root / "coffee.png")
    settings = settings_factory()
    with Workspace(settings) as ws:
        ws.index([root])
    return settings, root


def _box_in(page, box: str, image: str) -> tuple[float, float, float, float]:
    """Where the element ``box`` lies over the element ``image``: (left, top, right, bottom) in fractions of it."""
    b = page.locator(box).bounding_box()
    i = page.locator(image).bounding_box()
    assert b is not None and i is not None and i["width"] > 0 and i["height"] > 0
    return (
        (b["x"] - i["x"]) / i["width"],
        (b["y"] - i["y"]) / i["height"],
        (b["x"] + b["width"] - i["x"]) / i["width"],
        (b["y"] + b["height"] - i["y"]) / i["height"],
    )


def _console_error(message, errors: list[str]) -> None:
    """Keep the page's console errors (a CSP refusal is one); the browser's own favicon request, a 404 here, is not
    the page's."""
    if message.type == "error" and not message.location["url"].endswith("/favicon.ico"):
        errors.append(message.text)


def test_the_duplicates_view_explains_each_member_and_draws_its_matched_box(collage_library, browser, shots):
    settings, _ = collage_library
    with live_server(settings) as base:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: _console_error(m, errors))
        page.goto(base + "/")
        page.wait_for_selector("body[data-ready=true]")
        page.click("#tab-dupes")
        page.wait_for_selector("#dupes .group", timeout=DUPES_TIMEOUT_MS)

        assert page.locator("#dupes .group").count() == 1  # the unrelated photo is in no group
        group = page.locator("#dupes .group")
        assert group.get_attribute("data-kind") == "duplicates"
        assert group.locator(".group-kind").text_content() == "duplicates"
        cards = group.locator(".card")
        by_name = {c.get_attribute("title").rsplit("/", 1)[-1]: c for c in cards.all()}
        assert {n: c.get_attribute("data-relation") for n, c in by_name.items()} == {
            "cat.png": "representative",
            "cat_in_collage.jpg": "contains",
            "cat_cropped.jpg": "cropped",
        }
        assert [c.locator(".relation").inner_text() for c in by_name.values()] == [
            c.get_attribute("data-relation") for c in by_name.values()
        ]
        assert cards.first.get_attribute("title").endswith("/cat.png")  # the representative comes first
        for name in ("cat_in_collage.jpg", "cat_cropped.jpg"):
            facts = by_name[name].locator(".score").inner_text()
            assert re.fullmatch(r"score [01]\.\d{3} · \d+ inliers · local", facts), facts

        # the collage's box is its bottom-right quadrant (where the photo was pasted), drawn over its thumbnail
        collage = '#dupes .card[data-relation="contains"]'
        page.wait_for_selector(f"{collage} .region:not([hidden])")
        assert _box_in(page, f"{collage} .region", f"{collage} img") == pytest.approx((0.5, 0.5, 1.0, 1.0), abs=0.03)
        # the crop matched the representative with all of itself ...
        crop = '#dupes .card[data-relation="cropped"]'
        page.wait_for_selector(f"{crop} .region:not([hidden])")
        assert _box_in(page, f"{crop} .region", f"{crop} img") == pytest.approx((0.0, 0.0, 1.0, 1.0), abs=0.03)
        # ... and hovering it shows on the representative which part of it the crop is: (90, 60, 361, 240) of 451x300
        rep = '#dupes .card[data-relation="representative"]'
        assert page.locator(f"{rep} .region").is_hidden()  # the representative has no box of its own
        assert page.locator(f"{rep} .rep-region").is_hidden()
        page.hover(crop)
        page.wait_for_selector(f"{rep} .rep-region:not([hidden])")
        want = (90 / 451, 60 / 300, 361 / 451, 240 / 300)
        assert _box_in(page, f"{rep} .rep-region", f"{rep} img") == pytest.approx(want, abs=0.03)
        page.screenshot(path=str(shots / "duplicates_explained.png"), full_page=False)
        page.mouse.move(5, 5)
        page.wait_for_selector(f"{rep} .rep-region", state="hidden")

        assert _is_picture(shots / "duplicates_explained.png")
        assert errors == []
