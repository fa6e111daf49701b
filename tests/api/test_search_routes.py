"""Search, items and duplicates over HTTP against a real indexed corpus (real model, FAISS, decoding)."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from PIL import Image

from tests.api.serving import serving


@pytest.fixture(scope="module")
def client(indexed):
    """The service over the shared indexed corpus, default settings (no key)."""
    settings, _ = indexed
    with serving(settings) as c:
        yield c


def _upload(client, path: Path, name: str | None = None, content_type: str = "application/octet-stream", k: int = 5):
    with open(path, "rb") as fh:
        return client.post(f"/api/search/upload?k={k}", files={"file": (name or path.name, fh.read(), content_type)})


def test_health_and_info(client):
    assert client.get("/healthz").json() == {"status": "ok", "ready": True}
    info = client.get("/api/info").json()
    assert info["model"] == "efficientnet_lite0"
    assert info["text_search"] is False
    assert info["items"] > 50 and info["vectors"] > info["items"]


def _query_image(images, name: str, folder: Path) -> Path:
    """A new copy of a package photo (smaller, recompressed) that is not in the index."""
    im = images[name]
    path = folder / f"query_{name}.jpg"
    im.resize((im.width * 2 // 3, im.height * 2 // 3)).save(path, "JPEG", quality=60)
    return path


def test_upload_image_finds_its_source_and_serves_thumbnails(client, corpus, images, tmp_path):
    r = _upload(client, _query_image(images, "chelsea", tmp_path), k=12)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["query"] == "query_chelsea.jpg"
    names = [h["name"] for h in body["hits"]]
    assert len(names) == 12
    assert all(n.startswith("chelsea") for n in names[:8])  # the original and its edited copies come first
    assert "chelsea.png" in names[:8]
    top = next(h for h in body["hits"] if h["name"] == "chelsea.png")
    assert top["score"] > 0.9 and top["kind"] == "image"
    thumb = client.get(top["thumbnail"])
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    im = Image.open(io.BytesIO(thumb.content))
    assert max(im.size) == 320
    small = client.get(top["thumbnail"] + "?size=64")
    assert max(Image.open(io.BytesIO(small.content)).size) == 64
    original = client.get(top["file"])
    assert original.status_code == 200
    assert original.content == corpus.originals["chelsea"].read_bytes()


def test_content_decides_not_the_name(client, images, tmp_path):
    # a JPEG uploaded as "notes.txt" with a text type is still searched as the image it is
    r = _upload(client, _query_image(images, "coffee", tmp_path), name="notes.txt", content_type="text/plain")
    assert r.status_code == 200, r.text
    assert r.json()["hits"][0]["name"].startswith("coffee")
    # and a text file named like a photo is refused by its content
    r = client.post("/api/search/upload", files={"file": ("cat.jpg", b"hello, not an image" * 20, "image/jpeg")})
    assert r.status_code == 415
    assert "cat.jpg" in r.json()["detail"] and "content" in r.json()["detail"]


def test_undecodable_upload_is_a_specific_422(client, corpus, tmp_path):
    bad = tmp_path / "broken.jpg"
    data = corpus.distractors["coins"].read_bytes()
    bad.write_bytes(data[: len(data) // 3])
    r = _upload(client, bad)
    assert r.status_code == 422
    assert "broken.jpg" in r.json()["detail"]
    assert client.get("/healthz").json()["ready"] is True  # the service goes on


def test_upload_video_finds_the_source_with_the_matched_range(client, corpus):
    r = _upload(client, corpus.videos["bikes_excerpt"], k=3)
    assert r.status_code == 200, r.text
    top = r.json()["hits"][0]
    assert top["kind"] == "video" and top["name"] in ("bikes.mp4", "bikes_small.mp4")
    assert abs(top["start"] - 4.0) <= 1.0 and abs(top["end"] - 8.0) <= 1.0
    assert top["query_start"] <= 1.0
    assert top["thumbnail"].endswith(f"?t={top['start']:.2f}")
    frame = client.get(top["thumbnail"])
    assert frame.status_code == 200
    first = client.get(top["thumbnail"].split("?")[0])
    assert frame.content != first.content  # the frame at the match, not the video's first


def test_video_file_supports_range_requests(client, corpus):
    r = _upload(client, corpus.videos["bikes_excerpt"], k=1)
    hit = r.json()["hits"][0]
    part = client.get(hit["file"], headers={"Range": "bytes=100-199"})
    assert part.status_code == 206
    assert part.content == Path(hit["path"]).read_bytes()[100:200]
    assert part.headers["content-type"] == "video/mp4"
    assert part.headers["x-content-type-options"] == "nosniff"


def test_similar_by_id_and_item_metadata(client, images, tmp_path):
    hits = _upload(client, _query_image(images, "rocket", tmp_path), k=12).json()["hits"]
    rocket = next(h["id"] for h in hits if h["name"] == "rocket.png")
    item = client.get(f"/api/items/{rocket}").json()
    assert item["name"] == "rocket.png" and item["status"] == "ok" and item["width"] > 0
    similar = client.get(f"/api/search/similar/{rocket}?k=4").json()
    assert similar["query"].endswith("rocket.png")
    assert rocket not in [h["id"] for h in similar["hits"]]
    assert similar["hits"][0]["name"].startswith("rocket")


def test_ids_and_k_are_validated(client):
    assert client.get("/api/items/0").status_code == 422
    assert client.get("/api/items/abc").status_code == 422
    assert client.get("/api/items/99999999").status_code == 404
    # the encoded slashes split the path: no route has that shape, and nothing is read from disk
    r = client.get("/api/items/..%2F..%2Fetc%2Fpasswd/file")
    assert r.status_code == 404 and "root:" not in r.text
    assert client.get("/api/items/-1/file").status_code == 422
    assert client.get(f"/api/items/{2**70}").status_code == 422
    assert client.get("/api/search/similar/1?k=0").status_code == 422
    assert client.get("/api/search/similar/1?k=101").status_code == 422
    assert client.get("/api/items/1/thumbnail?size=100000").status_code == 422
    assert client.get("/api/duplicates?similar_threshold=0.1").status_code == 422  # would pair nearly everything


def test_text_search_needs_a_clip_model(client):
    r = client.post("/api/search/text", json={"text": "a cat"})
    assert r.status_code == 400
    assert "CLIP" in r.json()["detail"]


def test_duplicates(client):
    body = client.get("/api/duplicates").json()
    assert body["similar_threshold"] is None and body["video_threshold"] == 0.7
    assert {g["kind"] for g in body["groups"]} <= {"duplicates", "overlap"}
    chelsea = next(g for g in body["groups"] if any(it["name"] == "chelsea.png" for it in g["items"]))
    assert chelsea["items"][0]["name"] == "chelsea.png" and chelsea["items"][0]["relation"] == "representative"
    members = {it["name"]: it for it in chelsea["items"][1:]}
    assert all(n.startswith("chelsea__") for n in members)
    crop = members["chelsea__crop.jpg"]
    assert crop["relation"] == "cropped" and crop["method"] == "local" and crop["inliers"] >= 15
    # the crop keeps x 5-85% and y 12-92% of the 451 x 300 original (benchmarks.corpus._crop)
    want = (0.05 * 451, 0.12 * 300, 0.85 * 451, 0.92 * 300)
    assert all(abs(a - b) <= 5 for a, b in zip(crop["rep_region"], want, strict=True)), crop["rep_region"]
    assert members["chelsea__flip.jpg"]["relation"] == "flipped"
    videos = next(g for g in body["groups"] if any(it["name"] == "bikes.mp4" for it in g["items"]))
    assert {it["name"] for it in videos["items"]} >= {"bikes.mp4", "bikes_small.mp4"}
    assert all(it["start"] is not None for it in videos["items"])


def test_openapi_document(client):
    doc = client.get("/openapi.json").json()
    assert {"/api/search/upload", "/api/search/text", "/api/search/similar/{item_id}", "/api/duplicates"} <= set(
        doc["paths"]
    )
    assert "APIKeyHeader" in doc["components"]["securitySchemes"]
    docs = client.get("/docs")
    assert docs.status_code == 200
    # Swagger UI comes from this service (the swagger-ui-bundle package), never from a CDN: /docs works offline
    assets = re.findall(r'(?:src|href)="([^"]+)"', docs.text)
    assert assets and all(a.startswith("/static-docs/") for a in assets), assets
    for url in assets:
        r = client.get(url)
        assert r.status_code == 200 and len(r.content) > 100, url


def test_text_search_with_a_clip_model(settings_factory, corpus, tmp_path):
    """Plumbing only (random weights, nothing downloaded): the text route embeds with the collection's CLIP model."""
    import shutil

    from lookalike.workspace import Workspace

    folder = tmp_path / "few"
    folder.mkdir()
    for name in ("chelsea", "coffee", "rocket"):
        shutil.copy(corpus.originals[name], folder / f"{name}.png")
    settings = settings_factory(model="open_clip:RN50", weights="random")
    with Workspace(settings) as ws:
        ws.index([folder])
    with serving(settings) as c:
        assert c.get("/api/info").json()["text_search"] is True
        r = c.post("/api/search/text", json={"text": "a cat", "k": 2})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["query"] == "a cat"
        assert len(body["hits"]) == 2 and all(-1.0 <= h["score"] <= 1.0 for h in body["hits"])
        assert c.post("/api/search/text", json={"text": ""}).status_code == 422
        assert c.post("/api/search/text", json={"text": "a cat", "k": 500}).status_code == 422
