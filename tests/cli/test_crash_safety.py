"""Crash safety: `lookalike index` killed with SIGKILL at 50 random points while it ingests 2,000+ files.

After every kill the library must be consistent (database rows and FAISS files agree, nothing duplicated, no decode
worker left behind), and the resumed runs must end in exactly the state of one uninterrupted run.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import ImageEnhance
from sqlalchemy import create_engine, func, inspect, select

from benchmarks.corpus import edit_video, package_images, video_dir
from lookalike.indexer.pipeline import WRITE_EVERY_FILES
from lookalike.storage.index_files import INDEX_LEVELS
from lookalike.storage.library import collection_dirname
from lookalike.storage.manifest import Manifest
from lookalike.storage.orm import Collection, Media, Vector
from lookalike.storage.vectors import VectorIndex
from tests.conftest import fresh_db_url

KILLS = 50
PHOTOS = 2000
BROKEN = 16
SEED = 20261124


def _make_corpus(root: Path) -> int:
    """2,000 distinct small JPEGs cut from the package photos, some broken files and three short videos."""
    rng = np.random.default_rng(SEED)
    pics = list(package_images().values())
    for i in range(PHOTOS):
        im = pics[i % len(pics)]
        side = int(rng.integers(48, min(160, im.width, im.height)))
        x, y = int(rng.integers(0, im.width - side + 1)), int(rng.integers(0, im.height - side + 1))
        tile = ImageEnhance.Brightness(im.crop((x, y, x + side, y + side))).enhance(float(rng.uniform(0.7, 1.3)))
        folder = root / f"batch{i // 250:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        tile.save(folder / f"tile{i:04d}.jpg", quality=int(rng.integers(70, 95)))
    broken = root / "broken"
    broken.mkdir()
    for i in range(BROKEN):
        buf = io.BytesIO()
        pics[i].save(buf, format="JPEG")
        (broken / f"cut{i:02d}.jpg").write_bytes(buf.getvalue()[: 200 + 40 * i])
    src = video_dir() / "bikes.mp4"
    for i, (start, end) in enumerate(((0.0, 3.0), (2.0, 6.0), (5.0, 9.0))):
        edit_video(src, root / "videos" / f"clip{i}.mp4", lambda im: im.resize((160, 68)), start=start, end=end)
    return PHOTOS + BROKEN + 3


CLI = (sys.executable, "-m", "lookalike.cli.main")


def _index(home: Path, db: str, root: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        # torch: the kill schedule below (start-up within 4.5 s, a batch after each commit) is paced for it; on
        # OpenVINO a run starts in 2 s and embeds 3x faster, so the corpus is ingested before 50 kills land. The
        # catalog's and the FAISS files' crash safety does not depend on the runtime; the model cache's is
        # tests/indexer/test_graph_cache.py's
        [*CLI, "--home", str(home), "--db", db, "--backend", "torch", "index", str(root), "--json"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group, to find any decode worker it leaves behind
    )


def _group_gone(pgid: int, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False


def _count(engine) -> int:
    if not inspect(engine).has_table("media"):
        return 0  # killed before the schema was created
    with engine.connect() as c:
        return int(c.scalar(select(func.count()).select_from(Media)) or 0)


def _state(engine) -> dict[str, tuple]:
    """Per file: what is stored about it and its vectors (by level and time range, in a stable order)."""
    if not inspect(engine).has_table("media"):
        return {}
    with engine.connect() as c:
        media = c.execute(select(Media.id, Media.path, Media.status, Media.error_code, Media.kind, Media.sha256)).all()
        vectors = c.execute(select(Vector.media_id, Vector.level, Vector.start_s, Vector.end_s, Vector.embedding)).all()
    by_media: dict[int, list] = {}
    for v in vectors:
        vector = np.frombuffer(v.embedding, np.float32)
        by_media.setdefault(v.media_id, []).append((v.level, v.start_s, v.end_s, vector))
    paths = Counter(m.path for m in media)
    assert max(paths.values(), default=1) == 1, "a file is catalogued twice"
    state = {}
    for m in media:
        vecs = sorted(by_media.pop(m.id, []), key=lambda v: (v[0], v[1] or 0.0))
        keys = [(lvl, start, end) for lvl, start, end, _ in vecs]
        assert len(keys) == len(set(keys)), f"duplicated vectors for {m.path}"
        if m.status == "ok":
            expected = {"image"} if m.kind == "image" else {"segment", "video"}
            assert {k[0] for k in keys} == expected, f"{m.path} is ok but has vectors {keys}"
        else:
            assert not keys, f"{m.path} failed but has vectors"
        state[m.path] = (m.status, m.error_code, m.kind, m.sha256, keys, [v[3] for v in vecs])
    assert not by_media, "vectors whose file row is gone"
    return state


def _check_files(home: Path, engine) -> str:
    """The FAISS files on disk: either current (their ids are exactly the database's) or older than the
    database by generation, which the next writer rebuilds. Returns which."""
    if not inspect(engine).has_table("collections"):
        return "no schema yet"
    with engine.connect() as c:
        coll = c.execute(select(Collection.name, Collection.generation, Collection.id)).first()
        if coll is None:
            return "no collection yet"
        directory = home / "collections" / collection_dirname(coll.name)
        manifest = Manifest.load(directory)
        if manifest is None or manifest.generation != coll.generation:
            return "stale"
        for name, levels in INDEX_LEVELS.items():
            ids = VectorIndex.load(directory / f"{name}.faiss", manifest.factories.get(name, "Flat")).ids()
            in_db = c.scalars(select(Vector.id).where(Vector.collection_id == coll.id, Vector.level.in_(levels))).all()
            assert len(ids) == len(set(ids.tolist())), f"{name}.faiss holds an id twice"
            assert set(ids.tolist()) == set(in_db), f"{name}.faiss disagrees with the database"
            assert manifest.counts[name] == len(ids)
        return "current"


def _kill_during_save(proc: subprocess.Popen[bytes], home: Path, delay: float) -> bool:
    """SIGKILL ``proc`` ``delay`` seconds after a temp file of an atomic save appears; False if it finished first."""
    while proc.poll() is None:
        if any(home.glob("collections/*/.*.tmp")):
            time.sleep(delay)
            if proc.poll() is not None:
                break
            os.kill(proc.pid, signal.SIGKILL)
            return True
        time.sleep(0.001)
    assert proc.returncode == 0, proc.stderr.read().decode() if proc.stderr else ""
    return False


def _after_kill(proc: subprocess.Popen[bytes], home: Path, engine, phases: Counter) -> None:
    proc.wait()
    assert _group_gone(proc.pid), "a decode worker outlived the killed indexer"
    phases[_check_files(home, engine)] += 1
    _state(engine)  # raises on duplicates, vectorless ok files, orphans


def test_fifty_sigkills_lose_nothing_and_end_like_an_uninterrupted_run(tmp_path: Path) -> None:
    root = tmp_path / "media"
    total = _make_corpus(root)
    rng = np.random.default_rng(SEED)

    clean_home, home = tmp_path / "clean", tmp_path / "killed"
    clean_home.mkdir()
    home.mkdir()
    clean_db, db = fresh_db_url(clean_home), fresh_db_url(home)
    clean = _index(clean_home, clean_db, root)
    assert clean.wait(timeout=900) == 0, clean.stderr.read().decode() if clean.stderr else ""
    clean_engine = create_engine(clean_db)
    expected = _state(clean_engine)
    assert len(expected) == total

    engine = create_engine(db)
    kills, phases = 0, Counter()
    while kills < KILLS:
        before = _count(engine) if kills else 0
        left = total - before
        if left == 0:
            break  # the ingest finished early: the assertion below says how many kills it got
        kills_left, batches_left = KILLS - kills, -(-left // WRITE_EVERY_FILES)
        roll = rng.random()
        if roll < 0.15 and kills:
            # Index one folder and kill the run the moment its save writes a temp file: a kill while the FAISS
            # files and the manifest are being replaced. When the save is missed the run simply finished.
            folder = root / f"batch{int(rng.integers(0, PHOTOS // 250)):02d}"
            proc = _index(home, db, folder)
            if not _kill_during_save(proc, home, float(rng.choice([0.0, rng.uniform(0.0, 0.1)]))):
                phases["runs that finished"] += 1
                assert _check_files(home, engine) == "current"
                continue
            phases["during a save"] += 1
            kills += 1
            _after_kill(proc, home, engine, phases)
            continue
        proc = _index(home, db, root)
        started = time.monotonic()
        if roll < 0.15 + min(0.45, 0.6 * batches_left / kills_left):
            # after the run's first commit, at a random moment of the embedding or writing that follows
            while proc.poll() is None and _count(engine) == before and time.monotonic() - started < 120:
                time.sleep(0.02)
            time.sleep(float(rng.uniform(0.0, 0.7)))
            phases["after a commit"] += 1
        else:
            # in the first seconds: start-up, migration, walk and planning, first decodes, sometimes a commit
            time.sleep(float(rng.uniform(0.2, 4.5)))
            phases["in the first seconds"] += 1
        if proc.poll() is not None:
            stderr = proc.stderr.read().decode() if proc.stderr else ""
            pytest.fail(f"index run ended before its kill ({dict(phases)}): {stderr}")
        os.kill(proc.pid, signal.SIGKILL)
        kills += 1
        _after_kill(proc, home, engine, phases)
    assert kills == KILLS, f"only {kills} kills landed before the ingest finished"
    assert phases["during a save"] >= 3, phases

    final = _index(home, db, root)
    assert final.wait(timeout=900) == 0, final.stderr.read().decode() if final.stderr else ""
    assert _check_files(home, engine) == "current"
    assert not list(home.rglob("*.tmp")), "a temp file of an interrupted save was left behind"
    got = _state(engine)
    assert got.keys() == expected.keys(), "lost or extra files"
    for path, (status, code, kind, sha, keys, vectors) in expected.items():
        g_status, g_code, g_kind, g_sha, g_keys, g_vectors = got[path]
        assert (g_status, g_code, g_kind, g_sha, g_keys) == (status, code, kind, sha, keys), path
        for a, b in zip(vectors, g_vectors, strict=True):
            # the same pixels through the same model; only the batch they shared may differ (float rounding)
            assert np.abs(a - b).max() < 1e-4, path
    print(f"{kills} kills; when, and the FAISS files found after them: {dict(phases)}")
