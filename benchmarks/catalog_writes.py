"""Catalog writes: seconds to store N indexed files (one image vector each) in bulk, as the product does, and row by
row.

Each measurement makes a fresh library (``storage.library.Library``: SQLite in WAL mode, the schema by migration,
or ``--db`` for another database) and writes the same N files in the batches the indexer writes
(``pipeline.WRITE_EVERY_FILES``):

  * bulk (product)   ``Catalog.write``: per batch one ``INSERT ... RETURNING`` per table (and the look-up of paths
                     already stored, and the generation bump)
  * row by row       the same rows in one transaction per batch, one ``INSERT ... RETURNING`` per file and one
                     ``INSERT`` per vector, through SQLAlchemy Core (not product code: the alternative)
  * ORM row by row   the same with ORM objects, ``session.add`` and a flush per row (not product code either)

The three run in turn ``--rounds`` times; the table gives each one's median and best.

    python -m benchmarks.catalog_writes [--files 500] [--rounds 5] [--db URL]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.machine import describe, load_average

DIM = 1280


def batches(files: int, size: int) -> list[list[tuple[Any, list[Any]]]]:
    """``files`` image records with one random unit vector each, cut into batches of ``size``."""
    from lookalike.storage.records import MediaRecord, VectorRecord

    rng = np.random.default_rng(0)
    items = []
    for i in range(files):
        v = rng.normal(size=DIM).astype(np.float32)
        record = MediaRecord(
            path=f"/photos/{i // 100:03d}/IMG_{i:05d}.jpg",
            kind="image",
            size=int(rng.integers(50_000, 5_000_000)),
            mtime_ns=1_700_000_000_000_000_000 + i,
            status="ok",
            sha256=f"{i:064x}",
            width=4032,
            height=3024,
        )
        items.append((record, [VectorRecord("image", v / np.linalg.norm(v))]))
    return [items[i : i + size] for i in range(0, files, size)]


def write_rows(engine: Any, collection_id: int, batch: list[tuple[Any, list[Any]]], orm: bool = False) -> None:
    """One batch, one statement per row: Core ``INSERT``s, or (``orm``) ORM objects flushed file by file."""
    from sqlalchemy import insert
    from sqlalchemy.orm import Session

    from lookalike.storage.orm import Media, Vector, hash_path
    from lookalike.storage.records import MediaRecord

    names = [f.name for f in fields(MediaRecord) if f.name != "path"]
    now = datetime.now(UTC)
    with Session(engine) as s, s.begin():
        for rec, vectors in batch:
            values = {k: getattr(rec, k) for k in names}
            row = {"collection_id": collection_id, "path": rec.path, "path_key": hash_path(rec.path), "indexed_at": now}
            if orm:
                media = Media(**row, **values)
                s.add(media)
                s.flush()
                media_id = media.id
            else:
                media_id = s.scalar(insert(Media).returning(Media.id).values(**row, **values))
            for v in vectors:
                columns = {
                    "collection_id": collection_id,
                    "media_id": media_id,
                    "level": v.level,
                    "start_s": v.start,
                    "end_s": v.end,
                    "embedding": np.asarray(v.embedding, dtype="<f4").tobytes(),
                }
                if orm:
                    s.add(Vector(**columns))
                    s.flush()
                else:
                    s.execute(insert(Vector).values(**columns))


def measure(way: str, work: Path, db: str | None, items: list[list[tuple[Any, list[Any]]]]) -> float:
    """Seconds to write every batch into a fresh library: ``bulk``, ``rows`` or ``orm``."""
    from lookalike.storage.library import Library

    home = Path(tempfile.mkdtemp(dir=work))
    with Library(home, db or f"sqlite:///{home / 'lookalike.db'}") as library:
        name = f"bench_{home.name}"
        info = library.create_collection(name, "efficientnet_lite0", "bench", DIM, {}, {}).info
        start = time.perf_counter()
        for batch in items:
            if way == "bulk":
                library.catalog.write(info.id, DIM, batch)
            else:
                write_rows(library.engine, info.id, batch, orm=way == "orm")
        took = time.perf_counter() - start
        assert library.catalog.count_vectors(info.id, ("image",)) == sum(len(b) for b in items)
    return took


def main() -> None:
    """Write the files both ways in turn and print the table."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=500)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--db", default=None, help="a SQLAlchemy URL of an empty database (default: a fresh SQLite)")
    args = ap.parse_args()
    print(describe(), flush=True)
    from lookalike.indexer.pipeline import WRITE_EVERY_FILES

    items = batches(args.files, WRITE_EVERY_FILES)
    seconds: dict[str, list[float]] = {"bulk": [], "rows": [], "orm": []}
    with tempfile.TemporaryDirectory(prefix="lookalike-writes-") as tmp:
        for _ in range(args.rounds):
            for way in seconds:
                seconds[way].append(measure(way, Path(tmp), args.db, items))
    where = args.db.split(":", 1)[0] if args.db else "SQLite (WAL)"
    print(
        f"{args.files} files, one {DIM}-d image vector each, in {len(items)} batches of up to {WRITE_EVERY_FILES}; "
        f"{where}; {args.rounds} rounds\n"
    )
    print(f"| catalog write of {args.files} files | seconds, median | best | rounds |\n|---|---|---|---|")
    labels = {
        "bulk": "bulk, one `INSERT ... RETURNING` per table per batch (`Catalog.write`)",
        "rows": "row by row, one Core `INSERT` per file and per vector",
        "orm": "row by row, ORM objects flushed one by one",
    }
    for way, s in seconds.items():
        print(f"| {labels[way]} | {statistics.median(s):.3f} | {min(s):.3f} | {', '.join(f'{x:.3f}' for x in s)} |")
    print(f"\n{load_average()} at end")


if __name__ == "__main__":
    main()
