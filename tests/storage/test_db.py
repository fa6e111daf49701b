"""Alembic migrations: up, down, up again; the models and the migrations agree; old schemas are caught."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from lookalike.errors import SchemaOutOfDateError
from lookalike.storage.catalog import Catalog
from lookalike.storage.db import current_revision, downgrade, ensure_schema, head_revision, make_engine, upgrade
from lookalike.storage.orm import Base


@pytest.fixture
def engine(db_url):
    eng = make_engine(db_url)
    yield eng
    eng.dispose()


def test_upgrade_downgrade_upgrade(engine):
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    assert {"collections", "media", "vectors"} <= set(inspect(engine).get_table_names())
    downgrade(engine, "base")
    assert current_revision(engine) is None
    assert not {"collections", "media", "vectors"} & set(inspect(engine).get_table_names())
    upgrade(engine)
    assert current_revision(engine) == head_revision()


def test_models_match_migrations(engine):
    upgrade(engine)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_sqlite_runs_in_wal_mode_with_foreign_keys(engine):
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite pragmas")
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_out_of_date_schema_says_how_to_upgrade(engine):
    with pytest.raises(SchemaOutOfDateError, match="lookalike db upgrade"):
        ensure_schema(engine, auto_upgrade=False)
    ensure_schema(engine)
    assert current_revision(engine) == head_revision()


def test_newer_schema_is_refused(engine):
    upgrade(engine)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = 'ffff_future'"))
    with pytest.raises(SchemaOutOfDateError, match="newer version"):
        ensure_schema(engine)


def test_schema_head_constant_is_alembics_head():
    from lookalike.storage.db import SCHEMA_HEAD

    assert head_revision() == SCHEMA_HEAD


def test_0002_keys_existing_paths_by_their_hash(engine):
    """A catalog written at 0001 upgrades in place: every row gets its path's SHA-256 as the unique key (the path
    itself is no longer indexed: PostgreSQL refuses b-tree entries past ~2.7 kB), and every vector is kept."""
    import hashlib

    upgrade(engine, "0001")
    paths = ["/photos/a.jpg", "/photos/ünïcode ☃.png", "bytes:/photos/%FF.jpg"]
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO collections (id, name, model, weights_tag, dim, metric, preprocessing, pooling, "
                "generation, created_at) VALUES (1, 'c', 'm', 'w', 4, 'cosine', '{}', '{}', 0, CURRENT_TIMESTAMP)"
            )
        )
        for n, p in enumerate(paths, 1):
            conn.execute(
                text(
                    "INSERT INTO media (id, collection_id, path, kind, size, mtime_ns, status, indexed_at) "
                    "VALUES (:id, 1, :path, 'image', 1, 1, 'ok', CURRENT_TIMESTAMP)"
                ),
                {"id": n, "path": p},
            )
            conn.execute(
                text(
                    "INSERT INTO vectors (id, collection_id, media_id, level, embedding) "
                    "VALUES (:id, 1, :id, 'image', :blob)"
                ),
                {"id": n, "blob": bytes(16)},
            )
    upgrade(engine)
    with engine.connect() as conn:  # SQLite rebuilds ``media``: its vectors must survive (no cascade on the copy)
        assert conn.execute(text("SELECT media_id FROM vectors ORDER BY id")).scalars().all() == [1, 2, 3]
        if engine.dialect.name == "sqlite":
            assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT path, path_key, device, inode FROM media ORDER BY id")).all()
    assert [tuple(r) for r in rows] == [(p, hashlib.sha256(p.encode()).hexdigest(), None, None) for p in paths]
    with pytest.raises(Exception, match=r"(?i)unique"), engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO media (collection_id, path, path_key, kind, size, mtime_ns, status, indexed_at) "
                "VALUES (1, 'x', :key, 'image', 1, 1, 'ok', CURRENT_TIMESTAMP)"
            ),
            {"key": rows[0].path_key},
        )


def test_0004_adds_empty_photo_metadata_and_keeps_every_row(engine):
    """A catalog written at 0003 upgrades in place: its rows and vectors stay, the photo metadata columns are empty
    and meta_version is NULL (the next index run reads them); down again drops just those columns."""
    upgrade(engine, "0003")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO collections (id, name, model, weights_tag, dim, metric, preprocessing, pooling, "
                "generation, created_at) VALUES (1, 'c', 'm', 'w', 4, 'cosine', '{}', '{}', 0, CURRENT_TIMESTAMP)"
            )
        )
        conn.execute(
            text(
                "INSERT INTO media (id, collection_id, path, path_key, kind, size, mtime_ns, status, indexed_at) "
                "VALUES (1, 1, '/p/a.jpg', 'k1', 'image', 10, 20, 'ok', CURRENT_TIMESTAMP)"
            )
        )
        conn.execute(
            text("INSERT INTO vectors (id, collection_id, media_id, level, embedding) VALUES (1, 1, 1, 'image', :b)"),
            {"b": bytes(range(16))},
        )
    upgrade(engine)
    with engine.connect() as conn:
        row = conn.execute(text("SELECT path, size, taken_at, camera, exif_fields, meta_version FROM media")).one()
        assert tuple(row) == ("/p/a.jpg", 10, None, None, None, None)
        assert conn.execute(text("SELECT media_id, embedding FROM vectors")).one() == (1, bytes(range(16)))
    with engine.begin() as conn:
        conn.execute(
            text("UPDATE media SET taken_at = :t, camera = 'Canon EOS 5D', exif_fields = 12, meta_version = 1"),
            {"t": datetime(2019, 5, 6, 7, 8, 9)},
        )
    with engine.connect() as conn:
        assert conn.execute(text("SELECT camera, exif_fields FROM media")).one() == ("Canon EOS 5D", 12)
    downgrade(engine, "0003")
    assert "taken_at" not in {c["name"] for c in inspect(engine).get_columns("media")}
    with engine.connect() as conn:
        assert conn.execute(text("SELECT media_id, embedding FROM vectors")).one() == (1, bytes(range(16)))
        assert conn.execute(text("SELECT path, size FROM media")).one() == ("/p/a.jpg", 10)


def test_0005_adds_runtime_and_catalog_notes_each_runtime_once(engine):
    """A collection written at 0004 is recorded as torch's (torch made its vectors), as is a row left NULL; runtimes
    noted later are listed once each after it, with the loosest tolerance; a new collection lists none; down again
    drops just the column."""
    upgrade(engine, "0004")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO collections (name, model, weights_tag, dim, metric, preprocessing, pooling, "
                "generation, created_at) VALUES ('c', 'm', 'w', 4, 'cosine', '{}', '{}', 0, CURRENT_TIMESTAMP)"
            )
        )  # no explicit id: PostgreSQL's sequence must hand out the next one to create_collection below
        cid = conn.execute(text("SELECT id FROM collections WHERE name = 'c'")).scalar_one()
    upgrade(engine)
    with engine.connect() as conn:
        stored = conn.execute(text("SELECT runtime FROM collections")).scalar_one()  # SQLite: text, PostgreSQL: JSON
    assert (json.loads(stored) if isinstance(stored, str) else stored) == {"runtimes": ["torch"], "tolerance": 1.0}
    catalog = Catalog(engine)
    assert catalog.collection("c").runtime == {"runtimes": ["torch"], "tolerance": 1.0}
    catalog.note_runtime(cid, "openvino-f32", 0.99999)
    catalog.note_runtime(cid, "torch", 1.0)
    assert catalog.collection("c").runtime == {"runtimes": ["torch", "openvino-f32"], "tolerance": 0.99999}
    with engine.begin() as conn:
        conn.execute(text("UPDATE collections SET runtime = NULL"))
    catalog.note_runtime(cid, "onnxruntime-f32", 0.99999)
    assert catalog.collection("c").runtime == {"runtimes": ["torch", "onnxruntime-f32"], "tolerance": 0.99999}
    assert catalog.create_collection("new", "m", "w", 4, {}, {}).runtime == {"runtimes": [], "tolerance": 1.0}
    downgrade(engine, "0004")
    assert "runtime" not in {c["name"] for c in inspect(engine).get_columns("collections")}
    with engine.connect() as conn:
        assert conn.execute(text("SELECT name, dim FROM collections ORDER BY id")).all() == [("c", 4), ("new", 4)]
