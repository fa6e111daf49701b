"""Photo metadata (issue 11 item 1): the date taken, camera and tag count read from real JPEGs at index time and
stored exactly; odd EXIF is None, never a failed file; a library older than the columns fills them on its next run
without re-embedding a thing."""

from __future__ import annotations

import io
import shutil
import warnings
from datetime import datetime
from pathlib import Path

import pytest
from PIL import ExifTags, Image
from sqlalchemy import text

from lookalike.indexer.exif import META_VERSION, camera_name, parse_date, photo_metadata
from lookalike.storage.db import current_revision, downgrade, make_engine
from lookalike.storage.records import MediaRecord, PhotoMetadata
from lookalike.workspace import Workspace


def exif_of(tags: dict[int, object], taken: object = None) -> Image.Exif:
    """An EXIF block with IFD0 ``tags`` and, when given, DateTimeOriginal in the Exif IFD."""
    exif = Image.Exif()
    for tag, value in tags.items():
        exif[tag] = value
    if taken is not None:
        exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] = taken
    return exif


def _records(ws: Workspace) -> dict[str, MediaRecord]:
    store = ws.store()
    ids = [m.id for m in store.catalog.known_media(store.info.id).values()]
    return {Path(r.path).name: r for r in ws.files(ids).values()}


def _vectors(ws: Workspace) -> list[tuple[int, int, str, bytes]]:
    with ws.store().catalog.engine.connect() as conn:
        rows = conn.execute(text("SELECT id, media_id, level, embedding FROM vectors ORDER BY id")).all()
    return [(r.id, r.media_id, r.level, bytes(r.embedding)) for r in rows]


@pytest.fixture
def photos(tmp_path: Path, images: dict) -> Path:
    """Real photos as JPEGs: one with a full EXIF block, one whose EXIF is garbage, one without, a byte copy."""
    folder = tmp_path / "photos"
    folder.mkdir()
    canon = {
        ExifTags.Base.Make: "Canon",
        ExifTags.Base.Model: "Canon EOS 5D Mark II",
        ExifTags.Base.DateTime: "2020:01:02 03:04:05",
        ExifTags.Base.Software: "Lightroom",
    }
    images["coffee"].convert("RGB").save(folder / "coffee.jpg", quality=90, exif=exif_of(canon, "2015:06:07 08:09:10"))
    garbage = {
        ExifTags.Base.Make: b"\xff\xfe\x80\x81",  # bytes in no known encoding
        ExifTags.Base.Model: "X" * 5000,  # a huge name: cut
        ExifTags.Base.DateTime: "0000:00:00 00:00:00",
    }
    images["rocket"].convert("RGB").save(
        folder / "rocket.jpg", quality=90, exif=exif_of(garbage, "2019:13:45 99:00:00")
    )
    images["astronaut"].convert("RGB").save(folder / "astronaut.jpg", quality=90)
    shutil.copy(folder / "coffee.jpg", folder / "coffee_copy.jpg")
    return folder


def test_exif_is_read_at_index_time_and_stored_exactly(settings_factory, photos):
    with Workspace(settings_factory()) as ws:
        report = ws.index([photos])
        assert (report.new, report.copied, report.failed, report.metadata) == (4, 1, [], 0)
        got = {n: (r.taken_at, r.camera, r.exif_fields, r.meta_version) for n, r in _records(ws).items()}
    assert got == {
        "coffee.jpg": (datetime(2015, 6, 7, 8, 9, 10), "Canon EOS 5D Mark II", 5, META_VERSION),
        "coffee_copy.jpg": (datetime(2015, 6, 7, 8, 9, 10), "Canon EOS 5D Mark II", 5, META_VERSION),  # its source's
        "rocket.jpg": (None, "X" * 100, 4, META_VERSION),  # unknown maker left out, the model cut to 100
        "astronaut.jpg": (None, None, 0, META_VERSION),
    }


def test_a_library_older_than_the_columns_fills_them_without_reembedding(settings_factory, photos, monkeypatch):
    """Indexed, then taken back to migration 0003 (the columns dropped, as an older lookalike's library is): the
    next open migrates it, and the next index run reads every file's header, embeds nothing, changes no vector."""
    settings = settings_factory()
    with Workspace(settings) as ws:
        ws.index([photos])
        fresh = {n: (r.taken_at, r.camera, r.exif_fields) for n, r in _records(ws).items()}
        vectors = _vectors(ws)
    engine = make_engine(settings.database_url)
    downgrade(engine, "0003")
    assert current_revision(engine) == "0003"
    engine.dispose()

    def no_embedding(*args, **kwargs):
        raise AssertionError("an unchanged file was embedded again")

    monkeypatch.setattr("lookalike.indexer.embed.embed_jobs", no_embedding)
    with Workspace(settings) as ws:
        assert {(r.taken_at, r.camera, r.exif_fields, r.meta_version) for r in _records(ws).values()} == {
            (None, None, None, None)
        }
        report = ws.index([photos])
        assert (report.new, report.updated, report.unchanged, report.metadata) == (0, 0, 4, 4)
        assert {n: (r.taken_at, r.camera, r.exif_fields) for n, r in _records(ws).items()} == fresh
        assert {r.meta_version for r in _records(ws).values()} == {META_VERSION}
        assert _vectors(ws) == vectors
        assert ws.index([photos]).metadata == 0  # read once
        assert ws.store().check()["ok"]


def test_a_file_whose_header_cannot_be_read_now_is_tried_again(settings_factory, photos, monkeypatch):
    """The fill pass marks only what it read: a file it cannot open this time (simulated) is tried again."""
    from lookalike.indexer import exif

    real = exif._read_photo_metadata
    monkeypatch.setattr(exif, "_read_photo_metadata", lambda p: None if p.name == "astronaut.jpg" else real(p))
    with Workspace(settings_factory()) as ws:
        ws.index([photos])
        with ws.store().catalog.engine.begin() as conn:
            conn.execute(
                text("UPDATE media SET taken_at = NULL, camera = NULL, exif_fields = NULL, meta_version = NULL")
            )
        assert ws.index([photos]).metadata == 3
        assert _records(ws)["astronaut.jpg"].meta_version == 0
        monkeypatch.setattr(exif, "_read_photo_metadata", real)
        assert ws.index([photos]).metadata == 1
        assert _records(ws)["astronaut.jpg"].exif_fields == 0


def test_a_header_that_kills_the_run_is_not_read_again_by_every_run(settings_factory, photos, monkeypatch):
    """A batch is marked begun before it is read: when reading it stops the process (simulated by an exception
    that ends the run), later runs go on without it instead of dying on it each time."""
    from lookalike.indexer import exif

    with Workspace(settings_factory()) as ws:
        ws.index([photos])
        with ws.store().catalog.engine.begin() as conn:
            conn.execute(text("UPDATE media SET meta_version = NULL"))

        def dies(path):
            raise SystemExit("the header parser took the process down")

        monkeypatch.setattr(exif, "_read_photo_metadata", dies)
        with pytest.raises(SystemExit):
            ws.index([photos])
        monkeypatch.undo()
        report = ws.index([photos])
        assert (report.metadata, report.new, report.updated, report.failed) == (0, 0, 0, [])
        assert {r.meta_version for r in _records(ws).values()} == {-META_VERSION}
        assert ws.store().check()["ok"]


def test_dates_that_make_no_sense_are_none():
    assert parse_date("2015:06:07 08:09:10") == datetime(2015, 6, 7, 8, 9, 10)
    assert parse_date("2015-06-07T08:09:10\x00") == datetime(2015, 6, 7, 8, 9, 10)
    for bad in ("0000:00:00 00:00:00", "2019:13:01 00:00:00", "2019:02:30 00:00:00", "1600:01:01 00:00:00", "", None):
        assert parse_date(bad) is None, bad
    assert parse_date(b"2015:06:07 08:09:10") == datetime(2015, 6, 7, 8, 9, 10)
    assert parse_date(20150607) is None


def test_camera_names_are_short_printable_text():
    assert camera_name("Canon", "Canon EOS 5D") == "Canon EOS 5D"
    assert camera_name("NIKON CORPORATION", "NIKON D750") == "NIKON D750"
    assert camera_name("Apple", "iPhone 12") == "Apple iPhone 12"
    assert camera_name("  FUJIFILM\x00junk", "X100V\n") == "FUJIFILM X100V"
    assert camera_name("Ünïcam".encode().decode("latin-1"), None) == "Ünïcam"  # UTF-8 behind Pillow's Latin-1
    assert camera_name("\xff\xfe", "\x01\x02") is None
    assert camera_name(7, (1, 2)) is None


def test_a_broken_exif_block_is_empty_metadata(images):
    """An EXIF block that is not TIFF at all, or whose Exif IFD points past its end."""
    pixels = images["coffee"].convert("RGB")
    pointer_past_end = (
        b"Exif\x00\x00II*\x00\x08\x00\x00\x00\x02\x00\x69\x87\x04\x00\x01\x00\x00\x00\xff\xff\xff\x7f"
        b"\x0f\x01\x02\x00\x05\x00\x00\x00\x26\x00\x00\x00\x00\x00\x00\x00Nikon"
    )
    for raw, expected in (
        (b"Exif\x00\x00not a tiff header at all", PhotoMetadata(None, None, 0)),
        (pointer_past_end, PhotoMetadata(None, "Nikon", 1)),
    ):
        buf = io.BytesIO()
        pixels.save(buf, "JPEG", exif=raw)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # Pillow's "Corrupt EXIF data"
            assert photo_metadata(Image.open(buf)) == expected
