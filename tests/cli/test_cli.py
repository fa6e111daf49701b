"""The CLI contract scripts depend on: global options, JSON shapes, exit codes, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from lookalike.cli.main import app
from tests.conftest import TEST_SERVER, another_writer, fresh_db_url

runner = CliRunner()
_DB: dict[str, str] = {}


def _db(home) -> list[str]:
    """``--db URL`` of the home's own database when the suite runs on PostgreSQL (SQLite needs none)."""
    if not TEST_SERVER:
        return []
    return ["--db", _DB.setdefault(str(home), fresh_db_url(home))]


def _run(*args: str, home) -> tuple[int, str, str]:
    result = runner.invoke(app, ["--home", str(home), *_db(home), *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def cli_home(tmp_path_factory, corpus):
    home = tmp_path_factory.mktemp("cli_home")
    code, out, _ = _run("index", str(corpus.root / "originals"), str(corpus.root / "videos"), "--json", home=home)
    assert code == 0, out
    return home


def test_index_json_summary(cli_home, corpus):
    code, out, _ = _run("index", str(corpus.root / "originals"), "--json", home=cli_home)
    summary = json.loads(out)
    assert code == 0
    assert summary["new"] == 0 and summary["unchanged"] == len(corpus.originals)
    assert summary["failed"] == [] and summary["skipped"] == []


def test_search_json_lines_contract(cli_home, corpus):
    queries = [corpus.copies[("chelsea", "crop")], corpus.videos["bikes_excerpt"]]
    code, out, _ = _run("search", *map(str, queries), "-k", "3", "--json", home=cli_home)
    assert code == 0
    lines = [json.loads(line) for line in out.strip().splitlines()]
    assert [line["query"] for line in lines] == [str(q) for q in queries]
    for line in lines:
        assert 1 <= len(line["results"]) <= 3
        for r in line["results"]:
            assert {"path", "kind", "score", "start", "end", "query_start", "query_end"} <= set(r)
            assert r["kind"] in {"image", "video"}
        scores = [r["score"] for r in line["results"]]
        assert scores == sorted(scores, reverse=True)
    image_top, video_top = lines[0]["results"][0], lines[1]["results"][0]
    assert image_top["path"] == str(corpus.originals["chelsea"]) and image_top["start"] is None
    assert video_top["kind"] == "video" and video_top["query_start"] is not None and video_top["end"] > 4.0


def test_dupes_and_info_json(cli_home):
    code, out, _ = _run("dupes", "--json", home=cli_home)
    groups = json.loads(out)["groups"]
    assert code == 0
    assert [sorted(i["path"].rsplit("/", 1)[-1] for i in g["items"]) for g in groups] == [
        ["bikes.mp4", "bikes_small.mp4"]
    ]
    assert [g["kind"] for g in groups] == ["duplicates"]
    assert [i["relation"] for i in groups[0]["items"]] == ["representative", "copy"]
    keys = {"path", "id", "kind", "relation", "score", "method", "inliers", "region", "rep_region", "start", "end"}
    assert all(keys | {"rep_start", "rep_end"} == set(i) for g in groups for i in g["items"])
    # eight different photos: nothing is similar at 0.9, and a threshold that would pair everything is refused
    code, out, _ = _run("dupes", "--json", "--similar-threshold", "0.9", home=cli_home)
    assert code == 0 and [g["kind"] for g in json.loads(out)["groups"]] == ["duplicates"]
    code, _, err = _run("dupes", "--similar-threshold", "0.1", home=cli_home)
    assert code == 2 and "0.1" in err
    code, out, _ = _run("info", "--json", home=cli_home)
    info = json.loads(out)["collections"][0]
    assert info["images_ok"] == 8 and info["videos_ok"] == 4 and info["model"] == "efficientnet_lite0"


def test_bad_query_file_is_reported_per_query(cli_home, corpus, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"nope")
    code, out, _ = _run("search", str(bad), str(corpus.originals["coffee"]), "--json", home=cli_home)
    lines = [json.loads(line) for line in out.strip().splitlines()]
    assert code == 1
    assert lines[0]["error"].startswith("unidentified_format") and lines[0]["results"] == []
    assert lines[1]["results"][0]["path"] == str(corpus.originals["coffee"])


def test_errors_are_one_line_with_exit_code_1(tmp_path):
    code, _, err = _run("search", "--text", "a cat", home=tmp_path)
    # an SQLite home without a library is not made one; an empty PostgreSQL database holds nothing indexed
    assert code == 1 and ("nothing is indexed" if TEST_SERVER else "no library in") in err and "Traceback" not in err
    result = runner.invoke(app, ["--home", str(tmp_path), *_db(tmp_path), "--model", "nope", "index", str(tmp_path)])
    code, err = result.exit_code, result.stderr
    assert code == 1 and "unknown model 'nope'" in err


def test_text_search_needs_a_clip_model(cli_home):
    code, _, err = _run("search", "--text", "a cat", home=cli_home)
    assert code == 1 and "CLIP" in err


def test_console_script_and_env_home(cli_home):
    env = {"LOOKALIKE_HOME": str(cli_home), "PATH": "/usr/bin:/bin"}
    if TEST_SERVER:
        env["LOOKALIKE_DB"] = _db(cli_home)[1]
    out = subprocess.run(
        [sys.executable, "-m", "lookalike.cli.main", "info", "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert json.loads(out)["home"] == str(cli_home)


def test_importing_lookalike_loads_no_heavy_libraries():
    code = "import sys, lookalike, lookalike.cli.main; print(sorted({'torch','faiss','sqlalchemy'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "torch" not in out and "faiss" not in out


def test_while_a_writer_runs_search_works_and_a_second_index_is_refused(cli_home, corpus):
    import time

    with another_writer(cli_home):
        started = time.monotonic()
        code, _, err = _run("index", str(corpus.root / "originals"), home=cli_home)
        assert code == 1 and "another lookalike process is writing" in err
        assert time.monotonic() - started < 10  # the lock wait itself is 2 s; the rest is start-up
        code, out, _ = _run("search", str(corpus.originals["rocket"]), "--json", "-k", "1", home=cli_home)
        assert code == 0 and json.loads(out)["results"][0]["path"] == str(corpus.originals["rocket"])


def test_reindex_command(cli_home):
    code, out, _ = _run("reindex", "--factory", "Flat", home=cli_home)
    assert code == 0 and "items: Flat, videos: Flat" in out
    code, _, err = _run("reindex", "--factory", "Bogus", home=cli_home)
    assert code == 1 and "FAISS cannot build" in err


def test_serve_binds_loopback_and_asks_for_the_key(cli_home, tmp_path):
    import socket
    import time
    import urllib.error
    import urllib.request

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    key_file = tmp_path / "key"
    key_file.write_text("k3y-from-a-file\n")
    cmd = [sys.executable, "-m", "lookalike.cli.main", "--home", str(cli_home), *_db(cli_home)]
    cmd += ["serve", "--port", str(port), "--api-key-file", str(key_file)]
    server = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=5) as r:
                    assert json.load(r) == {"status": "ok", "ready": True}
                break
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline, "lookalike serve did not come up"
                time.sleep(0.2)
        with pytest.raises(urllib.error.HTTPError) as denied:
            urllib.request.urlopen(base + "/api/info", timeout=5)
        assert denied.value.code == 401
        keyed = urllib.request.Request(base + "/api/info", headers={"X-API-Key": "k3y-from-a-file"})
        with urllib.request.urlopen(keyed, timeout=5) as r:
            assert json.load(r)["items"] > 0
        with socket.socket() as s:  # loopback only: the port is not open on the machine's other addresses
            other = socket.gethostbyname(socket.gethostname())
            if not other.startswith("127."):
                assert s.connect_ex((other, port)) != 0
    finally:
        server.terminate()
        server.wait(20)


def test_names_print_as_they_are(cli_home, tmp_path, images):
    """Markup brackets in a path print as they are (``x[/b].jpg`` used to crash with a MarkupError), and control
    characters (a terminal escape sequence, a new line) are shown as escapes, never sent to the terminal."""
    folder = tmp_path / "odd"
    folder.mkdir()
    images["coffee"].save(folder / "holiday [copy].jpg")
    (folder / "x[").mkdir()
    images["coffee"].save(folder / "x[" / "b].jpg")  # the path holds "[/b]", a closing tag Rich had no opener for
    (folder / "\x1b[31mred\nline.jpg").write_bytes(b"not a picture")
    code, out, err = _run("index", str(folder), home=cli_home)
    assert code == 0, out + err
    assert "Traceback" not in out + err and "\x1b" not in out
    assert f"{folder}/\\x1b[31mred\\nline.jpg: " in out  # the broken file's line, its name escaped
    code, out, err = _run("dupes", home=cli_home)
    assert code == 0, out + err
    assert f"{folder}/holiday [copy].jpg" in out and f"{folder}/x[/b].jpg" in out
    code, out, err = _run("info", "--failed", home=cli_home)
    assert code == 0 and "\\x1b[31mred\\nline.jpg" in out and "\x1b" not in out
    code, out, err = _run("search", str(folder / "x[/b].jpg"), "-k", "3", home=cli_home)
    assert code == 0, out + err
    lines = out.splitlines()
    assert lines[0] == str(folder / "x[/b].jpg")  # piped: the query, then one tab-separated line a hit
    assert lines[1].split("\t")[3] in (str(folder / "x[/b].jpg"), str(folder / "holiday [copy].jpg"))


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["dupes", "--similar-threshold", "nan"], "--similar-threshold"),
        (["dupes", "--similar-threshold", "2"], "--similar-threshold"),
        (["dupes", "--video-threshold", "-5"], "--video-threshold"),
        (["dupes", "--video-threshold", "inf"], "--video-threshold"),
        (["index", "--frame-rate", "0", "."], "--frame-rate"),
        (["index", "--frame-rate", "-1", "."], "--frame-rate"),
        (["index", "--frame-rate", "nan", "."], "--frame-rate"),
        (["index", "--decode-timeout", "0", "."], "--decode-timeout"),
        (["index", "--batch-size", "0", "."], "--batch-size"),
        (["serve", "--max-in-flight", "0"], "--max-in-flight"),
    ],
)
def test_out_of_range_options_are_usage_errors(tmp_path, args, option):
    """Refused at the edge (exit code 2, the option named), before a library is opened or anything is saved."""
    result = runner.invoke(app, ["--home", str(tmp_path / "home"), *args])
    assert result.exit_code == 2, result.output
    assert option in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "home").exists()


def test_setup_mistakes_are_one_line_errors(cli_home, tmp_path, corpus):
    """Each used to end in a traceback (or, for a mistyped home, in a new empty library there)."""
    import torch

    small = tmp_path / "small"
    code, _, err = _run("index", str(corpus.originals["coffee"]), home=small)
    assert code == 0, err
    code, _, err = _run("reindex", "--factory", "IVF1024,Flat", home=small)
    assert code == 1 and "Traceback" not in err
    assert "IVF1024,Flat needs at least 1,024 vectors to train" in err and "choose fewer lists" in err
    if not torch.cuda.is_available():
        code, _, err = _run("--device", "cuda", "search", str(corpus.originals["coffee"]), home=small)
        assert code == 1 and "no CUDA GPU: use --device cpu" in err and "Traceback" not in err
    result = runner.invoke(app, ["--home", str(small), "--db", "postgresql://who:secret@127.0.0.1:1/x", "info"])
    assert result.exit_code == 1 and "cannot open the database postgresql://who:***@127.0.0.1:1/x" in result.stderr
    assert "secret" not in result.stderr and "Traceback" not in result.stderr
    result = runner.invoke(
        app, ["--home", str(small), "--db", "postgresql://who@127.0.0.1:1/x?password=secret", "info"]
    )
    assert result.exit_code == 1 and "cannot open the database" in result.stderr and "secret" not in result.stderr
    typo = tmp_path / "typo"
    for args in (["info"], ["dupes"], ["search", str(corpus.originals["coffee"])]):
        result = runner.invoke(app, ["--home", str(typo), *args])
        assert result.exit_code == 1 and f"no library in {typo}" in result.stderr, args
    assert not typo.exists()


def test_a_frame_rate_other_than_the_collections_is_said_not_silently_ignored(tmp_path, corpus):
    home = tmp_path / "home"
    code, _, err = _run("index", str(corpus.originals["coffee"]), home=home)
    assert code == 0 and "warning" not in err
    code, _, err = _run("index", str(corpus.originals["coffee"]), "--frame-rate", "5", home=home)
    assert code == 0
    assert "--frame-rate 5 was not used: this collection samples 1 frames a second" in " ".join(err.split())
    code, _, err = _run("index", str(corpus.originals["coffee"]), "--frame-rate", "1", home=home)
    assert code == 0 and "warning" not in err


def test_index_says_how_many_files_are_missing(tmp_path, images):
    """A deleted file is counted as missing in the summary (text and JSON), with how to forget it."""
    media = tmp_path / "media"
    media.mkdir()
    for name in ("coffee", "rocket"):
        images[name].convert("RGB").save(media / f"{name}.png")
    home = tmp_path / "home"
    assert _run("index", str(media), home=home)[0] == 0
    (media / "rocket.png").unlink()
    code, out, _ = _run("index", str(media), home=home)
    assert code == 0 and "1 missing, 0 pruned" in out
    assert "1 file indexed under these folders is gone: left out of search and dupes; `index --prune` forgets it" in (
        " ".join(out.split())
    )
    code, out, _ = _run("index", str(media), "--prune", "--json", home=home)
    summary = json.loads(out)
    assert code == 0 and (summary["missing"], summary["pruned"], summary["unchanged"]) == (0, 1, 1)


def test_a_query_named_with_bytes_that_are_not_utf8_prints_valid_json(cli_home, corpus, tmp_path):
    """The query is named as the catalog names such files (``bytes:`` and the quoted bytes), so the JSON line is
    valid UTF-8 (it printed the raw byte)."""
    import os
    import shutil

    odd = os.path.join(os.fsencode(tmp_path), b"caf\xe9.png")
    shutil.copy(corpus.originals["coffee"], odd)
    result = runner.invoke(app, ["--home", str(cli_home), *_db(cli_home), "search", os.fsdecode(odd), "--json"])
    assert result.exit_code == 0, result.stdout
    line = json.loads(result.stdout_bytes.decode("utf-8"))
    assert line["query"] == "bytes:" + os.fsdecode(os.fsencode(tmp_path)) + "/caf%E9.png"
    assert line["results"][0]["path"] == str(corpus.originals["coffee"])


def test_help_shows_the_bracketed_defaults_and_variables():
    """Rich read ``[env ...]`` and ``[default: ...]`` in help texts as markup and dropped them (leaving " ."): they
    are escaped, and shown."""
    out = runner.invoke(app, ["--help"], env={"COLUMNS": "250"}, terminal_width=250).output
    assert "[env LOOKALIKE_HOME; default ~/.local/share/lookalike]." in out and "directory ." not in out
    out = runner.invoke(app, ["dupes", "--help"], env={"COLUMNS": "250"}, terminal_width=250).output
    assert "(implies --similar) [default: 0.90]." in out


def test_index_help_gives_the_settings_defaults():
    """`index --help` states the defaults its options leave to the settings object, as they are there."""
    from lookalike.config import Settings
    from lookalike.indexer.device import decode_workers

    text = " ".join(CliRunner().invoke(app, ["index", "--help"]).output.replace("│", " ").split())  # rich's box
    s = Settings()
    assert f"forward pass. Default: {s.batch_size}." in text and f"one file. Default: {s.decode_timeout:g}." in text
    assert f"MiB. Default: {s.decode_memory_mb}." in text
    assert decode_workers("cpu", None, cpus=2) == 1 and "Default: 1 on up to 2 cores" in text
