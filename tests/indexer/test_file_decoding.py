"""Decode streams: worker processes and the background thread give the same results; errors and early stops."""

from __future__ import annotations

import functools
import time

import numpy as np
import pytest

from lookalike.config import Settings
from lookalike.indexer.discover import walk
from lookalike.indexer.embed import embed_jobs
from lookalike.indexer.embedders.registry import create_embedder
from lookalike.indexer.file_decoding import ThreadedStream
from lookalike.indexer.plan import make_plan

pytestmark = pytest.mark.catalog_free  # opens no catalog: the PostgreSQL run leaves it out


class _Boom:
    def __iter__(self):
        yield 1
        raise RuntimeError("decoder exploded")


def test_threaded_stream_passes_on_producer_errors():
    got = []
    with pytest.raises(RuntimeError, match="decoder exploded"):
        for item in ThreadedStream(_Boom()):  # type: ignore[arg-type]
            got.append(item)
    assert got == [1]


def test_threaded_stream_stops_cleanly_when_the_consumer_stops():
    stream = ThreadedStream(iter(range(10_000)), ahead=4)  # type: ignore[arg-type]
    taken = []
    for item in stream:
        taken.append(item)
        if len(taken) == 4:
            break
    assert taken == [0, 1, 2, 3]


def test_worker_processes_and_thread_give_the_same_vectors(corpus):
    files = [*list(corpus.originals.values())[:3], corpus.videos["carphone"]]
    jobs = make_plan((c for f in files for c in walk(f)), {}).jobs
    emb = create_embedder(device="cpu")
    out = {}
    for workers in (0, 1):
        done = embed_jobs(jobs, emb, Settings(workers=workers, batch_size=8))
        out[workers] = {d.job.key: np.vstack([v.embedding for v in d.vectors]) for d in done}
    assert out[0].keys() == out[1].keys() == {str(f) for f in files}
    for key in out[0]:
        assert np.allclose(out[0][key], out[1][key], atol=1e-5)


def test_a_video_failing_midway_reports_one_failure_and_the_run_goes_on(corpus, monkeypatch):
    """Frames already queued for the model must not crash the run when their video then fails."""
    import lookalike.indexer.file_decoding as worker

    real = worker._video

    def failing(job, pre, limits):
        gen = real(job, pre, limits)
        yield next(gen)  # one chunk of frames reaches the batcher ...
        raise RuntimeError("decoder crashed mid-stream")  # ... then the decoder dies

    monkeypatch.setattr(worker, "_video", failing)
    files = [corpus.videos["carphone"], corpus.originals["coffee"]]
    jobs = make_plan((c for f in files for c in walk(f)), {}).jobs
    done = list(embed_jobs(jobs, create_embedder(device="cpu"), Settings(workers=0, batch_size=64)))
    outcome = {d.job.key: (d.record.status, d.record.error_code) for d in done}
    assert outcome == {str(files[0]): ("failed", "decoder_error"), str(files[1]): ("ok", None)}


class _Held:
    """A decode message of ``n`` pictures."""

    def __init__(self, n: int) -> None:
        self.pixels = np.zeros((n, 1, 1, 1), np.uint8)


def test_threaded_stream_holds_pictures_not_messages_ahead():
    """A video's chunk of frames counts as its frames: 2 chunks of 3 fill a budget of 6, and the producer holds the
    next one in hand (a budget of messages would let 6 chunks, 18 frames, wait)."""
    produced = []

    def chunks():
        for i in range(20):
            produced.append(i)
            yield _Held(3)

    stream = iter(ThreadedStream(chunks(), ahead=6))  # type: ignore[arg-type]
    next(stream)
    _settles(lambda: len(produced))
    assert len(produced) == 1 + 2 + 1  # taken, two waiting, one in the producer's hand
    assert sum(1 for _ in stream) == 19


def _settles(count, deadline: float = 60.0, quiet: float = 0.5) -> None:
    """Wait until ``count()`` stops growing for ``quiet`` seconds (or ``deadline`` passes)."""
    end, last, since = time.monotonic() + deadline, count(), time.monotonic()
    while time.monotonic() < end and time.monotonic() - since < quiet:
        time.sleep(0.05)
        if (now := count()) != last:
            last, since = now, time.monotonic()


@pytest.mark.parametrize("stuck", ["hang", "stall"])
def test_stopping_does_not_wait_for_a_busy_decode_process(corpus, tmp_path, stuck):
    """A consumer that stops (Ctrl-C, an error) does not wait for a hung decoder's next message, nor for the rest
    of a message it began and never finished: the pool is cancelled and its busy process killed."""
    from lookalike.indexer.decode_pool import DecodePool
    from lookalike.indexer.embedders.efficientnet import LITE0_PREPROCESS
    from lookalike.indexer.file_decoding import DecodeLimits, Task
    from lookalike.types import MediaKind
    from tests.indexer.hostile_decoders import decode_or_misbehave

    first = corpus.originals["coffee"]
    hang = tmp_path / f"{stuck}.png"
    hang.write_bytes(first.read_bytes())
    tasks = [Task(0, first, MediaKind.IMAGE), Task(1, hang, MediaKind.IMAGE)]
    limits = DecodeLimits(max_image_pixels=64_000_000, max_image_bytes=2**29, chunk=32)
    pool = DecodePool(tasks, LITE0_PREPROCESS, limits, workers=1, timeout=30, decode=decode_or_misbehave)
    stream = iter(ThreadedStream(pool))
    assert next(stream).job == 0
    time.sleep(1.0)  # the decoder is now hanging on the second file (or in the middle of sending it)
    started = time.monotonic()
    stream.close()
    assert time.monotonic() - started < 5.0
    assert all(not w.process.is_alive() for w in pool._workers)


def test_a_decode_process_runs_ahead_while_the_model_is_busy(corpus, tmp_path, monkeypatch):
    """While a forward pass runs, the decode process goes on decoding the next files, up to two batches ahead.

    Without the reading thread the decode process blocks on its first message (bigger than a pipe's buffer) until
    the forward pass ends, and decoding and inference take turns."""
    import lookalike.indexer.embed as embed
    from lookalike.indexer.decode_pool import DecodePool
    from tests.indexer.hostile_decoders import NOTE_ENV, decode_and_note

    notes = tmp_path / "decoded.txt"
    notes.touch()
    monkeypatch.setenv(NOTE_ENV, str(notes))
    monkeypatch.setattr(embed, "DecodePool", functools.partial(DecodePool, decode=decode_and_note))
    files = sorted(corpus.copies.values())[:24]
    jobs = make_plan((c for f in files for c in walk(f)), {}).jobs
    emb = create_embedder(device="cpu")
    forward = emb.embed_batch
    decoded_during_first_pass = []

    def slow_first(pixels):
        if not decoded_during_first_pass:  # a slow forward pass: the decode process has time for every file
            _settles(lambda: len(notes.read_text().split()), quiet=2.0)
            decoded_during_first_pass.append(len(notes.read_text().split()))
        return forward(pixels)

    monkeypatch.setattr(emb, "embed_batch", slow_first)
    done = list(embed_jobs(jobs, emb, Settings(workers=1, batch_size=4)))
    assert len(jobs) >= 20 and {d.job.key for d in done if d.record.status == "ok"} == {j.key for j in jobs}
    # the first batch's 4, two batches (8 pictures) waiting, and one file in the reading thread's hand
    assert decoded_during_first_pass == [4 + 8 + 1]


def test_an_undecoded_jpeg_weighs_its_bytes_in_model_inputs():
    """On CUDA the decode processes send JPEGs undecoded: a 5 MB photo waits as the 34 model inputs its bytes
    would fill, not as one picture."""
    from pathlib import Path

    from lookalike.indexer.decode import ImageMeta
    from lookalike.indexer.file_decoding import PICTURE_BYTES, EncodedImage, FrameChunk, pictures_in

    meta = ImageMeta(4000, 3000, "JPEG", 1)
    assert (
        pictures_in(EncodedImage(0, Path("a.jpg"), bytes(5_000_000), meta, 1)) == 34 == -(-5_000_000 // PICTURE_BYTES)
    )
    assert pictures_in(EncodedImage(0, Path("a.jpg"), bytes(1000), meta, 1)) == 1
    assert pictures_in(FrameChunk(0, np.zeros((7, 3, 4, 4), np.uint8), np.arange(7.0))) == 7
