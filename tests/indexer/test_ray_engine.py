"""The Ray engine on a real local Ray (2 CPUs): the library it builds equals the local engine's, a killed worker
or a crashing decoder costs nothing but that file, and a node that cannot see a file says which."""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest

from lookalike.errors import SharedStorageError
from lookalike.indexer.describe import MediaDescriptor
from lookalike.indexer.plan import Job
from lookalike.types import MediaKind
from lookalike.workspace import Workspace
from tests.indexer.ray_support import (
    assert_loopback_nodes,
    assert_same_library,
    index_with,
    needs_ray_namespace,
    ray_settings,
    worker_env,
)

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'lookalike[ray]')")
pytestmark = needs_ray_namespace()


@pytest.fixture(scope="module")
def local_ray():
    os.environ.update(worker_env())  # the workers Ray starts inherit it
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    assert_loopback_nodes(ray)
    yield ray
    ray.shutdown()


def test_ray_builds_the_local_engines_library(local_ray, ray_media, reference, tmp_path, model_cache):
    report, state, answers = index_with(ray_settings(tmp_path, model_cache, ray="auto"), ray_media)
    want_report, want_state, want_answers = reference
    assert (report.new, report.images, report.videos, report.frames) == (
        want_report.new,
        want_report.images,
        want_report.videos,
        want_report.frames,
    )
    assert sorted((f.path, f.code) for f in report.failed) == sorted((f.path, f.code) for f in want_report.failed)
    assert len(report.failed) == 2 and report.videos == 2
    assert_same_library(state, want_state)
    assert answers == want_answers


def _ray_workers(name: str) -> list[int]:
    """The pids of this machine's Ray worker processes whose title holds ``name``."""
    pids = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if cmdline.startswith(b"ray::") and name.encode() in cmdline:
            pids.append(int(pid))
    return pids


def test_a_ray_worker_killed_mid_run_changes_nothing(local_ray, ray_media, reference, tmp_path, model_cache):
    killed: list[str] = []

    def kill_a_decoder() -> None:  # decoding runs ahead of the first result: watch for the actor, kill it at work
        deadline = time.monotonic() + 60
        while not (pids := _ray_workers("DecodeStage")) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(1.0)
        if pids:
            os.kill(pids[0], signal.SIGKILL)
            killed.append("DecodeStage")

    def kill_an_embedder(done: int, total: int) -> None:
        if done == 4:
            pids = _ray_workers("EmbedStage")
            assert pids, "no embed actor to kill"
            os.kill(pids[0], signal.SIGKILL)
            killed.append("EmbedStage")

    watcher = threading.Thread(target=kill_a_decoder, daemon=True)
    watcher.start()
    report, state, answers = index_with(ray_settings(tmp_path, model_cache, ray="auto"), ray_media, kill_an_embedder)
    watcher.join()
    assert sorted(killed) == ["DecodeStage", "EmbedStage"]
    want_report, want_state, want_answers = reference
    assert report.new == want_report.new
    assert_same_library(state, want_state)
    assert answers == want_answers


def _jobs(paths: list[Path]) -> list[Job]:
    kinds = {".mp4": MediaKind.VIDEO}
    return [
        Job(i, p, str(p), kinds.get(p.suffix, MediaKind.IMAGE), p.stat().st_size if p.exists() else 0, 0, None)
        for i, p in enumerate(paths)
    ]


def test_a_decoder_crash_inside_a_ray_task_costs_only_that_file(local_ray, ray_media, tmp_path, model_cache):
    from lookalike.indexer.engines.ray import RayEngine
    from lookalike.workspace import Workspace as _W
    from tests.indexer.hostile_decoders import decode_or_misbehave

    photos = sorted((ray_media / "photos").iterdir())[:6]
    crasher = tmp_path / "segfault.png"
    shutil.copy(photos[0], crasher)
    settings = ray_settings(tmp_path / "home", model_cache, ray="auto")
    with _W(settings) as ws:
        embedder = ws.embedder(settings.model, settings.weights)
        engine = RayEngine(settings, lambda: embedder, decode=decode_or_misbehave)
        done = {d.job.path: d for d in engine.embed(_jobs([*photos[:3], crasher, *photos[3:]]), MediaDescriptor())}
    assert len(done) == 7
    crashed = done.pop(crasher).record
    assert crashed.status == "failed" and crashed.error_code == "decoder_crashed"
    assert "SIGSEGV" in (crashed.error or "")
    assert all(d.record.status == "ok" and len(d.vectors) == 1 for d in done.values())


def test_a_node_that_cannot_see_a_files_folder_names_it(local_ray, ray_media, tmp_path, model_cache):
    from lookalike.indexer.engines.ray import RayEngine

    ghost = tmp_path / "not-mounted-here" / "photo.jpg"
    settings = ray_settings(tmp_path / "home", model_cache, ray="auto")
    with Workspace(settings) as ws:
        embedder = ws.embedder(settings.model, settings.weights)
        engine = RayEngine(settings, lambda: embedder)
        with pytest.raises(SharedStorageError, match=f"cannot read {ghost}: .*mount the shared storage"):
            list(engine.embed(_jobs([ghost]), MediaDescriptor()))
