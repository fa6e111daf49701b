"""The web page in headless Chromium (Debian's package, driven by Playwright's Python package; no browser download).

A real uvicorn server on loopback serves the app over the shared indexed corpus; the browser uploads, reads the
results grid, plays a video result from its matched second, drops an image, opens the duplicates view, and
unlocks a keyed service through its dialog. Screenshots are written to LOOKALIKE_SCREENSHOTS (or the test's tmp).
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import json
import os
import re
import shutil
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
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
        # a copy too smooth for keypoints, verified without them, is not shown as "0 inliers"
        smooth = "relationText({relation: 'edited', score: 0.97, inliers: 0, method: 'smooth'})"
        assert page.evaluate(smooth) == "score 0.970 · verified without keypoints · smooth"

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


@pytest.fixture
def review_library(images, settings_factory, tmp_path) -> tuple[Settings, Path]:
    """A photo with a resized copy and a crop (one verified group), and an unrelated photo; indexed."""
    from lookalike.workspace import Workspace

    root = tmp_path / "media"
    root.mkdir()
    cat = images["chelsea"].convert("RGB")  # 451 x 300
    cat.save(root / "cat.png")
    cat.resize((300, 200), Image.Resampling.LANCZOS).save(root / "cat_small.jpg", quality=88)
    cat.crop((90, 60, 361, 240)).save(root / "cat_cropped.jpg", quality=90)
    images["coffee"].convert("RGB").save(root / "coffee.png")
    settings = settings_factory()
    with Workspace(settings) as ws:
        ws.index([root])
    return settings, root


def _files(root: Path) -> dict[str, tuple[str, int]]:
    """Every file under ``root``: its SHA-256 and modification time (ns), by relative path."""
    return {
        str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _card(name: str) -> str:
    return f'#dupes .card[title$="/{name}"]'


def test_review_a_group_trash_one_file_part_a_pair_apply_and_undo(review_library, browser, shots):
    settings, root = review_library
    before = _files(root)
    crop = root / "cat_cropped.jpg"
    with live_server(settings) as base:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: _console_error(m, errors))
        page.goto(base + "/")
        page.wait_for_selector("body[data-ready=true]")
        page.click("#tab-dupes")
        page.wait_for_selector("#dupes[data-plan=ready]", state="attached", timeout=DUPES_TIMEOUT_MS)
        assert page.locator("#dupes .group").count() == 1
        assert page.locator("#dupes .group.current").count() == 1
        # what resolve suggests: keep the representative, trash the resized copy, keep the crop (not a whole copy)
        marks = {n: page.get_attribute(_card(n), "data-mark") for n in ("cat.png", "cat_small.jpg", "cat_cropped.jpg")}
        assert marks == {"cat.png": "keep", "cat_small.jpg": "trash", "cat_cropped.jpg": "keep"}
        assert page.locator(f"{_card('cat.png')} .keeper").is_visible()
        assert (
            page.inner_text(f"{_card('cat_cropped.jpg')} .suggestion") == "suggested: keep — cropped: not a whole copy"
        )
        assert page.inner_text(f"{_card('cat_small.jpg')} .suggestion").startswith("suggested: trash — resized")
        # each file says what the catalog knows: resolution, size, date, path
        page.wait_for_function(
            "() => [...document.querySelectorAll('#dupes .card .facts')].every(f => f.textContent.includes('modified'))"
        )
        facts = page.inner_text(f"{_card('cat_cropped.jpg')} .facts")
        assert re.fullmatch(r"271\u00d7180 · \d+(\.\d)? KB · modified \d{4}-\d\d-\d\d \d\d:\d\d", facts), facts
        assert page.inner_text(f"{_card('cat_cropped.jpg')} .path") == str(crop)
        # by keyboard: the crop to the trash, the resized copy apart (not a duplicate of the representative)
        order = [c.get_attribute("title").rsplit("/", 1)[-1] for c in page.locator("#dupes .card").all()]
        assert order[0] == "cat.png"
        for _ in range(order.index("cat_cropped.jpg")):
            page.keyboard.press("ArrowRight")
        assert page.get_attribute("#dupes .card.selected", "title") == str(crop)
        page.keyboard.press("t")
        page.click(f"{_card('cat_small.jpg')} button[data-choice=distinct]")  # by mouse, as well
        assert page.get_attribute(_card("cat_cropped.jpg"), "data-mark") == "trash"
        assert page.get_attribute(_card("cat_small.jpg"), "data-mark") == "distinct"
        assert page.inner_text("#dupes .group .summary") == "1 to trash · 1 not a duplicate"
        assert "n p next / previous group" in page.inner_text("#shortcuts")
        page.screenshot(path=str(shots / "review.png"), full_page=False)
        assert _is_picture(shots / "review.png")

        page.keyboard.press("a")
        page.wait_for_function("() => document.querySelector('#review-status').textContent.startsWith('group 1:')")
        page.wait_for_selector("#dupes[data-plan=ready]", state="attached")
        assert page.inner_text("#review-status") == (
            "group 1: 1 moved to the trash (run 1); 1 marked not a duplicate of cat.png. Undo (u) puts it back."
        )
        assert not crop.exists()
        trashed = settings.home / "trash" / "1" / str(crop).lstrip("/")
        assert hashlib.sha256(trashed.read_bytes()).hexdigest() == before["cat_cropped.jpg"][0]
        assert _files(root) == {n: v for n, v in before.items() if n != "cat_cropped.jpg"}
        # the crop is gone from the page, and the resized copy is no longer grouped with the photo: no group is left
        assert page.locator("#dupes .card").count() == 0 and page.locator("#dupes .group").count() == 0
        decisions = page.evaluate("() => fetch('/api/decisions').then(r => r.json())")["decisions"]
        assert [(d["a"], d["b"]) for d in decisions] == [(str(root / "cat.png"), str(root / "cat_small.jpg"))]

        page.keyboard.press("u")
        page.wait_for_function("() => document.querySelector('#review-status').textContent.startsWith('undid')")
        page.wait_for_selector("#dupes[data-plan=ready]", state="attached")
        assert page.inner_text("#review-status") == (
            "undid group 1: 1 put back from the trash; 1 not-a-duplicate forgotten"
        )
        assert _files(root) == before  # byte-identical, with the modification time
        assert page.evaluate("() => fetch('/api/decisions').then(r => r.json())") == {"decisions": []}
        assert page.locator("#dupes .group .card").count() == 3
        assert page.get_attribute(_card("cat_cropped.jpg"), "data-mark") == "keep"  # the suggestion again
        assert page.locator("#undo").is_disabled()

        # every suggestion at once, after a confirmation that counts them; then undone
        asked: list[str] = []
        page.once("dialog", lambda d: (asked.append(d.message), d.accept()))
        page.click("#apply-suggested")
        page.wait_for_function("() => document.querySelector('#review-status').textContent.startsWith('suggested')")
        page.wait_for_selector("#dupes[data-plan=ready]", state="attached")
        assert asked == ["Move 1 file of 1 group to the trash, as suggested? Undo puts them back."]
        assert page.inner_text("#review-status") == (
            "suggested keepers: 1 moved to the trash (run 2). Undo (u) puts them back."
        )
        assert _files(root) == {n: v for n, v in before.items() if n != "cat_small.jpg"}
        page.click("#undo")
        page.wait_for_function("() => document.querySelector('#review-status').textContent.startsWith('undid')")
        assert page.inner_text("#review-status") == "undid the suggested keepers: 1 put back from the trash"
        assert _files(root) == before
        page.keyboard.press("?")
        assert page.locator("#help").is_visible()
        assert errors == []


@contextmanager
def _another_site() -> Iterator[str]:
    """A page on another port of this machine (another origin of the same site), as a page a user might have open."""

    class Blank(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = b"<!doctype html><title>elsewhere</title><p>another site</p>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Blank)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        thread.join(10)


FORM_POST = """([url, name, value]) => {
    const form = document.createElement('form');
    form.method = 'POST'; form.action = url; form.enctype = 'text/plain';
    const field = document.createElement('input');
    field.name = name; field.value = value;
    form.append(field); document.body.append(form); form.submit();
}"""


def test_a_page_of_another_origin_cannot_change_the_library(review_library, browser):
    """A page of another origin posts to the review routes what a form or a no-cors fetch can send: a JSON text
    without a type (FastAPI would read it as JSON), or a text/plain form shaped as JSON. Both are refused and nothing
    moves. The service and the page are at plain-http names that are not loopback (mapped to it in the browser), to
    which a browser sends no Sec-Fetch-Site, as to a service on the network: SameOriginOnly lets them through, and
    the change guard refuses them (FastAPI would also refuse a body without the JSON type, with 422)."""
    settings, root = review_library
    before = _files(root)
    attack = json.dumps({"apply": True, "choices": {str(root / "cat_cropped.jpg"): "trash"}})
    flags = [*FLAGS, "--host-resolver-rules=MAP *.test 127.0.0.1"]
    with (
        live_server(settings.with_(allowed_hosts=("review.test",))) as base,
        _another_site() as elsewhere,
        closing(browser.browser_type.launch(executable_path=CHROMIUM, args=flags, headless=True)) as mapped,
    ):
        service = base.replace("127.0.0.1", "review.test")
        other = elsewhere.replace("127.0.0.1", "elsewhere.test").rstrip("/")
        page = mapped.new_page()
        page.goto(other + "/")
        sent = (
            "([url, body]) => fetch(url, {method: 'POST', mode: 'no-cors', body: new Blob([body])})"
            ".then(r => r.type, e => e.message)"
        )
        page.evaluate(sent, [f"{service}/api/resolve", attack])  # settles once answered (its answer is not readable)
        assert _files(root) == before
        with page.expect_navigation() as answer:
            page.evaluate(FORM_POST, [f"{service}/api/resolve", attack[:-1] + ', "x": "', '"}'])
        assert answer.value is not None and answer.value.status == 403
        assert json.loads(page.inner_text("body")) == {
            "detail": f"refused: a change asked by a page of another origin ({other})"
        }
    assert _files(root) == before
    assert not (settings.home / "trash").exists()
