"""The graph cache's files: what a killed export, stray temp files and a read-only folder leave, and what follows."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest

from lookalike.indexer.embedders.graph_cache import STRAY_TEMP_SECONDS, GraphCache
from lookalike.storage import files

pytestmark = pytest.mark.catalog_free  # opens no catalog: the PostgreSQL run leaves it out


def _fake_export(calls: list[Path]):
    def export(path: Path) -> int:
        calls.append(path)
        path.write_bytes(b"graph %d" % len(calls))
        return 8

    return export


def _ours(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith("lookalike")]


def test_an_export_killed_after_its_first_rename_is_exported_again_silently(tmp_path, monkeypatch, caplog):
    """Whichever file of the pair is renamed into place first, a kill right after it is not 'damage'."""
    calls: list[Path] = []
    replace = os.replace

    def killed_after_first_rename(src, dst):
        replace(src, dst)
        raise KeyboardInterrupt

    monkeypatch.setattr(files.os, "replace", killed_after_first_rename)
    with pytest.raises(KeyboardInterrupt):
        GraphCache(tmp_path).get("m", "w", _fake_export(calls))
    monkeypatch.setattr(files.os, "replace", replace)
    caplog.set_level(logging.WARNING)
    graph = GraphCache(tmp_path).get("m", "w", _fake_export(calls))
    assert _ours(caplog) == [] and len(calls) == 2 and graph.exported
    assert GraphCache(tmp_path).get("m", "w", _fake_export(calls)).graph.read_bytes() == b"graph 2"
    assert len(calls) == 2


def test_stray_temp_files_older_than_a_killed_export_are_swept(tmp_path):
    old, fresh = tmp_path / ".m-1.onnx.abc.tmp", tmp_path / ".m-1.onnx.def.tmp"
    for path in (old, fresh):
        path.write_bytes(b"partial")
    stamp = time.time() - STRAY_TEMP_SECONDS - 1
    os.utime(old, (stamp, stamp))
    GraphCache(tmp_path).get("m", "w", _fake_export([]))
    assert not old.exists() and fresh.exists()  # a live export elsewhere may own the fresh one


def test_a_cache_that_cannot_be_written_exports_to_a_temporary_folder_with_one_warning(tmp_path, caplog):
    (tmp_path / "file").write_text("not a folder")
    unwritable = tmp_path / "file" / "models"
    caplog.set_level(logging.WARNING)
    calls: list[Path] = []
    cache = GraphCache(unwritable)
    first = cache.get("m", "w", _fake_export(calls))
    assert cache.get("m", "w", _fake_export(calls)).graph == first.graph and len(calls) == 1
    assert first.graph.read_bytes() == b"graph 1" and not first.graph.is_relative_to(tmp_path)
    first.record("openvino-1", {"precision": "f32", "min_cosine": 1.0, "pictures": 1})
    [message] = _ours(caplog)
    assert message.startswith(f"model cache {unwritable} cannot be written (")
    assert message.endswith("); the graph is exported to a temporary folder for this run")


def test_a_read_only_cache_with_the_graph_is_used_as_it_is(tmp_path, monkeypatch, caplog):
    calls: list[Path] = []
    GraphCache(tmp_path).get("m", "w", _fake_export(calls))
    monkeypatch.setattr(files.os, "replace", lambda src, dst: (_ for _ in ()).throw(PermissionError(13, "denied")))
    caplog.set_level(logging.WARNING)
    graph = GraphCache(tmp_path).get("m", "w", _fake_export(calls))
    graph.record("onnxruntime-1", {"failed": "why"})  # not kept on disk, no error
    assert len(calls) == 1 and _ours(caplog) == [] and graph.verified("onnxruntime-1") == {"failed": "why"}
