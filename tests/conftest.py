"""Shared fixtures: real media corpora built from package samples, and an index of them made once."""

from __future__ import annotations

import contextlib
import hashlib
import multiprocessing as mp
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from benchmarks.corpus import EDITS, EXTENSIONS, edit_video, edited, package_images, save, video_dir
from lookalike.config import Settings
from lookalike.workspace import Workspace

SOURCES = ("chelsea", "coffee", "astronaut", "rocket", "china", "flower", "motorcycle_left", "camera")
DISTRACTORS = ("coins", "moon", "page", "immunohistochemistry", "retina", "hubble_deep_field", "brick", "grass")


# A PostgreSQL server URL runs the whole suite on PostgreSQL (.ci/postgres.sh sets it); unset means SQLite.
TEST_SERVER = os.environ.get("LOOKALIKE_TEST_DB")


def fresh_db_url(home: Path) -> str:
    """A new, empty catalog database for one library: SQLite inside ``home``, or a new database on the
    PostgreSQL test server."""
    if not TEST_SERVER:
        return f"sqlite:///{home / 'lookalike.db'}"
    name = f"lookalike_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(TEST_SERVER, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(TEST_SERVER).set(database=name).render_as_string(hide_password=False)


def _hold_writer_lock(home: Path, ready, seconds: float, db_url: str | None) -> None:
    from lookalike.storage.db import make_engine
    from lookalike.storage.locks import writer_lock

    engine = make_engine(db_url) if db_url else None
    with writer_lock(home, engine):
        ready.set()
        time.sleep(seconds)


@contextlib.contextmanager
def another_writer(home: Path, seconds: float = 60, db_url: str | None = None) -> Iterator[None]:
    """Another process holds the library's writer lock while the block runs (as a running ingest would); with
    ``db_url``, the database's lock too (PostgreSQL)."""
    ctx = mp.get_context("spawn")
    ready = ctx.Event()
    holder = ctx.Process(target=_hold_writer_lock, args=(home, ready, seconds, db_url))
    holder.start()
    try:
        assert ready.wait(30)
        yield
    finally:
        holder.terminate()
        holder.join()


@pytest.fixture(autouse=True)
def _catalog_free_opens_no_database(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test marked ``catalog_free`` is left out of the PostgreSQL run (``make test-postgres``), so it must open
    no catalog: it fails when it asks for a fixture that builds one (those of wider scope are set up before this
    guard) or makes any database connection in this process (subprocesses are not seen: such tests are not
    marked)."""
    if request.node.get_closest_marker("catalog_free") is None:
        yield
        return
    builders = {"db_url", "settings_factory", "indexed", "library", "ray_media"} & set(request.fixturenames)
    assert not builders, f"marked catalog_free but uses {sorted(builders)}: the PostgreSQL run would leave it out"
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    opened: list[str] = []

    def note(conn) -> None:
        opened.append(str(conn.engine.url))

    event.listen(Engine, "engine_connect", note)
    try:
        yield
    finally:
        event.remove(Engine, "engine_connect", note)
    assert not opened, f"marked catalog_free but connected to {opened[0]}: the PostgreSQL run would leave it out"


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    """A fresh catalog database for one test."""
    return fresh_db_url(tmp_path)


@dataclass(frozen=True)
class Corpus:
    """Where the test media lives and what each file is."""

    root: Path
    originals: dict[str, Path]
    copies: dict[tuple[str, str], Path]  # (source, edit) -> file
    distractors: dict[str, Path]
    videos: dict[str, Path]


@pytest.fixture(scope="session")
def images() -> dict:
    return package_images()


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory, images: dict) -> Corpus:
    root = tmp_path_factory.mktemp("media")
    originals = {n: save(images[n], root / "originals" / f"{n}.png") for n in SOURCES}
    copies = {}
    for n in SOURCES:
        for edit in EDITS:
            path = root / "copies" / f"{n}__{edit.name}{EXTENSIONS[edit.fmt]}"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(edited(images[n], edit))
            copies[(n, edit.name)] = path
    distractors = {n: save(images[n], root / "distractors" / f"{n}.jpg", "JPEG") for n in DISTRACTORS}
    src = video_dir()
    vids = root / "videos"
    videos = {
        "bikes": edit_video(src / "bikes.mp4", vids / "bikes.mp4", fps=12.5),
        "bikes_small": edit_video(
            src / "bikes.mp4", vids / "bikes_small.mp4", lambda im: im.resize((im.width // 2, im.height // 2)), fps=12.5
        ),
        "carphone": edit_video(src / "carphone_pristine.mp4", vids / "carphone.mp4"),
        "bunny": edit_video(src / "bigbuckbunny.mp4", vids / "bunny.mp4", lambda im: im.resize((320, 180)), fps=12.5),
    }
    # partial copy, kept outside the indexed root: bikes 4 s..8 s, re-encoded smaller
    videos["bikes_excerpt"] = edit_video(
        src / "bikes.mp4",
        root.parent / "queries" / "bikes_4-8.mp4",
        lambda im: im.resize((320, 136)),
        start=4.0,
        end=8.0,
        fps=12.5,
    )
    return Corpus(root, originals, copies, distractors, videos)


@pytest.fixture(scope="session", autouse=True)
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One cache of exported model graphs for the whole run, for libraries made here and by CLI subprocesses (each
    library would otherwise export the default model again, ~10 s)."""
    path = tmp_path_factory.mktemp("models")
    with pytest.MonkeyPatch.context() as mp_:
        mp_.setenv("LOOKALIKE_MODEL_CACHE", str(path))
        yield path


@pytest.fixture(scope="session")
def settings_factory(tmp_path_factory: pytest.TempPathFactory, model_cache: Path):
    def make(**changes) -> Settings:
        home = tmp_path_factory.mktemp("home")
        changes.setdefault("model_cache", model_cache)
        return Settings(home=home, db_url=fresh_db_url(home), workers=1, batch_size=16, **changes)

    return make


@pytest.fixture(scope="session")
def indexed(corpus: Corpus, settings_factory) -> tuple[Settings, object]:
    """The whole corpus indexed once with the real default model; returns (settings, first report)."""
    settings = settings_factory()
    with Workspace(settings) as ws:
        report = ws.index([corpus.root])
    return settings, report


def tree(root: Path) -> dict[str, tuple[str, int]]:
    """Every file under ``root``: its SHA-256 and modification time (ns), by relative path."""
    out = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        out[str(path.relative_to(root))] = (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
    return out


@pytest.fixture
def library(settings_factory, tmp_path: Path, images: dict) -> tuple[Settings, Path]:
    """For the clean-up tests: a photo with an identical copy, a resized copy and a crop; a photo with a re-encoded
    copy; a distinct photo; indexed."""
    media = tmp_path / "media"
    media.mkdir()
    coffee, rocket = images["coffee"].convert("RGB"), images["rocket"].convert("RGB")
    coffee.save(media / "coffee.png")
    shutil.copy2(media / "coffee.png", media / "coffee_copy.png")
    coffee.resize((300, 200), Image.Resampling.LANCZOS).save(media / "coffee_small.jpg", quality=88)
    coffee.crop((100, 50, 400, 300)).save(media / "coffee_crop.png")
    rocket.save(media / "rocket.png")
    rocket.save(media / "rocket.jpg", quality=80)
    images["astronaut"].convert("RGB").save(media / "astronaut.png")
    settings = settings_factory()
    with Workspace(settings) as ws:
        ws.index([media])
    return settings, media
