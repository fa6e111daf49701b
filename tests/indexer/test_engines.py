"""What the Ray engine is built from, tested without Ray: videos decoded in parts, a decode session that survives
its decoder, and a clear word when Ray is not installed."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from benchmarks.corpus import package_images, save, video_dir
from lookalike.config import Settings
from lookalike.errors import DecoderStartError, UsageError
from lookalike.indexer.decode_pool import DecodeSession
from lookalike.indexer.embedders.efficientnet import LITE0_PREPROCESS
from lookalike.indexer.file_decoding import DecodeLimits, Failed, ImageItem, Task
from lookalike.indexer.video_decode import sample_frames, video_meta
from lookalike.types import MediaKind
from lookalike.workspace import Workspace
from tests.indexer.hostile_decoders import decode_or_misbehave


@pytest.mark.parametrize(("name", "rate", "part"), [("bikes.mp4", 1.0, 3.0), ("bigbuckbunny.mp4", 2.5, 1.7)])
def test_parts_that_tile_a_video_sample_its_frames_once_each(name: str, rate: float, part: float) -> None:
    path = video_dir() / name
    _, frames = sample_frames(path, rate, 64)
    whole = [(f.time, np.asarray(f.image)) for f in frames]
    duration = video_meta(path).duration
    assert duration is not None
    parts = int(np.ceil(duration / part))
    pieces = []
    for k in range(parts):
        _, frames = sample_frames(path, rate, 64, k * part, (k + 1) * part if k < parts - 1 else None)
        pieces += [(f.time, np.asarray(f.image)) for f in frames]
    assert [t for t, _ in pieces] == [t for t, _ in whole]
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(pieces, whole, strict=True))


def test_a_decode_session_fails_the_crashing_file_and_decodes_the_next(tmp_path: Path) -> None:
    im = next(iter(package_images().values()))
    good = save(im, tmp_path / "good.png")
    crasher = shutil.copy(good, tmp_path / "segfault.png")
    limits = DecodeLimits(64_000_000, 2**30, 16)
    session = DecodeSession(LITE0_PREPROCESS, limits, timeout=30, decode=decode_or_misbehave)
    try:
        first = list(session.decode(Task(0, good, MediaKind.IMAGE)))
        crashed = list(session.decode(Task(1, Path(crasher), MediaKind.IMAGE)))
        after = list(session.decode(Task(2, good, MediaKind.IMAGE)))
    finally:
        session.close()
    assert [type(m) for m in first] == [ImageItem] and [type(m) for m in after] == [ImageItem]
    assert len(crashed) == 1 and isinstance(crashed[0], Failed)
    assert crashed[0].code == "decoder_crashed" and "SIGSEGV" in crashed[0].message
    assert np.array_equal(first[0].pixels, after[0].pixels)


def test_a_decode_session_that_cannot_start_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A broken install stops a decode actor with the pool's one clear error, not a file failed as crashed."""
    fake = tmp_path / "broken"
    (fake / "av").mkdir(parents=True)
    (fake / "av" / "__init__.py").write_text("raise ImportError('libavformat.so.61: cannot open shared object file')\n")
    monkeypatch.syspath_prepend(str(fake))  # the spawned decode process starts with this process's sys.path
    good = save(next(iter(package_images().values())), tmp_path / "good.png")
    session = DecodeSession(LITE0_PREPROCESS, DecodeLimits(64_000_000, 2**30, 16), timeout=30)
    try:
        with pytest.raises(DecoderStartError, match=r"cannot start: ImportError: libavformat\.so\.61"):
            list(session.decode(Task(0, good, MediaKind.IMAGE)))
    finally:
        session.close()


def test_ray_asked_for_without_ray_installed_says_how_to_install_it(tmp_path: Path, monkeypatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    with (
        Workspace(Settings(home=tmp_path, ray="local")) as ws,
        pytest.raises(UsageError, match=r"pip install 'lookalike\[ray\]'"),
    ):
        ws.index([tmp_path])


def test_videos_are_cut_into_parts_by_headers_read_in_spawned_processes(tmp_path: Path) -> None:
    """The driver reads video headers in supervised processes: a readable video is cut into parts, a file whose
    header cannot be read (or whose reader crashes) stays whole for its decoder to report, images stay one part."""
    from lookalike.indexer.engines.ray_stages import video_parts

    bikes = video_dir() / "bikes.mp4"
    fake = tmp_path / "fake.mp4"
    fake.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 64)
    photo = save(package_images()["coffee"], tmp_path / "coffee.png")
    tasks = [Task(0, bikes, MediaKind.VIDEO), Task(1, fake, MediaKind.VIDEO), Task(2, photo, MediaKind.IMAGE)]
    rows = video_parts(tasks, 2.0)
    duration = video_meta(bikes).duration
    assert duration is not None
    bike_parts = [(k, n, t.start, t.end) for k, n, t in rows if t.index == 0]
    n = int(np.ceil(duration / 2.0))
    assert bike_parts == [(k, n, 2.0 * k, 2.0 * (k + 1) if k < n - 1 else None) for k in range(n)]
    assert [(k, n, t) for k, n, t in rows if t.index in (1, 2)] == [(0, 1, tasks[1]), (0, 1, tasks[2])]


@pytest.mark.parametrize(
    ("args", "code", "says"),
    [
        (["--ray", "local"], 1, "--ray needs Ray: pip install 'lookalike[ray]'"),
        (["--ray", "auto", "--json"], 1, "--ray needs Ray: pip install 'lookalike[ray]'"),
        (["--ray"], 2, "requires an argument"),
    ],
)
def test_the_ray_option_takes_local_auto_or_an_address(tmp_path: Path, monkeypatch, args, code, says) -> None:
    """From the command line (without Ray here): the value reaches the engine; a bare --ray is a usage error."""
    import importlib.util

    from typer.testing import CliRunner

    from lookalike.cli.main import app

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    save(package_images()["coffee"], tmp_path / "media" / "coffee.png")
    result = CliRunner().invoke(app, ["--home", str(tmp_path / "home"), "index", str(tmp_path / "media"), *args])
    assert result.exit_code == code, result.output
    assert says in " ".join(result.output.split())
