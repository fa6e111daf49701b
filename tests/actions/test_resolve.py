"""resolve / undo / distinct on real files with the real default model: a dry run changes nothing, apply moves
exactly the non-kept files, undo restores the tree byte for byte, edited files and lost keepers are left alone,
remembered decisions survive re-indexing."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import shutil
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
from PIL import ExifTags, Image, ImageFilter, ImageOps

from lookalike.actions.plan import plan_resolve
from lookalike.actions.rules import Candidate, choose_keeper, parse_rules
from lookalike.errors import UsageError
from lookalike.search.groups import DuplicateGroup, GroupItem, Relation
from lookalike.storage.records import MediaRecord
from lookalike.workspace import Workspace
from tests.conftest import tree


def _actions(result) -> dict[str, str]:
    return {Path(p.path).name: p.action for p in result.plan}


def test_dry_run_changes_nothing_and_plans_only_whole_copies(library):
    settings, media = library
    before = tree(media)
    with Workspace(settings) as ws:
        groups_before = [[it.path for it in g.items] for g in ws.duplicates()]
        result = ws.resolve()
        assert result.run is None and result.report is None
        assert _actions(result) == {
            "coffee.png": "keep",
            "coffee_copy.png": "trash",
            "coffee_small.jpg": "trash",
            "coffee_crop.png": "keep",  # a part of the picture is not a copy of it
            "rocket.png": "keep",
            "rocket.jpg": "trash",
        }
        reasons = {Path(p.path).name: p.reason for p in result.plan}
        assert reasons["coffee_crop.png"] == "cropped: not a whole copy"
        assert reasons["coffee_small.jpg"] == "resized copy of the keeper"
        assert [[it.path for it in g.items] for g in ws.duplicates()] == groups_before
        assert ws.trash_runs() == []
    assert tree(media) == before
    assert not (settings.home / "trash").exists()


def test_keep_rules_choose_the_keeper(library):
    settings, _ = library
    with Workspace(settings) as ws:
        by_size = ws.resolve(keep="format,size")
        assert {Path(p.path).name for p in by_size.plan if p.action == "keep" and p.reason.startswith("keeper")} == {
            "coffee.png",
            "rocket.png",
        }
        newest = ws.resolve(keep="newest")
        keepers = {Path(p.keeper).name for p in newest.plan}
        assert "rocket.jpg" in keepers  # saved after rocket.png
        with pytest.raises(UsageError, match="unknown keep rule 'biggest'"):
            ws.resolve(keep="biggest")
        with pytest.raises(UsageError, match="unknown action"):
            ws.resolve(action="delete")


def test_apply_moves_exactly_the_planned_files_and_undo_restores_the_tree(library):
    settings, media = library
    before = tree(media)
    with Workspace(settings) as ws:
        groups_before = [[it.path for it in g.items] for g in ws.duplicates()]
        result = ws.resolve(apply=True)
        assert result.run == 1 and result.report is not None and result.report.skipped == []
        moved = {Path(p.path).name for p in result.plan if p.action == "trash"}
        assert moved == {"coffee_copy.png", "coffee_small.jpg", "rocket.jpg"}
        assert set(tree(media)) == set(before) - moved
        trash = settings.home / "trash" / "1"
        assert {p.name for p in trash.rglob("*") if p.is_file()} == moved
        for name in moved:  # byte for byte, mtime kept, at <home>/trash/<run>/<absolute path>
            kept = trash / str(media / name).lstrip("/")
            assert (hashlib.sha256(kept.read_bytes()).hexdigest(), kept.stat().st_mtime_ns) == before[name]
        # the catalog follows: trashed files are out of search and dupes
        hits = ws.search_files([media / "coffee.png"], k=10)[0].hits
        assert not {Path(h.path).name for h in hits} & moved
        assert all(not {Path(it.path).name for it in g.items} & moved for g in ws.duplicates())
        assert ws.info()["collections"][0]["images_trashed"] == 3
        assert ws.store().check()["ok"]
        again = ws.index([media])  # trashed files are not 'missing'
        assert (again.missing, again.new) == (0, 0)
        [run] = ws.trash_runs()
        trashed_bytes = sum((trash / str(media / n).lstrip("/")).stat().st_size for n in moved)
        assert (run.state, run.counts, run.trash_bytes) == ("done", {"done": 3}, trashed_bytes)

        report = ws.undo()
        assert sorted(Path(p).name for p in report.done) == sorted(moved) and report.skipped == []
        assert tree(media) == before
        assert [[it.path for it in g.items] for g in ws.duplicates()] == groups_before
        assert ws.info()["collections"][0].get("images_trashed", 0) == 0
        assert ws.store().check()["ok"]
        assert ws.trash_runs()[0].state == "undone"
        with pytest.raises(UsageError, match="nothing to undo"):
            ws.undo()


def test_a_file_edited_after_indexing_is_left_alone(library):
    settings, media = library
    edited = media / "rocket.jpg"
    Image.open(edited).convert("L").convert("RGB").save(edited, quality=80)  # a new version, not re-indexed
    with Workspace(settings) as ws:
        result = ws.resolve(apply=True)
    assert result.report is not None
    assert dict(result.report.skipped) == {
        str(edited): "changed since it was indexed (size or modification time): index again, then resolve"
    }
    assert edited.exists() and not (media / "coffee_copy.png").exists()


def test_the_keeper_is_never_touched_and_a_lost_keeper_stops_its_group(library):
    """Keepers are kept; a keeper gone before planning takes its group out of the plan (it cannot be verified),
    and one gone between journaling and moving leaves its copies where they are (the last copy stays)."""
    from lookalike.actions.apply import Runner, trash_path
    from lookalike.storage.records import JournalRecord

    settings, media = library
    with Workspace(settings) as ws:
        plan = ws.resolve().plan
        keepers = {p.keeper for p in plan}
        assert keepers == {str(media / "coffee.png"), str(media / "rocket.png")}
        assert all(p.action == "keep" for p in plan if p.path in keepers)

        store = ws.library.open_collection(ws.store().info.name)
        store.load()
        cid = store.info.id
        copy = store.catalog.media(cid, store.catalog.media_id(cid, str(media / "rocket.jpg")) or -1)
        assert copy is not None
        entry = JournalRecord(
            str(media / "rocket.jpg"),
            str(media / "rocket.png"),
            "trash",
            copy.size,
            copy.mtime_ns,
            copy.sha256,
            copy.device,
            copy.inode,
        )
        run = ws.library.journal.start_run(cid, "trash", [entry], lambda r, p: trash_path(settings.home, r, p))
        (media / "rocket.png").rename(media.parent / "rocket_elsewhere.png")  # the keeper goes, after journaling
        report = Runner(store, ws.library.journal, settings.home).apply(run)
        assert report.skipped == [
            (str(media / "rocket.jpg"), f"its keeper {media / 'rocket.png'} is gone: nothing was touched")
        ]
        assert (media / "rocket.jpg").exists()

        result = ws.resolve(apply=True)  # rocket.png is gone: its group cannot be verified, nothing of it moves
        assert {Path(p.path).name for p in result.plan if p.action == "trash"} == {
            "coffee_copy.png",
            "coffee_small.jpg",
        }
    assert (media / "rocket.jpg").exists()


def test_distinct_survives_reindexing(library):
    settings, media = library
    with Workspace(settings) as ws:
        assert ws.distinct([media / "rocket.png", media / "rocket.jpg"]) == 1
        assert ws.distinct([media / "rocket.jpg", media / "rocket.png"]) == 0  # the same pair
        names = [{Path(it.path).name for it in g.items} for g in ws.duplicates()]
        assert not any({"rocket.png", "rocket.jpg"} <= n for n in names)
        os.utime(media / "rocket.jpg")  # touched: re-indexed by content, same bytes
        shutil.copy2(media / "rocket.jpg", media / "rocket_renamed.jpg")
        (media / "rocket.jpg").unlink()
        ws.index([media])
        names = [{Path(it.path).name for it in g.items} for g in ws.duplicates()]
        assert not any({"rocket.png", "rocket_renamed.jpg"} <= n for n in names)
        assert all(Path(p.path).name not in ("rocket.png", "rocket_renamed.jpg") for p in ws.resolve().plan)
        [decision] = ws.decisions()
        assert ws.forget_decisions([decision.id]) == 1
        names = [{Path(it.path).name for it in g.items} for g in ws.duplicates()]
        assert any({"rocket.png", "rocket_renamed.jpg"} <= n for n in names)


def test_hardlink_action_links_identical_copies_only_and_undo_separates_them(library):
    settings, media = library
    before = tree(media)
    with Workspace(settings) as ws:
        result = ws.resolve(apply=True, action="hardlink")
        linked = {Path(p.path).name for p in result.plan if p.action == "hardlink"}
        assert linked == {"coffee_copy.png"}  # the resized and re-encoded copies are other bytes: kept
        assert os.path.samefile(media / "coffee_copy.png", media / "coffee.png")
        assert tree(media) == {k: v if k != "coffee_copy.png" else before["coffee.png"] for k, v in before.items()}
        group = next(g for g in ws.duplicates() if any(it.path.endswith("coffee.png") for it in g.items))
        assert {Path(it.path).name: it.relation.value for it in group.items}["coffee_copy.png"] == "hardlink"
        ws.undo()
        assert not os.path.samefile(media / "coffee_copy.png", media / "coffee.png")
    assert tree(media) == before


def test_emptying_the_trash_forgets_the_files(library):
    settings, media = library
    with Workspace(settings) as ws:
        ws.resolve(apply=True)
        assert ws.empty_trash(timedelta(days=30)).done == []  # too recent
        report = ws.empty_trash(timedelta(0))
        assert len(report.done) == 3
        assert not (settings.home / "trash" / "1").exists()
        assert ws.info()["collections"][0].get("images_trashed", 0) == 0
        assert ws.trash_runs()[0].counts == {"emptied": 3}
        with pytest.raises(UsageError, match="nothing to undo"):
            ws.undo()
    assert not (media / "coffee_copy.png").exists()


def test_a_name_that_is_not_utf8_is_trashed_and_put_back(settings_factory, tmp_path, images):
    media = tmp_path / "media"
    media.mkdir()
    images["coffee"].convert("RGB").save(media / "coffee.png")
    odd = os.path.join(os.fsencode(media), b"caf\xe9 copy.png")
    shutil.copy2(media / "coffee.png", odd)
    before = tree(media)
    settings = settings_factory()
    with Workspace(settings) as ws:
        ws.index([media])
        result = ws.resolve(apply=True)
        assert result.report is not None and result.report.skipped == [] and len(result.report.done) == 1
        assert not os.path.exists(odd)
        ws.undo()
    assert tree(media) == before


def test_a_link_that_cannot_be_made_leaves_the_file_in_place(library, monkeypatch):
    """FAT has no links, a keeper may already have 65,000 names: the link is made before the file moves, so a
    failure leaves the file where it was (it used to be left in the trash, which `trash empty` then deleted)."""
    import errno

    settings, media = library
    before = tree(media)

    def refuse(*_args, **_kwargs):
        raise OSError(errno.EMLINK, "Too many links")

    monkeypatch.setattr("lookalike.actions.apply.os.link", refuse)
    with Workspace(settings) as ws:
        result = ws.resolve(apply=True, action="hardlink")
        assert result.report is not None
        assert result.report.skipped == [
            (
                str(media / "coffee_copy.png"),
                "the hardlink to its keeper cannot be made: Too many links; nothing was touched",
            )
        ]
    assert tree(media) == before
    assert not [p for p in (settings.home / "trash").rglob("*") if p.is_file()]


def test_a_keeper_replaced_after_indexing_stops_its_copies(library):
    """The keeper replaced by a link to one of its own copies (another tool's dedupe): trashing that copy would
    leave the link dangling and the picture only in the trash."""
    settings, media = library
    (media / "coffee.png").unlink()
    (media / "coffee.png").symlink_to(media / "coffee_copy.png")
    with Workspace(settings) as ws:
        result = ws.resolve(apply=True)
    assert result.report is not None
    skipped = dict(result.report.skipped)
    keeper = media / "coffee.png"
    assert (
        skipped[str(media / "coffee_copy.png")] == f"it is its keeper {keeper} under another name: nothing was touched"
    )
    assert (media / "coffee_copy.png").is_file() and (media / "coffee.png").resolve() == media / "coffee_copy.png"


def test_the_library_home_under_an_indexed_folder_is_not_indexed(settings_factory, tmp_path, images):
    media = tmp_path / "media"
    media.mkdir()
    images["rocket"].convert("RGB").save(media / "rocket.png")
    shutil.copy2(media / "rocket.png", media / "rocket_copy.png")
    settings = dataclasses.replace(settings_factory(), home=media / ".." / "media" / "library")
    with Workspace(settings) as ws:
        ws.index([media])
        assert ws.resolve(apply=True).report is not None
        again = ws.index([media])  # the trashed copy under <home>/trash is not a new file
        assert (again.new, again.copied) == (0, 0)
        assert [(s.path.name, s.reason) for s in again.skipped] == [("library", "lookalike_home")]
        assert ws.undo().skipped == []
    assert (media / "rocket_copy.png").is_file()


def test_a_decision_between_two_members_keeps_both(library, images):
    """`distinct` on two edited copies of one picture: when one is the keeper, the other is not trashed as its copy
    (decisions are by content, so the pair is of two different edits)."""
    settings, media = library
    images["coffee"].convert("RGB").save(media / "coffee_q80.jpg", quality=80)
    with Workspace(settings) as ws:
        ws.index([media])
        ws.distinct([media / "coffee_q80.jpg", media / "coffee_small.jpg"])
        plan = {Path(p.path).name: (p.action, p.reason, Path(p.keeper).name) for p in ws.resolve(keep="newest").plan}
    assert plan["coffee_q80.jpg"] == ("keep", "keeper: by rule newest", "coffee_q80.jpg")
    assert plan["coffee_small.jpg"] == (
        "keep",
        "remembered as not a duplicate of the keeper (lookalike distinct)",
        "coffee_q80.jpg",
    )
    assert plan["coffee.png"][0] == "trash"


def test_undo_of_an_interrupted_run_puts_back_what_moved_and_moves_nothing_more(library):
    from lookalike.actions.apply import Runner

    settings, media = library
    before = tree(media)
    with Workspace(settings) as ws:
        plan = ws.resolve().plan
        moves = [p for p in plan if p.action == "trash"]
        store = ws.library.open_collection(ws.store().info.name)
        store.load()
        from lookalike.actions.apply import trash_path
        from lookalike.storage.records import JournalRecord

        entries = [
            JournalRecord(
                path=p.path,
                keeper=p.keeper,
                action="trash",
                size=p.record.size,
                mtime_ns=p.record.mtime_ns,
                sha256=p.record.sha256,
                device=p.record.device,
                inode=p.record.inode,
            )
            for p in moves
        ]
        journal = ws.library.journal
        run = journal.start_run(store.info.id, "trash", entries, lambda r, p: trash_path(settings.home, r, p))
        first = journal.entries(run)[0]
        runner = Runner(store, journal, settings.home)
        assert runner._apply_one(first) is None  # one file moved, then the process "was killed"
        store.sync_files()
        assert not (media / Path(first.path).name).exists()
        report = ws.undo()
        assert report.done == [first.path]
        assert journal.entries(run, ["skipped"]) and journal.run(run).state == "undone"
    assert tree(media) == before


def test_a_reviewed_plan_acts_only_on_the_chosen_files_and_keeps_each_group_a_file(library):
    settings, media = library
    before = tree(media)
    path = {n: str(media / n) for n in before}
    with Workspace(settings) as ws:
        dry = ws.resolve(choices={path["coffee_small.jpg"]: "trash", path["coffee_crop.png"]: "trash"})
        assert dry.run is None and tree(media) == before
        assert _actions(dry) == {
            "coffee.png": "keep",
            "coffee_copy.png": "keep",  # not chosen: kept, though the automatic plan trashes it
            "coffee_small.jpg": "trash",
            "coffee_crop.png": "trash",  # a person chose it: a crop may go when the group keeps its original
            "rocket.png": "keep",
            "rocket.jpg": "keep",
        }
        reasons = {Path(p.path).name: p.reason for p in dry.plan}
        assert reasons["coffee_copy.png"] == "kept: not chosen in the review"
        assert reasons["coffee_crop.png"] == "chosen trash in the review"

        # the keeper chosen away with another file chosen to keep: that file becomes the keeper
        swap = ws.resolve(choices={path["rocket.png"]: "trash", path["rocket.jpg"]: "keep"})
        assert {Path(p.path).name: (p.action, Path(p.keeper).name) for p in swap.plan if "rocket" in p.path} == {
            "rocket.png": ("trash", "rocket.jpg"),
            "rocket.jpg": ("keep", "rocket.jpg"),
        }
        # every file of a group chosen away: the group is untouched (the last copy is never removed)
        every = ws.resolve(choices={path["rocket.png"]: "trash", path["rocket.jpg"]: "trash"})
        assert {Path(p.path).name: p.action for p in every.plan if "rocket" in p.path} == {
            "rocket.png": "keep",
            "rocket.jpg": "keep",
        }
        # every whole copy chosen away, only the crop kept: the crop cannot stand for the picture, nothing moves
        crop_only = ws.resolve(
            choices={
                path["coffee.png"]: "trash",
                path["coffee_copy.png"]: "trash",
                path["coffee_small.jpg"]: "trash",
                path["coffee_crop.png"]: "keep",
            }
        )
        assert {Path(p.path).name: (p.action, p.reason) for p in crop_only.plan if "coffee" in p.path} == {
            name: ("keep", "the keeper was chosen away and no whole copy chosen to keep: the group is untouched")
            for name in ("coffee.png", "coffee_copy.png", "coffee_small.jpg", "coffee_crop.png")
        }
        # a link only to identical bytes; a file in no verified group is named, not touched
        odd = ws.resolve(choices={path["coffee_small.jpg"]: "symlink", path["astronaut.png"]: "trash"})
        small = next(p for p in odd.plan if p.path.endswith("coffee_small.jpg"))
        assert (small.action, small.reason) == (
            "keep",
            "resized, not the same bytes as the keeper: only identical copies are linked",
        )
        assert odd.outside == [path["astronaut.png"]]
        with pytest.raises(UsageError, match="unknown choice 'shred'"):
            ws.resolve(choices={path["rocket.jpg"]: "shred"})

        applied = ws.resolve(apply=True, choices={path["coffee_small.jpg"]: "trash", path["rocket.jpg"]: "trash"})
        assert applied.report is not None and sorted(Path(p).name for p in applied.report.done) == [
            "coffee_small.jpg",
            "rocket.jpg",
        ]
        assert set(tree(media)) == set(before) - {"coffee_small.jpg", "rocket.jpg"}
        ws.undo()
    assert tree(media) == before


def test_delete_goes_through_the_trash_and_then_deletes_for_good(library):
    settings, media = library
    before = tree(media)
    with Workspace(settings) as ws:
        with pytest.raises(UsageError, match="does not go with --action symlink"):
            ws.resolve(apply=True, action="symlink", delete=True)
        result = ws.resolve(apply=True, delete=True)
        gone = {"coffee_copy.png", "coffee_small.jpg", "rocket.jpg"}
        assert result.report is not None and sorted(Path(p).name for p in result.report.done) == sorted(gone)
        assert set(tree(media)) == set(before) - gone
        assert not any(p.is_file() for p in (settings.home / "trash").rglob("*"))
        [run] = ws.trash_runs()
        assert (run.action, run.state, run.counts, run.trash_bytes) == ("delete", "done", {"emptied": 3}, 0)
        assert "images_trashed" not in ws.info()["collections"][0]  # the catalog forgot them
        with pytest.raises(UsageError, match="run 1 has nothing to undo \\(3 emptied\\)"):
            ws.undo(1)
        assert ws.store().check()["ok"]


def test_a_delete_run_interrupted_after_the_moves_is_finished_by_the_next_command(library, monkeypatch):
    from lookalike.actions.apply import Runner

    settings, media = library
    real = Runner._delete_trashed

    def killed(self, run_id, report):
        raise KeyboardInterrupt  # the process stops after the files reached the trash, before deleting them

    monkeypatch.setattr(Runner, "_delete_trashed", killed)
    with Workspace(settings) as ws, pytest.raises(KeyboardInterrupt):
        ws.resolve(apply=True, delete=True)
    trash = settings.home / "trash" / "1"
    assert len([p for p in trash.rglob("*") if p.is_file()]) == 3  # in the trash, each with its journal row
    monkeypatch.setattr(Runner, "_delete_trashed", real)
    with Workspace(settings) as ws:
        again = ws.resolve(apply=True)
        assert [r.run for r in again.recovered] == [1] and again.run is None
        [run] = ws.trash_runs()
        assert (run.action, run.state, run.counts) == ("delete", "done", {"emptied": 3})
    assert not any(p.is_file() for p in (settings.home / "trash").rglob("*"))
    assert sorted(p.name for p in media.iterdir()) == ["astronaut.png", "coffee.png", "coffee_crop.png", "rocket.png"]


def _exif(taken: str, **ifd0: str) -> Image.Exif:
    exif = Image.Exif()
    for name, value in ifd0.items():
        exif[getattr(ExifTags.Base, name)] = value
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] = taken
    return exif


def test_oldest_and_exif_rules_read_the_photos_metadata(settings_factory, tmp_path, images):
    """One photo saved twice: ``sparse.jpg`` taken in 2015 with only its date, modified now; ``rich.jpg`` taken in
    2018 with camera and software, modified in 2001. ``oldest`` keeps the 2015 photo though its file is newer;
    ``exif`` keeps the one with more metadata; a file without a date sends the group back to modification times."""
    media = tmp_path / "media"
    media.mkdir()
    coffee = images["coffee"].convert("RGB")
    coffee.save(
        media / "rich.jpg", quality=90, exif=_exif("2018:01:01 12:00:00", Make="Canon", Model="EOS R", Software="x")
    )
    coffee.save(media / "sparse.jpg", quality=90, exif=_exif("2015:06:07 08:09:10"))
    os.utime(media / "rich.jpg", (978_307_200, 978_307_200))  # 2001-01-01
    settings = settings_factory()
    with Workspace(settings) as ws:
        ws.index([media])

        def keeper(rules: str) -> tuple[str, str]:
            [kept] = [p for p in ws.resolve(keep=rules).plan if p.path == p.keeper]
            return Path(kept.path).name, kept.reason

        assert keeper("oldest") == ("sparse.jpg", "keeper: by rule oldest")
        assert keeper("newest") == ("rich.jpg", "keeper: by rule newest")
        assert keeper("exif,oldest") == ("rich.jpg", "keeper: by rule exif")

        coffee.save(media / "undated.jpg", quality=90)  # modified now, like sparse.jpg, but later
        ws.index([media])
        assert keeper("oldest") == ("rich.jpg", "keeper: by rule oldest")  # by modification time: 2001


def test_the_desktop_trash_holds_the_files_with_their_info_and_undo_takes_them_back(library, monkeypatch, tmp_path):
    settings, media = library
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    before = tree(media)
    with Workspace(settings) as ws:
        with pytest.raises(UsageError, match="unknown trash 'bin'"):
            ws.resolve(apply=True, into="bin")
        result = ws.resolve(apply=True, into="desktop")
        assert result.report is not None and len(result.report.done) == 3
        trash = tmp_path / "data" / "Trash"
        moved = sorted(p.name for p in (trash / "files").iterdir())
        assert [re.sub(r" \(lookalike 1-[0-9a-f]{10}\)", "", n) for n in moved] == [
            "coffee_copy.png",
            "coffee_small.jpg",
            "rocket.jpg",
        ]
        for name in moved:  # the specification's info file, naming where the file came from
            info = (trash / "info" / f"{name}.trashinfo").read_text()
            original = re.sub(r" \(lookalike 1-[0-9a-f]{10}\)", "", name)
            lines = info.splitlines()
            assert lines[:2] == ["[Trash Info]", f"Path={media / original}"]
            assert re.fullmatch(r"DeletionDate=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", lines[2])
            kept = trash / "files" / name
            assert (hashlib.sha256(kept.read_bytes()).hexdigest(), kept.stat().st_mtime_ns) == before[original]
        assert not (settings.home / "trash").exists()
        ws.undo()
    assert tree(media) == before
    assert list((trash / "files").iterdir()) == [] and list((trash / "info").iterdir()) == []


def test_the_desktop_trash_takes_files_of_its_own_filesystem_and_leaves_no_stray_info(library, monkeypatch, tmp_path):
    from lookalike.actions import apply

    settings, media = library
    before = tree(media)
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(media).st_dev:
        pytest.skip("needs /dev/shm on another filesystem than the test's files")
    elsewhere = Path(tempfile.mkdtemp(dir=shm))
    try:
        monkeypatch.setenv("XDG_DATA_HOME", str(elsewhere))
        with Workspace(settings) as ws:
            result = ws.resolve(apply=True, into="desktop")
            assert result.report is not None and result.report.done == []
            assert {why for _, why in result.report.skipped} == {
                "on another filesystem than the desktop trash: left in place (the library's trash takes it)"
            }
        assert tree(media) == before
    finally:
        shutil.rmtree(elsewhere)

    # a run killed after writing a file's info and before moving it, then undone: the info file goes too
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    real_move = apply._move

    def killed(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(apply, "_move", killed)
    with Workspace(settings) as ws, pytest.raises(KeyboardInterrupt):
        ws.resolve(apply=True, into="desktop")
    info = tmp_path / "data" / "Trash" / "info"
    assert len(list(info.iterdir())) == 1
    monkeypatch.setattr(apply, "_move", real_move)
    with Workspace(settings) as ws, pytest.raises(UsageError, match="has nothing to undo"):
        ws.undo(1)  # the interrupted run is stopped where it is: nothing had moved
    assert list(info.iterdir()) == [] and tree(media) == before


def test_the_keeper_is_the_best_copy_not_a_grey_blurred_turned_or_padded_one(settings_factory, tmp_path, images):
    """What a new user's trial found: the default keeper was a grey PNG, a blurred copy or a turned one, and
    `resolution` counted a canvas around a small photo."""
    media = tmp_path / "media"
    media.mkdir()
    cat = images["chelsea"].convert("RGB")
    cat.save(media / "chelsea.jpg", quality=92)
    ImageOps.grayscale(cat).save(media / "chelsea_grey.png")
    cat.filter(ImageFilter.GaussianBlur(4)).save(media / "chelsea_blurred.png")
    cat.rotate(90, expand=True).save(media / "chelsea_turned.jpg", quality=92)
    cat.save(media / "chelsea_copy.webp", quality=90)
    canvas = Image.new("RGB", (1200, 900), (255, 255, 255))
    canvas.paste(cat.resize((300, 200)), (450, 350))
    canvas.save(media / "chelsea_on_canvas.png")
    settings = settings_factory()
    with Workspace(settings) as ws:
        ws.index([media])
        [group] = ws.duplicates()
        assert Path(group.items[0].path).name == "chelsea.jpg"  # the representative
        keepers = {Path(p.keeper).name for p in ws.resolve().plan}
        assert keepers == {"chelsea.jpg"}
        by_resolution = ws.resolve(keep="resolution")
        assert {Path(p.path).name for p in by_resolution.plan if p.reason.startswith("keeper")} == {"chelsea.jpg"}


def test_remembered_decisions_inside_a_group_and_clear_errors(library):
    settings, media = library
    with Workspace(settings) as ws:
        ws.distinct([media / "coffee_crop.png", media / "coffee_small.jpg"])  # two members, neither the keeper
        plan = {Path(p.path).name: (p.action, p.reason) for p in ws.resolve().plan if "coffee" in p.path}
        assert plan == {
            "coffee.png": ("keep", "keeper: the representative"),
            "coffee_copy.png": ("trash", "identical copy of the keeper"),
            "coffee_small.jpg": (
                "keep",
                f"remembered as not a duplicate of {media / 'coffee_crop.png'} in this group: kept for you to check",
            ),
            "coffee_crop.png": (
                "keep",
                f"remembered as not a duplicate of {media / 'coffee_small.jpg'} in this group: kept for you to check",
            ),
        }
        with pytest.raises(UsageError, match=r"no decision 998, 999 \(see `lookalike decisions list`\)"):
            ws.forget_decisions([999, 998])
        assert len(ws.decisions()) == 1
        with pytest.raises(UsageError, match="the rule path:/nonexistent/folder names no folder"):
            ws.resolve(keep="path:/nonexistent/folder")


def _planned(rules: str, relations: dict[str, Relation], missing: frozenset[str] = frozenset()) -> dict:
    """The resolve plan of one group (the first name its representative), as ``{name: (action, reason)}``."""
    records = {
        i: MediaRecord(f"/m/{name}", "image", 100 + i, 0, "missing" if name in missing else "ok", sha256=name)
        for i, name in enumerate(relations)
    }
    items = [
        GroupItem(i, f"/m/{name}", "image", relation=rel, score=1.0) for i, (name, rel) in enumerate(relations.items())
    ]
    planned = plan_resolve([DuplicateGroup(1.0, items)], records, parse_rules(rules), "trash")
    return {Path(p.path).name: (p.action, p.reason) for p in planned}


def test_a_turned_or_mirrored_copy_is_never_kept_in_its_originals_place():
    """``--keep format`` prefers lossless files: a lossless mirror image or quarter turn of a JPEG original is
    still trashed as a copy (it was kept and the original trashed), and a lossless resized copy is kept instead,
    with reasons that say which rule chose it and what the keeper is."""
    group = {
        "photo.jpg": Relation.REPRESENTATIVE,
        "mirror.png": Relation.FLIPPED,
        "turned.png": Relation.ROTATED,
        "smaller.png": Relation.RESIZED,
    }
    assert _planned("format", group) == {
        "photo.jpg": ("trash", "the representative; the keeper is a resized copy of it, by rule format"),
        "mirror.png": ("trash", "a whole copy (flipped against the representative)"),
        "turned.png": ("trash", "a whole copy (rotated against the representative)"),
        "smaller.png": ("keep", "keeper: by rule format"),
    }
    del group["smaller.png"]
    assert _planned("format", group) == {
        "photo.jpg": ("keep", "keeper: the representative"),
        "mirror.png": ("trash", "flipped copy of the keeper"),
        "turned.png": ("trash", "rotated copy of the keeper"),
    }


def test_a_framed_copy_is_kept_and_never_keeps_in_its_originals_place():
    """A copy with plain borders added (a letterbox, a mat) has more pixels than its original, all of them the
    frame's: as a resized copy, ``--keep size`` kept it and trashed the original. Framed, it is kept beside its
    original and never chosen over it (from a crop's side, an original with plain margins looks framed too)."""
    group = {"photo.jpg": Relation.REPRESENTATIVE, "matted.png": Relation.FRAMED}
    framed = "framed: plain borders round the keeper's picture (added, or an original's margins): kept"
    assert _planned("size", group) == {
        "photo.jpg": ("keep", "keeper: the representative"),
        "matted.png": ("keep", framed),
    }


def test_a_copy_a_few_pixels_larger_does_not_win_on_resolution():
    """A copy with thin bars whose matched box is 640 x 429 against its original's 640 x 427 (the box is measured
    to a pixel or two) ties on ``resolution``: the representative is kept. A copy 10% larger still wins."""
    records = {i: MediaRecord(f"/m/{n}", "image", 100, 0, "ok", sha256=n) for i, n in enumerate(("a.jpg", "b.jpg"))}
    near = [Candidate(records[0], True, 640 * 427), Candidate(records[1], False, 640 * 429)]
    assert choose_keeper(near, parse_rules("resolution")) == (0, "representative")
    far = [Candidate(records[0], True, 640 * 427), Candidate(records[1], False, 704 * 470)]
    assert choose_keeper(far, parse_rules("resolution")) == (1, "resolution")


def test_the_keeper_reason_names_no_representative_that_is_not_there():
    """With the representative gone (missing) and no rule telling the copies apart, the keeper is the shorter
    path, and says so (it said "the representative"); with the others mirrored, it is the only whole copy the right
    way round (not chosen by the rule); a representative kept over an identical copy names it with its article."""
    group = {"photo.jpg": Relation.REPRESENTATIVE, "a.jpg": Relation.RESIZED, "copy_b.jpg": Relation.RESIZED}
    assert _planned("representative", group, missing=frozenset({"photo.jpg"})) == {
        "a.jpg": ("keep", "keeper: no rule told the copies apart (the shorter path, then by name)"),
        "copy_b.jpg": ("trash", "a whole copy (resized against the representative)"),
    }
    group["mirror.png"] = Relation.FLIPPED
    del group["copy_b.jpg"]
    assert _planned("format", group, missing=frozenset({"photo.jpg"})) == {
        "a.jpg": (
            "keep",
            "keeper: the only whole copy the right way round (the representative is gone or failed to index)",
        ),
        "mirror.png": ("trash", "a whole copy (flipped against the representative)"),
    }
    twins = {"photo.jpg": Relation.REPRESENTATIVE, "a.jpg": Relation.IDENTICAL}
    assert _planned("shortest-path", twins)["photo.jpg"] == (
        "trash",
        "the representative; the keeper is an identical copy of it, by rule shortest-path",
    )
