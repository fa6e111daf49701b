"""Crash safety of `resolve --apply`: 30 SIGKILLs at random points while it trashes 250 of 500 files.

After every kill each file is in place, or in the trash with its journal row; resuming (the next `resolve
--apply` finishes the run it finds unfinished) ends with the same tree as an uninterrupted run on a twin library.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
from sqlalchemy import create_engine, select

from benchmarks.corpus import package_images
from lookalike.storage.orm import JournalEntry, Run
from tests.conftest import fresh_db_url

KILLS = 30
TILES = 250  # each with a byte-identical copy: 500 files, 250 to trash
SEED = 20261125


def _make_corpus(root: Path) -> None:
    """250 distinct tiles cut on a grid from the package photos (no two overlap), each also copied elsewhere."""
    rng = np.random.default_rng(SEED)
    tiles = []
    for im in package_images().values():
        for y in range(0, im.height - 96, 96):
            for x in range(0, im.width - 96, 96):
                tiles.append(im.crop((x, y, x + 96, y + 96)).convert("RGB"))
    order = rng.permutation(len(tiles))[:TILES]
    for n, i in enumerate(order.tolist()):
        a = root / "originals" / f"set{n // 50}" / f"tile{n:03d}.png"
        b = root / "copies" / f"set{n // 50}" / f"tile{n:03d}_copy.png"
        a.parent.mkdir(parents=True, exist_ok=True)
        b.parent.mkdir(parents=True, exist_ok=True)
        tiles[i].save(a)
        shutil.copy2(a, b)


def _cli(home: Path, db: str, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "lookalike.cli.main", "--home", str(home), "--db", db, *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _run(home: Path, db: str, *args: str) -> None:
    proc = _cli(home, db, *args)
    assert proc.wait(timeout=900) == 0, proc.stderr.read().decode() if proc.stderr else ""


def _tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _trashed(home: Path, media: Path) -> list[str]:
    """The trashed files as paths relative to ``media`` (the trash holds ``<run>/<absolute path>``)."""
    out = []
    for p in (home / "trash").rglob("*.png"):
        run_dir = p.relative_to(home / "trash").parts[0]
        original = Path("/") / p.relative_to(home / "trash" / run_dir)
        out.append(str(original.relative_to(media)))
    return sorted(out)


def _in_trash(home: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(home / "trash"))


def _kill_during_moves(proc: subprocess.Popen[bytes], home: Path, left: int, rng) -> bool:
    """SIGKILL ``proc`` the moment a few more files (1 to 8, fewer than are left) have reached the trash, or return
    False when it finished first."""
    target = _in_trash(home) + int(rng.integers(1, max(2, min(9, left))))
    deadline = time.monotonic() + 900  # as long as a whole run may take (`_run`): planning alone takes minutes
    while proc.poll() is None and time.monotonic() < deadline:
        if _in_trash(home) >= target:
            os.kill(proc.pid, signal.SIGKILL)
            return True
        time.sleep(0.001)
    return False


def _check(media: Path, files: dict[str, str], engine) -> str:
    """Every file is in place, or in the trash with its journal row (never both, never neither, never a partial
    copy); returns the state of the latest run."""
    with engine.connect() as c:
        rows = {r.path: r for r in c.execute(select(JournalEntry.path, JournalEntry.trash_path, JournalEntry.state))}
        state = c.scalar(select(Run.state).order_by(Run.id.desc()).limit(1)) or "none"
    for rel, sha in files.items():
        path = media / rel
        row = rows.get(str(path))
        trashed = row is not None and row.trash_path is not None and os.path.lexists(row.trash_path)
        assert os.path.lexists(path) != trashed, f"{rel}: in place {os.path.lexists(path)}, in the trash {trashed}"
        where = path if not trashed else Path(row.trash_path)
        assert hashlib.sha256(where.read_bytes()).hexdigest() == sha, f"{rel} changed"
        if trashed:
            assert row.state in ("planned", "done"), (rel, row.state)
    return state


def test_thirty_sigkills_during_resolve_apply_leave_every_file_in_place_or_in_the_trash(tmp_path: Path) -> None:
    twins = {}
    for name in ("clean", "killed"):
        media, home = tmp_path / name / "media", tmp_path / name / "home"
        _make_corpus(media)
        home.mkdir()
        db = fresh_db_url(home)
        _run(home, db, "index", str(media))
        twins[name] = (media, home, db)
    files = _tree(twins["killed"][0])
    assert len(files) == 2 * TILES

    media, home, db = twins["clean"]
    started = time.monotonic()
    _run(home, db, "resolve", "--apply")
    clean_seconds = time.monotonic() - started
    expected = (_tree(media), _trashed(home, media))
    # every copy goes (a few tiles of plain texture are copies of each other too)
    assert len(expected[1]) >= TILES and len(expected[0]) + len(expected[1]) == 2 * TILES

    media, home, db = twins["killed"]
    engine = create_engine(db)
    rng = np.random.default_rng(SEED)
    phases: Counter[str] = Counter()
    kills = 0
    while kills < KILLS:
        proc = _cli(home, db, "resolve", "--apply")
        left = len(expected[1]) - _in_trash(home)
        assert left > 1, f"the moves ran out after {kills} kills: {dict(phases)}"
        if rng.random() < 0.2 or kills < 2:  # anywhere: start-up, recovery, planning, journaling
            # before any move: start-up, planning, journaling; once a run is journaled, its remaining moves take a
            # fraction of a second: start-up (the moves are the targeted kills' part)
            time.sleep(float(rng.uniform(0.05, 0.5 * clean_seconds if left == len(expected[1]) else 1.0)))
            landed = proc.poll() is None
            if landed:
                os.kill(proc.pid, signal.SIGKILL)
        else:  # while it moves files, one or more of them done
            landed = _kill_during_moves(proc, home, left, rng)
        proc.wait()
        if not landed:
            assert proc.returncode == 0, proc.stderr.read().decode() if proc.stderr else ""
            phases["finished before the kill"] += 1
            continue
        kills += 1
        phases[f"run {_check(media, files, engine)} after the kill"] += 1
    _run(home, db, "resolve", "--apply")  # finishes whatever the last kill left
    assert _check(media, files, engine) == "done"
    assert (_tree(media), _trashed(home, media)) == expected
    assert phases["run none after the kill"] >= 1, phases  # before the run was journaled (planning, start-up)
    assert phases["run applying after the kill"] >= 20, phases  # while it moved files, or was about to resume
    print(f"{kills} kills: {dict(phases)}")
