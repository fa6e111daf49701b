"""Discovery: content sniffing, hidden files, links that loop or escape, non-regular files."""

from __future__ import annotations

import io
import os

import pytest
from PIL import Image

from lookalike.indexer.discover import Candidate, Skipped, walk
from lookalike.types import MediaKind

pytestmark = pytest.mark.catalog_free  # opens no catalog: the PostgreSQL run leaves it out


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(buf, "PNG")
    return buf.getvalue()


def _run(root, **kw):
    found = list(walk(root, **kw))
    cands = {os.path.relpath(c.path, root): c.kind for c in found if isinstance(c, Candidate)}
    skipped = {os.path.relpath(s.path, root): s.reason for s in found if isinstance(s, Skipped)}
    return cands, skipped


def test_kinds_come_from_content_then_name(tmp_path):
    (tmp_path / "a.png").write_bytes(_png())
    (tmp_path / "png_named.mp4").write_bytes(_png())
    (tmp_path / "no_extension").write_bytes(_png())
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "garbage.jpg").write_bytes(b"\x00" * 100)  # media name, unknown content: still a candidate
    cands, skipped = _run(tmp_path)
    assert cands == {
        "a.png": MediaKind.IMAGE,
        "png_named.mp4": MediaKind.IMAGE,
        "no_extension": MediaKind.IMAGE,
        "garbage.jpg": MediaKind.IMAGE,
    }
    assert skipped == {}


def test_hidden_files_and_folders_are_not_walked(tmp_path):
    (tmp_path / ".hidden.png").write_bytes(_png())
    (tmp_path / ".cache").mkdir()
    (tmp_path / ".cache" / "x.png").write_bytes(_png())
    (tmp_path / "dir.jpg").mkdir()  # a directory with a media name is walked as a directory
    (tmp_path / "dir.jpg" / "in.png").write_bytes(_png())
    cands, _ = _run(tmp_path)
    assert set(cands) == {"dir.jpg/in.png"}


def test_symlinks_never_escape_or_loop(tmp_path):
    root = tmp_path / "root"
    (root / "sub").mkdir(parents=True)
    (root / "sub" / "x.png").write_bytes(_png())
    outside = tmp_path / "outside.png"
    outside.write_bytes(_png())
    os.symlink(outside, root / "escape.png")
    os.symlink(root, root / "sub" / "loop")
    os.symlink(root / "b.png", root / "a.png")
    os.symlink(root / "a.png", root / "b.png")
    os.symlink("/dev/zero", root / "zero.jpg")
    cands, skipped = _run(root, follow_symlinks=True)
    assert set(cands) == {"sub/x.png"}
    assert skipped["escape.png"] == "outside_root"
    assert skipped["a.png"] == skipped["b.png"] == "broken_link"
    assert skipped["zero.jpg"] == "outside_root"
    cands, skipped = _run(root)
    assert set(cands) == {"sub/x.png"} and skipped["escape.png"] == "symlink_not_followed"


def test_fifo_is_reported_not_opened(tmp_path):
    os.mkfifo(tmp_path / "pipe.jpg")
    cands, skipped = _run(tmp_path)
    assert cands == {} and skipped == {"pipe.jpg": "not_regular_file"}


def test_a_single_file_can_be_the_root(tmp_path):
    (tmp_path / "one.png").write_bytes(_png())
    cands, _ = _run(tmp_path / "one.png")
    assert list(cands.values()) == [MediaKind.IMAGE]
