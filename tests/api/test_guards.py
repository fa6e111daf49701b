"""The service's guards: body size limit, API key, requests in flight; and its life beside an index job."""

from __future__ import annotations

import os
import re
import shutil
import threading
import time

import numpy as np
import pytest
from PIL import Image

from lookalike.workspace import Workspace
from tests.api.serving import live_server, serving

LIMIT = 200_000


def _chunks(total: int, size: int = 16_384):
    sent = 0
    while sent < total:
        yield b"\xff" * min(size, total - sent)
        sent += size


@pytest.fixture(scope="module")
def small_limit(indexed):
    settings, _ = indexed
    with serving(settings, max_upload_bytes=LIMIT) as c:
        yield c


def test_oversized_body_with_content_length_is_413(small_limit, corpus):
    big = corpus.originals["astronaut"].read_bytes()
    assert len(big) > LIMIT
    r = small_limit.post("/api/search/upload", files={"file": ("big.png", big, "image/png")})
    assert r.status_code == 413
    # a body just under the limit is read and searched
    ok = small_limit.post("/api/search/upload", files={"file": ("ok.jpg", corpus.distractors["coins"].read_bytes())})
    assert ok.status_code == 200, ok.text


def test_oversized_streamed_body_without_content_length_is_413(small_limit):
    boundary = "lookalikeboundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode()

    def body():
        yield head
        yield from _chunks(3 * LIMIT)
        yield f"\r\n--{boundary}--\r\n".encode()

    r = small_limit.post(
        "/api/search/upload",
        content=body(),
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert r.request.headers.get("content-length") is None
    assert r.request.headers["transfer-encoding"] == "chunked"
    assert r.status_code == 413


def test_api_key_is_required_except_for_health_and_page(indexed):
    settings, _ = indexed
    with serving(settings, api_key="s3cret-key") as c:
        assert c.get("/healthz").status_code == 200
        assert c.get("/").status_code == 200  # the page shell holds no library data
        for url in ("/api/info", "/api/duplicates", "/api/items/1", "/api/items/1/file", "/openapi.json", "/docs"):
            r = c.get(url)
            assert r.status_code == 401, url
            assert "X-API-Key" in r.json()["detail"]
        assert c.get("/api/info", headers={"X-API-Key": "wrong"}).status_code == 401
        # an upload without the key is refused before its body is read
        r = c.post("/api/search/upload", files={"file": ("x.jpg", b"\xff" * 1000)})
        assert r.status_code == 401
        assert c.get("/api/info", headers={"X-API-Key": "s3cret-key"}).status_code == 200
        # the page exchanges the key for an HttpOnly cookie, which then opens the routes (thumbnails in <img>)
        assert c.post("/api/session", json={"key": "nope"}).status_code == 401
        assert "lookalike_session" not in c.cookies
        login = c.post("/api/session", json={"key": "s3cret-key"})
        assert login.status_code == 204
        assert "httponly" in login.headers["set-cookie"].lower()
        assert "s3cret-key" not in login.headers["set-cookie"]
        assert c.get("/api/info").status_code == 200
        c.cookies.clear()
        assert c.get("/api/info").status_code == 401


def test_requests_beyond_the_in_flight_cap_get_503_at_once(indexed, monkeypatch):
    settings, _ = indexed
    with serving(settings, max_in_flight=1) as c:
        service = c.app.state.service
        release = threading.Event()
        real_item = service.item

        def slow_item(media_id):  # the first request stays in its handler until released
            release.wait(30)
            return real_item(media_id)

        monkeypatch.setattr(service, "item", slow_item)
        first: dict = {}
        worker = threading.Thread(target=lambda: first.update(r=c.get("/api/items/1")))
        worker.start()
        try:
            deadline = time.monotonic() + 10
            while _in_flight(c.app) == 0:
                assert time.monotonic() < deadline
                time.sleep(0.01)
            t0 = time.monotonic()
            busy = c.get("/api/info")
            assert busy.status_code == 503
            assert busy.headers["retry-after"] == "1"
            assert time.monotonic() - t0 < 1.0
            assert c.get("/healthz").status_code == 200  # health is never refused
        finally:
            release.set()
            worker.join(30)
        assert first["r"].status_code == 200
        assert c.get("/api/info").status_code == 200


def _in_flight(app) -> int:
    layer = app.middleware_stack
    while layer is not None and type(layer).__name__ != "InFlightLimit":
        layer = getattr(layer, "app", None)
    return layer.in_flight if layer is not None else 0


def test_searches_go_on_while_an_index_job_runs_and_then_see_its_files(settings_factory, corpus, tmp_path):
    settings = settings_factory()
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    for name in ("chelsea", "coffee", "rocket"):
        shutil.copy(corpus.originals[name], first / f"{name}.png")
    for name in ("astronaut", "camera"):
        shutil.copy(corpus.originals[name], second / f"{name}.png")
    for n in range(30):  # enough work that the index job takes a while
        shutil.copy(corpus.copies[("astronaut", "resize")], second / f"astronaut_{n}.jpg")
        os.utime(second / f"astronaut_{n}.jpg", ns=(n * 10**9, n * 10**9))
    with Workspace(settings) as ws:
        ws.index([first])
    query = corpus.copies[("astronaut", "crop")].read_bytes()
    with serving(settings) as c:
        before = c.post("/api/search/upload?k=3", files={"file": ("q.jpg", query)}).json()
        assert not any(h["name"].startswith("astronaut") for h in before["hits"])
        job = threading.Thread(target=lambda: Workspace(settings).index([second]))
        job.start()
        answered = 0
        while job.is_alive():
            r = c.post("/api/search/upload?k=3", files={"file": ("q.jpg", query)})
            assert r.status_code == 200, r.text
            answered += 1
        job.join()
        assert answered >= 2
        time.sleep(1.1)  # the service looks for newer index files at most once a second
        after = c.post("/api/search/upload?k=3", files={"file": ("q.jpg", query)}).json()
        assert after["hits"][0]["name"].startswith("astronaut")
        assert c.get("/api/info").json()["items"] == 3 + 2 + 30


def test_a_file_changed_after_indexing_is_not_served(settings_factory, corpus, tmp_path):
    settings = settings_factory()
    folder = tmp_path / "lib"
    folder.mkdir()
    target = shutil.copy(corpus.originals["chelsea"], folder / "chelsea.png")
    with Workspace(settings) as ws:
        ws.index([folder])
    with serving(settings) as c:
        hit = c.post("/api/search/upload?k=1", files={"file": ("q.png", corpus.originals["chelsea"].read_bytes())})
        item = hit.json()["hits"][0]
        assert c.get(item["file"]).status_code == 200
        with open(target, "ab") as fh:
            fh.write(b"appended after indexing")
        r = c.get(item["file"])
        assert r.status_code == 410
        assert "changed" in r.json()["detail"]
        assert c.get(item["thumbnail"]).status_code == 410
        os.remove(target)
        assert c.get(item["file"]).status_code == 410


def test_a_decoder_crash_on_an_upload_fails_that_request_not_the_service(indexed, corpus):
    from tests.indexer.hostile_decoders import always_segfault

    settings, _ = indexed
    with serving(settings) as c:
        decoder = c.app.state.service.workspace.query_decoder()
        real = decoder.decode_fn
        decoder.decode_fn = always_segfault  # stands in for a native decoder crashing on a hostile upload
        try:
            r = c.post("/api/search/upload", files={"file": ("evil.jpg", corpus.distractors["moon"].read_bytes())})
        finally:
            decoder.decode_fn = real
        assert r.status_code == 422
        assert "decoder_crashed" in r.json()["detail"] and "evil.jpg" in r.json()["detail"]
        again = c.post("/api/search/upload", files={"file": ("moon.jpg", corpus.distractors["moon"].read_bytes())})
        assert again.status_code == 200
        assert again.json()["hits"][0]["name"] == "moon.jpg"


def test_only_loopback_names_and_allowed_hosts_are_answered(indexed):
    """DNS rebinding: a page on attacker.example that makes its name resolve to 127.0.0.1 sends
    ``Host: attacker.example``; a key-less loopback service must not answer it."""
    settings, _ = indexed
    with serving(settings, allowed_hosts=("photos.lan",)) as c:
        for host in ("attacker.example", "attacker.example:8000", "127.0.0.1.attacker.example", "photos.lan.evil"):
            r = c.get("/api/duplicates", headers={"Host": host})
            assert r.status_code == 400 and r.text == "Invalid host header", host
        assert c.get("/healthz", headers={"Host": "attacker.example"}).status_code == 400
        for host in ("127.0.0.1:8000", "localhost:8000", "[::1]:8000", "LOCALHOST", "photos.lan:8000"):
            assert c.get("/healthz", headers={"Host": host}).status_code == 200, host


def test_the_address_listened_on_is_a_trusted_name_unless_it_is_every_interface():
    from lookalike.api.app import trusted_hosts
    from lookalike.config import Settings

    s = Settings()
    assert trusted_hosts(s, "192.168.1.20") == ["localhost", "127.0.0.1", "::1", "[::1]", "192.168.1.20"]
    assert trusted_hosts(s, "0.0.0.0") == ["localhost", "127.0.0.1", "::1", "[::1]"]
    assert trusted_hosts(s, "fe80::1")[-2:] == ["fe80::1", "[fe80::1]"]
    assert trusted_hosts(s.with_(allowed_hosts=("photos.lan",)), None)[-1] == "photos.lan"


def test_library_data_goes_to_this_origins_page_only(indexed, corpus):
    """A page on another port of 127.0.0.1 is ``same-site`` (cookies do not tell ports apart) and used to load
    ``/api/items/N/file``; now only this origin's page (``same-origin``), a typed address (``none``) and non-browser
    clients (no header) are answered, and every answer forbids cross-origin embedding."""
    settings, _ = indexed
    with serving(settings) as c:
        query = corpus.distractors["coins"].read_bytes()
        hits = c.post("/api/search/upload?k=1", files={"file": ("q.jpg", query)}).json()["hits"]
        file_url = hits[0]["file"]
        for site in ("same-site", "cross-site"):
            r = c.get(file_url, headers={"Sec-Fetch-Site": site})
            assert r.status_code == 403 and site in r.json()["detail"]
            assert r.headers["cross-origin-resource-policy"] == "same-origin"
        for headers in ({"Sec-Fetch-Site": "same-origin"}, {"Sec-Fetch-Site": "none"}, {}):
            r = c.get(file_url, headers=headers)
            assert r.status_code == 200 and r.headers["cross-origin-resource-policy"] == "same-origin"
        # the page and its static files are not library data: a link from elsewhere may open the page
        assert c.get("/", headers={"Sec-Fetch-Site": "cross-site"}).status_code == 200


def test_a_link_swapped_in_for_an_indexed_file_is_not_followed(settings_factory, tmp_path, images):
    """Index a bait file, give it the size and mtime of a private file, then put a symlink to the private file in
    its place: the size and mtime seen through the link match the catalog, and the private file used to be
    served. The file is now opened without following a link at its place, and the open file is what is checked
    and served."""
    import os

    from lookalike.workspace import Workspace

    media = tmp_path / "media"
    media.mkdir()
    bait = media / "bait.png"
    images["coffee"].save(bait)
    private = tmp_path / "private.bin"
    private.write_bytes(b"secret!" * (bait.stat().st_size // 7) + b"s" * (bait.stat().st_size % 7))
    mtime = private.stat().st_mtime_ns
    os.utime(bait, ns=(mtime, mtime))
    settings = settings_factory()
    with Workspace(settings) as ws:
        ws.index([media])
    with serving(settings) as c:
        hit = c.post("/api/search/upload?k=1", files={"file": ("q.png", bait.read_bytes())}).json()["hits"][0]
        assert c.get(hit["file"]).content == bait.read_bytes()  # served while it is the indexed file
        bait.unlink()
        bait.symlink_to(private)
        for url in (hit["file"], hit["thumbnail"]):
            r = c.get(url)
            assert r.status_code == 410 and b"secret" not in r.content, url


def test_the_session_exchange_is_rate_limited_and_its_cookie_expires(indexed):
    """Wrong keys: 401 ten times a minute, then 429 with Retry-After (the right key too, until the window passes);
    a key that is not text (a lone surrogate) is a 400, not a 500; the cookie has a Max-Age, and is Secure over
    TLS only."""
    from lookalike.api.app import SESSION_ATTEMPTS, SESSION_MAX_AGE_S

    settings, _ = indexed
    with serving(settings, api_key="s3cret-key") as c:
        bad = c.post("/api/session", content=b'{"key": "\\ud800"}', headers={"Content-Type": "application/json"})
        assert bad.status_code == 400 and bad.json()["detail"] == "the key is not valid text"
        login = c.post("/api/session", json={"key": "s3cret-key"})
        cookie = login.headers["set-cookie"].lower()
        assert login.status_code == 204 and f"max-age={SESSION_MAX_AGE_S}" in cookie and "secure" not in cookie
        for _ in range(SESSION_ATTEMPTS):
            assert c.post("/api/session", json={"key": "guess"}).status_code == 401
        limited = c.post("/api/session", json={"key": "s3cret-key"})
        assert limited.status_code == 429 and 1 <= int(limited.headers["retry-after"]) <= 60
    with serving(settings, api_key="s3cret-key") as c:
        c.base_url = "https://127.0.0.1:8443"
        secure = c.post("/api/session", json={"key": "s3cret-key"}).headers["set-cookie"].lower()
        assert "; secure" in secure


def test_an_empty_key_file_is_a_usage_error(tmp_path):
    from typer.testing import CliRunner

    from lookalike.cli.main import app

    empty = tmp_path / "key"
    empty.write_text("  \n")
    result = CliRunner().invoke(app, ["--home", str(tmp_path), "serve", "--api-key-file", str(empty)])
    text = re.sub(r"[\s│╭╮╰╯─]+", " ", result.stderr)  # Click's error box, unwrapped
    assert result.exit_code == 2 and "is empty: an empty key would mean no key" in text


def _read_answer(sock) -> str:
    """One whole HTTP answer off a raw socket: its head, then as many body bytes as its Content-Length says (one
    recv() may return the head alone; the body comes in a later segment)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return data.decode("latin-1")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    while length and len(body) < int(length.group(1)):
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return (head + b"\r\n\r\n" + body).decode("latin-1")


def test_a_trickling_upload_is_refused_and_frees_its_slot(indexed, corpus):
    """One slot, a real server: an upload that stalls mid-body is answered 408 after the stall limit, and the next
    request is served (twenty such uploads used to hold every slot while /healthz said ok)."""
    import json
    import socket
    import urllib.request
    from urllib.parse import urlparse

    settings, _ = indexed
    query = corpus.distractors["coins"].read_bytes()
    boundary = "lookalike-test-boundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="q.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + query
        + f"\r\n--{boundary}--\r\n".encode()
    )
    with live_server(settings.with_(max_in_flight=1, upload_stall_s=0.5)) as base:
        url = urlparse(base)
        with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
            head = (
                f"POST /api/search/upload?k=1 HTTP/1.1\r\nHost: 127.0.0.1:{url.port}\r\n"
                f"Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {len(body)}\r\n\r\n"
            )
            started = time.monotonic()
            sock.sendall(head.encode() + body[:1000])  # ... and nothing more
            answer = _read_answer(sock)
            assert answer.startswith("HTTP/1.1 408"), answer[:200]
            assert "too slow" in answer and time.monotonic() - started < 5
        whole = urllib.request.Request(
            f"{base}/api/search/upload?k=1",
            data=body,
            headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        )
        with urllib.request.urlopen(whole, timeout=60) as ok:  # the slot is free again
            assert ok.status == 200 and json.loads(ok.read())["hits"]


def test_files_stream_past_the_stall_limit_and_every_open_file_is_closed(settings_factory, tmp_path, images):
    """The body timeout times request bodies only: a file response that takes longer than the stall limit streams
    to its end. A refused range (416) or a FIFO put where a file was closes or opens nothing it should not."""
    import os
    import socket
    from urllib.parse import urlparse

    from lookalike.workspace import Workspace

    media = tmp_path / "media"
    media.mkdir()
    big = media / "big.png"
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (1400, 1400, 3), dtype=np.uint8)).save(big)  # ~6 MB, incompressible
    images["coffee"].save(media / "coffee.png")
    settings = settings_factory()
    with Workspace(settings) as ws:
        ws.index([media])
    with live_server(settings.with_(upload_stall_s=0.5)) as base:
        url = urlparse(base)
        with serving(settings) as c:
            hits = c.post("/api/search/upload?k=5", files={"file": ("q.png", big.read_bytes())}).json()["hits"]
        file_url = next(h["file"] for h in hits if h["name"] == "big.png")
        fds = len(os.listdir("/proc/self/fd"))
        with socket.create_connection((url.hostname, url.port), timeout=20) as sock:
            sock.sendall(f"GET {file_url} HTTP/1.1\r\nHost: 127.0.0.1:{url.port}\r\n\r\n".encode())
            data = b""
            time.sleep(1.5)  # a slow reader: the response outlives the stall limit
            while len(data) < big.stat().st_size:
                chunk = sock.recv(1 << 20)
                if not chunk:
                    break
                data += chunk
                time.sleep(0.05)
        assert data.startswith(b"HTTP/1.1 200") and data.endswith(big.read_bytes()[-4096:])
        with socket.create_connection((url.hostname, url.port), timeout=20) as sock:
            for _ in range(5):
                sock.sendall(
                    f"GET {file_url} HTTP/1.1\r\nHost: 127.0.0.1:{url.port}\r\nRange: bytes=999999999-\r\n\r\n".encode()
                )
                assert sock.recv(65536).startswith(b"HTTP/1.1 416")
        time.sleep(0.5)
        assert len(os.listdir("/proc/self/fd")) <= fds  # the 416s closed their files
        coffee = next(h for h in hits if h["name"] == "coffee.png")
        os.unlink(media / "coffee.png")
        os.mkfifo(media / "coffee.png")
        started = time.monotonic()
        with socket.create_connection((url.hostname, url.port), timeout=20) as sock:
            sock.sendall(f"GET {coffee['file']} HTTP/1.1\r\nHost: 127.0.0.1:{url.port}\r\n\r\n".encode())
            assert sock.recv(65536).startswith(b"HTTP/1.1 410") and time.monotonic() - started < 5
