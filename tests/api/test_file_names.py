"""Files whose names are not valid UTF-8 are served like any other (they used to be answered 410 Gone)."""

from __future__ import annotations

import io
import os

from PIL import Image

from lookalike.workspace import Workspace
from tests.api.serving import serving

LATIN1 = os.fsdecode(b"caf\xe9_\xe9t\xe9.jpg")  # Latin-1 bytes, as an old camera or a Windows share writes them


def test_a_file_named_in_latin1_is_served_with_its_thumbnail(settings_factory, tmp_path, images):
    root = tmp_path / "media"
    root.mkdir()
    images["coffee"].save(root / LATIN1, "JPEG", quality=90)
    images["chelsea"].save(root / "chelsea.jpg", "JPEG", quality=90)
    assert os.fsencode(root / LATIN1).endswith(b"caf\xe9_\xe9t\xe9.jpg")
    settings = settings_factory()
    with Workspace(settings) as ws:
        assert ws.index([root]).images == 2
    query = tmp_path / "query.png"
    images["coffee"].resize((300, 200)).save(query)
    with serving(settings) as client, open(query, "rb") as fh:
        found = client.post("/api/search/upload?k=1", files={"file": ("query.png", fh.read(), "image/png")})
        assert found.status_code == 200, found.text
        hit = found.json()["hits"][0]
        assert hit["name"] == "caf%E9_%E9t%E9.jpg"  # shown percent-encoded: JSON holds text only
        original = client.get(hit["file"])
        assert original.status_code == 200, original.text
        assert original.headers["content-type"] == "image/jpeg"
        assert original.content == (root / LATIN1).read_bytes()
        thumb = client.get(hit["thumbnail"])
        assert thumb.status_code == 200, thumb.text
        assert Image.open(io.BytesIO(thumb.content)).size == (320, 213)
