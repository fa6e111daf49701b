"""Query files decoded in worker processes: the same messages as the indexer's, and a crash or hang fails one query."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from lookalike.indexer.describe import MediaDescriptor
from lookalike.indexer.embedders.registry import create_embedder
from lookalike.indexer.file_decoding import DecodeLimits, Failed, FrameChunk, ImageItem, Task, VideoEnd, decode_job
from lookalike.indexer.query_decoder import QueryDecoder
from lookalike.types import MediaKind
from tests.indexer.hostile_decoders import decode_or_misbehave

pytestmark = pytest.mark.catalog_free  # opens no catalog: the PostgreSQL run leaves it out


@pytest.fixture(scope="module")
def pre():
    return create_embedder("efficientnet_lite0", device="cpu").preprocess


LIMITS = DecodeLimits(64_000_000, 512 * 2**20, 16, MediaDescriptor(trim_borders=True, mirror=True))


def test_messages_equal_in_process_decoding(corpus, pre):
    with_pool = QueryDecoder(workers=1, timeout=30, memory_bytes=2**32)
    try:
        image = with_pool.decode(corpus.originals["coffee"], MediaKind.IMAGE, pre, LIMITS)
        video = with_pool.decode(corpus.videos["bikes_excerpt"], MediaKind.VIDEO, pre, LIMITS)
    finally:
        with_pool.close()
    local_image = list(decode_job(Task(0, corpus.originals["coffee"], MediaKind.IMAGE), pre, LIMITS))
    local_video = list(decode_job(Task(0, corpus.videos["bikes_excerpt"], MediaKind.VIDEO), pre, LIMITS))
    assert isinstance(image[0], ImageItem)
    assert np.array_equal(image[0].pixels, local_image[0].pixels)
    frames = np.concatenate([m.pixels for m in video if isinstance(m, FrameChunk)])
    local_frames = np.concatenate([m.pixels for m in local_video if isinstance(m, FrameChunk)])
    assert np.array_equal(frames, local_frames) and len(frames) == 4
    assert isinstance(video[-1], VideoEnd)


def test_a_crash_or_a_hang_fails_that_query_and_the_next_one_works(corpus, pre, tmp_path):
    crash = shutil.copy(corpus.originals["rocket"], tmp_path / "segfault.png")
    hang = shutil.copy(corpus.originals["rocket"], tmp_path / "hang.png")
    decoder = QueryDecoder(workers=1, timeout=3, decode=decode_or_misbehave)
    try:
        crashed = decoder.decode(crash, MediaKind.IMAGE, pre, LIMITS)
        assert isinstance(crashed[0], Failed) and crashed[0].code == "decoder_crashed"
        assert "SIGSEGV" in crashed[0].message
        ok = decoder.decode(corpus.originals["rocket"], MediaKind.IMAGE, pre, LIMITS)
        assert isinstance(ok[0], ImageItem)
        hung = decoder.decode(hang, MediaKind.IMAGE, pre, LIMITS)
        assert isinstance(hung[0], Failed) and hung[0].code == "decode_timeout"
        ok = decoder.decode(corpus.originals["chelsea"], MediaKind.IMAGE, pre, LIMITS)
        assert isinstance(ok[0], ImageItem)
    finally:
        decoder.close()
