"""Supervised decode workers: a crash, a hang or a memory blow-up costs one file, and the run goes on."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks.corpus import package_images
from lookalike.config import Settings
from lookalike.errors import DecoderStartError
from lookalike.indexer.decode_pool import START_TRIES, DecodePool
from lookalike.indexer.embedders.efficientnet import LITE0_PREPROCESS
from lookalike.indexer.file_decoding import DecodeLimits, Failed, ImageItem, Task
from lookalike.types import MediaKind
from lookalike.workspace import Workspace
from tests.indexer.hostile_decoders import decode_or_misbehave

LIMITS = DecodeLimits(max_image_pixels=64_000_000, max_image_bytes=2**29, chunk=32)


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("photos")
    out = []
    for name, im in list(package_images().items())[:6]:
        out.append(root / f"{name}.png")
        im.save(out[-1])
    return out


def _tasks(paths: list[Path]) -> list[Task]:
    return [Task(i, p, MediaKind.IMAGE) for i, p in enumerate(paths)]


def _copy(src: Path, dst: Path) -> Path:
    shutil.copy(src, dst)
    return dst


def test_a_segfaulting_decoder_fails_only_its_file(photos: list[Path], tmp_path: Path) -> None:
    crashers = [_copy(photos[0], tmp_path / f"segfault{i}.png") for i in range(2)]
    paths = [photos[0], crashers[0], *photos[1:4], crashers[1], *photos[4:]]
    pool = DecodePool(_tasks(paths), LITE0_PREPROCESS, LIMITS, workers=2, decode=decode_or_misbehave)
    messages = list(pool)
    failed = {m.job: m for m in messages if isinstance(m, Failed)}
    decoded = {m.job for m in messages if isinstance(m, ImageItem)}
    assert set(failed) == {1, 5}
    assert all(m.code == "decoder_crashed" and "SIGSEGV" in m.message for m in failed.values())
    assert decoded == set(range(len(paths))) - {1, 5}
    assert pool.restarts == 2


def test_a_hanging_decoder_is_stopped_after_the_timeout(photos: list[Path], tmp_path: Path) -> None:
    paths = [_copy(photos[0], tmp_path / "hang.png"), *photos]
    pool = DecodePool(_tasks(paths), LITE0_PREPROCESS, LIMITS, workers=1, timeout=2.0, decode=decode_or_misbehave)
    started = time.monotonic()
    messages = list(pool)
    assert time.monotonic() - started < 20
    failed = [m for m in messages if isinstance(m, Failed)]
    assert [(m.job, m.code) for m in failed] == [(0, "decode_timeout")]
    assert len([m for m in messages if isinstance(m, ImageItem)]) == len(photos)


def test_slow_consumer_is_not_mistaken_for_a_hang(photos: list[Path]) -> None:
    """Time a worker spends blocked on a full pipe (the model is busy) is not silence."""
    pool = DecodePool(_tasks(photos * 4), LITE0_PREPROCESS, LIMITS, workers=1, timeout=1.0)
    got = []
    for message in pool:
        got.append(message)
        time.sleep(0.3)
    assert all(isinstance(m, ImageItem) for m in got) and len(got) == len(photos) * 4


def test_pixels_match_decoding_in_process(photos: list[Path]) -> None:
    from lookalike.indexer.file_decoding import decode_all

    here = {m.job: m.pixels for m in decode_all(_tasks(photos), LITE0_PREPROCESS, LIMITS) if isinstance(m, ImageItem)}
    pooled = {m.job: m.pixels for m in DecodePool(_tasks(photos), LITE0_PREPROCESS, LIMITS, workers=2)}
    assert here.keys() == pooled.keys() and all(np.array_equal(here[k], pooled[k]) for k in here)


def test_memory_limit_fails_the_big_file_and_indexing_goes_on(
    photos: list[Path], tmp_path: Path, db_url: str, model_cache: Path
) -> None:
    """A real 5000x5000 PNG (75 MB of pixels) under a decode memory limit only ~40 MB above the worker's
    start-up footprint: that file is reported ``out_of_memory``, the rest is indexed, and the next run under the
    default limit retries it (unchanged) and indexes it."""
    root = tmp_path / "corpus"
    root.mkdir()
    for p in photos:
        _copy(p, root / p.name)
    Image.open(photos[0]).convert("RGB").resize((5000, 5000)).save(root / "huge.png", compress_level=1)
    tight = Settings(home=tmp_path / "lib", db_url=db_url, workers=1, decode_memory_mb=300, model_cache=model_cache)
    with Workspace(tight) as ws:
        report = ws.index([root])
        assert [(Path(f.path).name, f.code) for f in report.failed] == [("huge.png", "out_of_memory")]
        assert report.new == len(photos)
    with Workspace(tight.with_(decode_memory_mb=4096)) as ws:
        retry = ws.index([root])  # the file did not change: out_of_memory is retried, other failures are not
        assert retry.failed == [] and retry.updated == 1 and retry.unchanged == len(photos)


def test_workers_that_cannot_start_stop_the_run_with_the_cause(
    photos: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A broken install (FFmpeg's libraries missing) is not a bad file: one clear error, not every file 'crashed'."""
    fake = tmp_path / "broken"
    (fake / "av").mkdir(parents=True)
    (fake / "av" / "__init__.py").write_text(
        "raise ImportError('libavformat.so.61: cannot open shared object file: No such file or directory')\n"
    )
    monkeypatch.syspath_prepend(str(fake))  # spawned workers start with this process's sys.path
    pool = DecodePool(_tasks(photos), LITE0_PREPROCESS, LIMITS, workers=2)
    with pytest.raises(DecoderStartError, match=r"cannot start: ImportError: libavformat\.so\.61: cannot open") as e:
        list(pool)
    assert pool.restarts == START_TRIES - 1 and "\n" not in str(e.value)  # tried again, then gave up


@pytest.mark.parametrize("first", [True, False])
def test_a_file_that_ends_its_decoder_is_that_files_failure_wherever_it_comes(photos, tmp_path, first):
    """A decoder ending the process with exit code 1 on a file, as the first file of a worker or later, fails that
    file only (a worker that started is not a broken install)."""
    bad = _copy(photos[0], tmp_path / "exit1.png")
    paths = [bad, *photos[1:3]] if first else [*photos[1:3], bad]
    out = list(DecodePool(_tasks(paths), LITE0_PREPROCESS, LIMITS, workers=1, decode=decode_or_misbehave))
    failed = [m for m in out if isinstance(m, Failed)]
    assert [(paths[m.job].name, m.code) for m in failed] == [("exit1.png", "decoder_crashed")]
    assert sorted(m.job for m in out if isinstance(m, ImageItem)) == [i for i, p in enumerate(paths) if p != bad]
