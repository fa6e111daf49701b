"""One file is one file (issue 12 items 1, 2 and 8): canonical paths, hardlinks, missing and moved files, long
paths; with the real default model on real pictures."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

from sqlalchemy import text

from lookalike.search.groups import Relation
from lookalike.workspace import Workspace

NAMES = ("chelsea", "coffee", "astronaut", "rocket")


def _folder(root: Path, images: dict) -> Path:
    folder = root / "photos"
    folder.mkdir(parents=True)
    for name in NAMES:
        images[name].convert("RGB").save(folder / f"{name}.png")
    return folder


def _paths(ws: Workspace) -> list[str]:
    store = ws.store()
    return sorted(store.catalog.known_media(store.info.id))


def _statuses(ws: Workspace) -> dict[str, str]:
    store = ws.store()
    return {Path(p).name: m.status for p, m in store.catalog.known_media(store.info.id).items()}


def test_one_file_reached_by_several_paths_is_catalogued_once(settings_factory, tmp_path, images):
    """`index d/../d`, then `d`, then a symlinked parent folder: one row per file, at its canonical path, and no
    file is reported as its own duplicate."""
    folder = _folder(tmp_path / "real", images)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    with Workspace(settings_factory()) as ws:
        first = ws.index([folder / ".." / "photos"])
        assert first.new == len(NAMES)
        again = ws.index([folder])
        assert (again.new, again.unchanged) == (0, len(NAMES))
        through_link = ws.index([tmp_path / "link" / "photos"])
        assert (through_link.new, through_link.unchanged) == (0, len(NAMES))
        assert _paths(ws) == sorted(str(folder / f"{n}.png") for n in NAMES)
        assert ws.duplicates() == []


def test_rows_an_earlier_version_stored_under_an_alias_are_dropped(settings_factory, tmp_path, images):
    """A catalog written before paths were canonical holds `d/../d/x.png`: the next run catalogues `d/x.png` (its
    vectors copied) and drops the alias row, so the file is not its own duplicate."""
    folder = _folder(tmp_path, images)
    settings = settings_factory()
    with Workspace(settings) as ws:
        ws.index([folder])
        alias = str(folder / ".." / "photos" / "coffee.png")
        with ws.store().catalog.engine.begin() as conn:  # what 0.1 stored for `index photos/../photos`
            conn.execute(
                text("UPDATE media SET path = :alias, path_key = :key WHERE path = :path"),
                {"alias": alias, "key": hashlib.sha256(alias.encode()).hexdigest(), "path": str(folder / "coffee.png")},
            )
        assert str(folder / "coffee.png") not in _paths(ws)
        report = ws.index([folder])
        assert (report.new, report.copied, report.missing) == (1, 1, 0), report
        assert _paths(ws) == sorted(str(folder / f"{n}.png") for n in NAMES)
        assert ws.duplicates() == []


def test_hardlinks_are_one_file_shown_as_such(settings_factory, tmp_path, images):
    """Two names of one file: both catalogued, with one device and inode, grouped, the second marked `hardlink`
    (never an `identical` copy a clean-up could remove to free space)."""
    folder = _folder(tmp_path, images)
    os.link(folder / "coffee.png", folder / "coffee_link.png")
    shutil.copy(folder / "rocket.png", folder / "rocket_copy.png")
    with Workspace(settings_factory()) as ws:
        ws.index([folder])
        store = ws.store()
        known = store.catalog.known_media(store.info.id)
        a, b = known[str(folder / "coffee.png")], known[str(folder / "coffee_link.png")]
        st = os.stat(folder / "coffee.png")
        assert (a.device, a.inode) == (b.device, b.inode) == (st.st_dev, st.st_ino)
        groups = {frozenset(Path(it.path).name for it in g.items): g for g in ws.duplicates()}
    assert set(groups) == {frozenset({"coffee.png", "coffee_link.png"}), frozenset({"rocket.png", "rocket_copy.png"})}
    linked = groups[frozenset({"coffee.png", "coffee_link.png"})]
    assert [it.relation for it in linked.items] == [Relation.REPRESENTATIVE, Relation.HARDLINK]
    copied = groups[frozenset({"rocket.png", "rocket_copy.png"})]
    assert [it.relation for it in copied.items] == [Relation.REPRESENTATIVE, Relation.IDENTICAL]


def test_deleted_and_renamed_files_are_missing_until_found_again(settings_factory, tmp_path, images):
    """`rm` and `mv` between runs: the run says so, the deleted file leaves search and dupes at once (its vectors
    kept), the renamed one is found again by its content at its new path, a restored file comes back, and only
    `--prune` forgets."""
    folder = _folder(tmp_path, images)
    shutil.copy(folder / "coffee.png", folder / "coffee_copy.png")
    keep = tmp_path / "coffee.keep"
    shutil.copy2(folder / "coffee.png", keep)
    with Workspace(settings_factory()) as ws:
        ws.index([folder])
        assert len(ws.duplicates()) == 1
        (folder / "coffee.png").unlink()
        (folder / "rocket.png").rename(folder / "rocket_renamed.png")
        report = ws.index([folder])
        assert (report.missing, report.moved, report.new, report.copied, report.images) == (1, 1, 1, 1, 0)
        assert _statuses(ws) == {
            "chelsea.png": "ok",
            "coffee.png": "missing",
            "coffee_copy.png": "ok",
            "astronaut.png": "ok",
            "rocket_renamed.png": "ok",
        }
        hits = ws.search_files([keep], k=10)[0].hits
        assert [Path(h.path).name for h in hits][:1] == ["coffee_copy.png"]
        assert all(Path(h.path).name != "coffee.png" for h in hits)
        assert ws.duplicates() == []
        assert ws.store().check()["ok"]
        assert ws.info()["collections"][0]["images_missing"] == 1
        quiet = ws.index([folder])  # still gone: said again, nothing changes
        assert (quiet.missing, quiet.moved, quiet.new) == (1, 0, 0)

        shutil.copy(keep, folder / "coffee.png")  # back (a new mtime, the same bytes)
        back = ws.index([folder])
        assert (back.restored, back.missing, back.new, back.images) == (1, 0, 0, 0)
        assert _statuses(ws)["coffee.png"] == "ok"
        assert [Path(h.path).name for h in ws.search_files([keep], k=2)[0].hits] == ["coffee.png", "coffee_copy.png"]
        assert len(ws.duplicates()) == 1 and ws.store().check()["ok"]

        (folder / "coffee.png").unlink()
        ws.index([folder])
        pruned = ws.index([folder], prune=True)
        assert (pruned.pruned, pruned.missing) == (1, 0)
        assert "coffee.png" not in _statuses(ws)


def test_a_folder_the_walk_cannot_read_is_not_called_missing(settings_factory, tmp_path, images, monkeypatch):
    """A folder unreadable this time (permissions; simulated, as tests may run as root) is reported skipped, and
    the files indexed under it stay as they are."""
    folder = _folder(tmp_path, images)
    inner = folder / "inner"
    inner.mkdir()
    shutil.copy(folder / "coffee.png", inner / "coffee2.png")
    with Workspace(settings_factory()) as ws:
        ws.index([folder])
        real_scandir = os.scandir

        def scandir(path):
            if Path(path) == inner:
                raise PermissionError(13, "Permission denied", str(path))
            return real_scandir(path)

        monkeypatch.setattr("lookalike.indexer.discover.os.scandir", scandir)
        report = ws.index([folder])
        assert [(s.path, s.reason) for s in report.skipped] == [(inner, "permission_denied")]
        assert report.missing == 0 and _statuses(ws)["coffee2.png"] == "ok"


def test_a_path_longer_than_a_btree_entry_is_indexed(settings_factory, tmp_path, images):
    """A legal 2,854-byte path: PostgreSQL's unique b-tree refused it (the whole batch rolled back, on every run);
    paths are keyed by their hash now."""

    def part(n: int, size: int) -> str:  # random-looking: PostgreSQL compresses a repetitive key below the limit
        return "".join(hashlib.sha256(f"{n}.{i}".encode()).hexdigest() for i in range(4))[:size]

    folder = tmp_path
    while len(str(folder)) < 2_854 - 101:  # folders of up to 200 bytes, then a 100-byte name
        folder = folder / part(len(folder.parts), min(200, 2_854 - 101 - len(str(folder)) - 1))
    folder.mkdir(parents=True)
    name = part(0, 2_854 - len(str(folder)) - 1 - 4) + ".png"
    long_path = folder / name
    images["coffee"].convert("RGB").save(long_path)
    images["rocket"].convert("RGB").save(folder / "rocket.png")
    assert len(os.fsencode(long_path)) == 2_854
    with Workspace(settings_factory()) as ws:
        first = ws.index([tmp_path])
        assert (first.new, first.failed) == (2, [])
        again = ws.index([tmp_path])
        assert (again.new, again.unchanged, again.failed) == (0, 2, [])
        assert str(long_path) in _paths(ws)
        assert Path(ws.search_files([long_path], k=1)[0].hits[0].path) == long_path
