"""Decode streams: worker processes and the background thread give the same results; errors and early stops."""

from __future__ import annotations

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
