"""The clean-up commands as a user runs them: resolve (dry run, JSON contract, --apply), trash list, undo,
distinct, decisions, dupes --csv, and usage errors."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

from PIL import ExifTags, Image
from typer.testing import CliRunner

from lookalike.cli.main import app
from tests.conftest import TEST_SERVER, fresh_db_url

runner = CliRunner()


def _cli(home: Path, *args: str) -> tuple[int, str]:
    db = ["--db", fresh_db_url(home)] if TEST_SERVER and not (home / ".db").exists() else []
    if db:
        (home / ".db").write_text(db[1])
    elif TEST_SERVER:
        db = ["--db", (home / ".db").read_text()]
    result = runner.invoke(app, ["--home", str(home), *db, *args])
    return result.exit_code, result.stdout + result.stderr


def test_the_clean_up_workflow_from_the_command_line(tmp_path, images):
    media, home = tmp_path / "media", tmp_path / "home"
    media.mkdir()
    home.mkdir()
    images["coffee"].convert("RGB").save(media / "coffee.png")
    shutil.copy2(media / "coffee.png", media / "coffee_copy.png")
    images["rocket"].convert("RGB").save(media / "rocket.png")
    images["rocket"].convert("RGB").save(media / "rocket.jpg", quality=80)
    before = {p.name: p.read_bytes() for p in media.iterdir()}
    assert _cli(home, "index", str(media))[0] == 0

    code, text = _cli(home, "dupes", "--csv")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert code == 0 and [(Path(r["path"]).name, r["relation"], r["keeper"]) for r in rows] == [
        ("coffee.png", "representative", "yes"),
        ("coffee_copy.png", "identical", ""),
        ("rocket.png", "representative", "yes"),
        ("rocket.jpg", "edited", ""),
    ]
    assert rows[0]["resolution"] == "600x400" and rows[0]["size"] == str((media / "coffee.png").stat().st_size)

    code, text = _cli(home, "resolve", "--json")
    plan = json.loads(text)
    assert code == 0 and plan["run"] is None
    assert [(Path(a["path"]).name, a["action"]) for a in plan["actions"]] == [
        ("coffee.png", "keep"),
        ("coffee_copy.png", "trash"),
        ("rocket.png", "keep"),
        ("rocket.jpg", "trash"),
    ]
    assert set(plan["actions"][1]) == {"path", "action", "keeper", "reason", "group"}
    assert {p.name for p in media.iterdir()} == set(before)  # a dry run touches nothing

    code, text = _cli(home, "resolve")
    assert code == 0 and "dry run: 2 files would be moved; nothing was changed (add --apply)" in text

    code, text = _cli(home, "resolve", "--apply")
    assert code == 0 and "run 1: 2 files done, 0 skipped; `lookalike undo 1` puts them back" in text
    assert {p.name for p in media.iterdir()} == {"coffee.png", "rocket.png"}
    code, text = _cli(home, "trash", "list", "--json")
    [run] = json.loads(text)["runs"]
    assert (run["run"], run["state"], run["files"]) == (1, "done", {"done": 2})

    code, text = _cli(home, "undo", "1")
    assert code == 0 and "run 1: 2 files restored, 0 left as they are" in text
    assert {p.name: p.read_bytes() for p in media.iterdir()} == before
    code, text = _cli(home, "undo")
    assert code == 1 and "nothing to undo" in text

    code, text = _cli(home, "distinct", str(media / "rocket.png"), str(media / "rocket.jpg"))
    assert code == 0 and "remembered 1 new pair as not duplicates" in text
    code, text = _cli(home, "dupes", "--json")
    assert [[Path(it["path"]).name for it in g["items"]] for g in json.loads(text)["groups"]] == [
        ["coffee.png", "coffee_copy.png"]
    ]
    code, text = _cli(home, "decisions", "list", "--json")
    [decision] = json.loads(text)["decisions"]
    assert {Path(decision["a"]).name, Path(decision["b"]).name} == {"rocket.png", "rocket.jpg"}
    code, text = _cli(home, "decisions", "forget", str(decision["id"]))
    assert code == 0 and "forgot 1 decision" in text

    code, text = _cli(home, "distinct", str(media / "rocket.png"), str(tmp_path / "nowhere.png"))
    assert code == 1 and "nowhere.png is not an indexed file (index it first)" in text
    assert _cli(home, "resolve", "--keep", "biggest")[0] == 2
    assert _cli(home, "resolve", "--action", "delete")[0] == 2
    assert _cli(home, "trash", "empty", "--older-than", "soon")[0] == 2


def test_resolve_replays_a_reviewed_plan_file(tmp_path, images):
    media, home = tmp_path / "media", tmp_path / "home"
    media.mkdir()
    home.mkdir()
    images["coffee"].convert("RGB").save(media / "coffee.png")
    shutil.copy2(media / "coffee.png", media / "coffee_copy.png")
    images["rocket"].convert("RGB").save(media / "rocket.png")
    images["rocket"].convert("RGB").save(media / "rocket.jpg", quality=80)
    assert _cli(home, "index", str(media))[0] == 0
    plan = json.loads(_cli(home, "resolve", "--json")[1])
    assert [a["group"] for a in plan["actions"]] == [1, 1, 2, 2]
    for a in plan["actions"]:  # the reviewer keeps the rocket JPEG
        if a["path"].endswith("rocket.jpg"):
            a["action"] = "keep"
    reviewed = tmp_path / "reviewed.json"
    reviewed.write_text(json.dumps(plan))

    code, text = _cli(home, "resolve", "--plan", str(reviewed), "--apply", "--json")
    done = json.loads(text)
    assert code == 0 and done["run"] == 1 and done["outside"] == []
    assert sorted(p.name for p in media.iterdir()) == ["coffee.png", "rocket.jpg", "rocket.png"]

    reviewed.write_text("{not json")
    code, text = _cli(home, "resolve", "--plan", str(reviewed))
    assert code == 1 and text.startswith(f"error: --plan {reviewed}: not JSON (") and "Traceback" not in text
    reviewed.write_text("[]")
    code, text = _cli(home, "resolve", "--plan", str(reviewed))
    assert code == 1 and text.strip() == (
        f'error: --plan {reviewed}: not a plan: it needs {{"actions": [{{"path": ..., "action": ...}}, ...]}} as '
        "`lookalike resolve --json` prints it"
    )
    code, text = _cli(home, "resolve", "--plan", str(tmp_path / "absent.json"))
    assert (
        code == 1
        and text.strip() == f"error: --plan {tmp_path / 'absent.json'}: cannot be read: No such file or directory"
    )


def test_delete_asks_first_and_needs_apply(tmp_path, images):
    media, home = tmp_path / "media", tmp_path / "home"
    media.mkdir()
    home.mkdir()
    images["coffee"].convert("RGB").save(media / "coffee.png")
    shutil.copy2(media / "coffee.png", media / "coffee_copy.png")
    assert _cli(home, "index", str(media))[0] == 0
    code, text = _cli(home, "resolve", "--delete")
    assert code == 2 and "--delete goes with --apply" in text

    db = ["--db", (home / ".db").read_text()] if TEST_SERVER else []
    answered_no = runner.invoke(app, ["--home", str(home), *db, "resolve", "--apply", "--delete"], input="n\n")
    assert answered_no.exit_code == 1 and "Delete 1 files for good?" in answered_no.stderr
    assert "nothing was deleted" in answered_no.stderr
    assert answered_no.stdout.strip() == "n"  # only the test runner's echo of the answer: --json stays clean
    assert sorted(p.name for p in media.iterdir()) == ["coffee.png", "coffee_copy.png"]

    code, text = _cli(home, "resolve", "--apply", "--delete", "--yes")
    assert code == 0 and "run 1: 1 files deleted for good, 0 skipped" in text
    assert sorted(p.name for p in media.iterdir()) == ["coffee.png"]
    assert not any(p.is_file() for p in (home / "trash").rglob("*"))


def test_dupes_csv_shows_when_and_with_what_each_photo_was_taken(tmp_path, images):
    media, home = tmp_path / "media", tmp_path / "home"
    media.mkdir()
    home.mkdir()
    exif = Image.Exif()
    exif[ExifTags.Base.Make], exif[ExifTags.Base.Model] = "FUJIFILM", "X100V"
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] = "2021:03:04 05:06:07"
    rocket = images["rocket"].convert("RGB")
    rocket.save(media / "rocket.jpg", quality=90, exif=exif)
    rocket.save(media / "rocket_plain.jpg", quality=90)
    assert _cli(home, "index", str(media))[0] == 0
    code, text = _cli(home, "dupes", "--csv")
    rows = {Path(r["path"]).name: (r["taken"], r["camera"]) for r in csv.DictReader(io.StringIO(text))}
    assert code == 0 and rows == {"rocket.jpg": ("2021-03-04 05:06:07", "FUJIFILM X100V"), "rocket_plain.jpg": ("", "")}
