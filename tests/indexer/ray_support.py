"""What the Ray tests share: the loopback-only check, a small real corpus, and a library's state to compare.

Ray binds to the machine's interface address even when told 127.0.0.1, and only loopback traffic is allowed on
these machines, so Ray tests run inside a network namespace with only ``lo`` (``make test-ray`` makes one as root:
``unshare -n``); elsewhere they skip and say so.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine, create_engine

from benchmarks.corpus import edit_video, package_images, save, video_dir
from lookalike.config import Settings
from lookalike.workspace import Workspace
from tests.cli.test_crash_safety import _state
from tests.conftest import fresh_db_url

ROOT = Path(__file__).resolve().parents[2]
NAMESPACE_REASON = (
    "Ray tests run in a loopback-only network namespace (Ray would bind the machine's address): "
    "`make test-ray` runs them there (as root: unshare -n)"
)
PART_SECONDS = 3.0  # the corpus's videos (4 s and 10 s) are decoded in parts, side by side


def loopback_only() -> bool:
    """Whether this process's network namespace has no interface but loopback."""
    try:  # /proc/net/dev is the namespace's own (/sys/class/net may show the host's)
        lines = Path("/proc/net/dev").read_text().splitlines()[2:]
    except OSError:
        return False
    return [line.split(":")[0].strip() for line in lines] == ["lo"]


def needs_ray_namespace() -> list[pytest.MarkDecorator]:
    """The marks of a Ray test module: ``ray``, and skipped outside a loopback-only namespace, except where
    ``LOOKALIKE_REQUIRE_RAY`` is set (``make test-ray``, CI): there a test that cannot run fails."""
    if os.environ.get("LOOKALIKE_REQUIRE_RAY") and not loopback_only():
        raise RuntimeError(f"LOOKALIKE_REQUIRE_RAY is set but this is no loopback-only namespace: {NAMESPACE_REASON}")
    return [pytest.mark.ray, pytest.mark.skipif(not loopback_only(), reason=NAMESPACE_REASON)]


def worker_env() -> dict[str, str]:
    """The environment Ray's worker processes need to import lookalike and the tests' decoders from this checkout."""
    path = os.pathsep.join([str(ROOT / "src"), str(ROOT), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return {"PYTHONPATH": path}


def assert_loopback_nodes(ray) -> None:
    """Every node of the cluster bound 127.0.0.1."""
    nodes = [n for n in ray.nodes() if n["Alive"]]
    assert nodes and {n["NodeManagerAddress"] for n in nodes} == {"127.0.0.1"}


def make_corpus(root: Path) -> Path:
    """A few dozen real files: 16 package photos, 4 resized copies, 2 broken files, 2 short videos."""
    images = package_images()
    names = sorted(images)[:16]
    for name in names:
        save(images[name], root / "photos" / f"{name}.png")
    for name in names[:4]:
        im = images[name]
        save(im.resize((max(32, im.width // 2), max(32, im.height // 2))), root / "copies" / f"{name}.jpg", "JPEG")
    (root / "broken").mkdir()
    (root / "broken" / "text.jpg").write_bytes(b"this is not a picture " * 40)
    (root / "broken" / "cut.png").write_bytes((root / "photos" / f"{names[0]}.png").read_bytes()[:300])
    edit_video(video_dir() / "bikes.mp4", root / "videos" / "bikes.mp4", fps=12.5)
    edit_video(video_dir() / "carphone_pristine.mp4", root / "videos" / "carphone.mp4")
    return root


def library_state(engine: Engine) -> dict[str, tuple]:
    """Per file: status, error code, kind, SHA-256, vector keys (level, start, end) and vectors."""
    return _state(engine)


def assert_same_library(got: dict[str, tuple], want: dict[str, tuple], tolerance: float = 1e-4) -> None:
    """The same files with the same statuses, error codes and vector keys; vectors within ``tolerance``."""
    assert sorted(got) == sorted(want)
    for path, (status, code, kind, sha, keys, vectors) in want.items():
        g_status, g_code, g_kind, g_sha, g_keys, g_vectors = got[path]
        assert (g_status, g_code, g_kind, g_sha) == (status, code, kind, sha), path
        assert g_keys == keys, path
        for a, b in zip(g_vectors, vectors, strict=True):
            assert float(np.abs(a - b).max()) <= tolerance, path


def ray_settings(home: Path, model_cache: Path, **changes) -> Settings:
    """Settings of a test library: one decoder, batches of 16, videos in parts of 3 s."""
    return Settings(
        home=home,
        db_url=fresh_db_url(home),
        workers=1,
        batch_size=16,
        model_cache=model_cache,
        video_part_seconds=PART_SECONDS,
        **changes,
    )


def index_with(settings: Settings, media: Path, progress=None) -> tuple[object, dict, list]:
    """Index ``media``; returns the report, the library's state and the answers to :func:`queries`."""
    with Workspace(settings) as ws:
        report = ws.index([media], progress=progress)
        answers = [[(h.path, round(h.score, 4)) for h in r.hits] for r in ws.search_files(queries(media), k=5)]
    engine = create_engine(settings.database_url)
    state = library_state(engine)
    engine.dispose()
    return report, state, answers


def queries(media: Path) -> list[Path]:
    """Two photos and a video to search with."""
    return [*sorted((media / "copies").iterdir())[:2], media / "videos" / "carphone.mp4"]
