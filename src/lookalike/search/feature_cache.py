"""Local features of catalogued images for verification, read from the files on first use and kept while a run
verifies (:mod:`lookalike.search.image_dupes`, :mod:`lookalike.search.searcher`)."""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path

from lookalike.errors import LookalikeError
from lookalike.indexer.decode import load_image
from lookalike.indexer.plan import key_path
from lookalike.search.features import MAX_SIDE, Features, extract
from lookalike.storage.records import MediaRecord

log = logging.getLogger(__name__)

CACHE = 2048  # pictures whose features are kept while verifying (about 0.8 MB each)


class FeatureCache:
    """Local features of catalogued images, extracted on first use from the files, least recently used dropped.

    A file that cannot be read or decoded any more (moved, changed, broken) has no features: its pairs are not
    verified, and the reason is logged once.
    """

    def __init__(self, records: dict[int, MediaRecord], size: int = CACHE) -> None:
        self.records = records
        self.size = size
        self._items: OrderedDict[int, Features | None] = OrderedDict()

    def get(self, media_id: int) -> Features | None:
        """The features of one file, or None when it cannot be decoded."""
        if media_id in self._items:
            self._items.move_to_end(media_id)
            return self._items[media_id]
        feats = self._load(media_id)
        self._items[media_id] = feats
        if len(self._items) > self.size:
            self._items.popitem(last=False)
        return feats

    def _load(self, media_id: int) -> Features | None:
        rec = self.records[media_id]
        try:
            return features_of(key_path(rec.path))  # a name that is not UTF-8 is stored as its bytes
        except (LookalikeError, OSError) as e:
            log.warning("%s: not verified: %s", rec.path, e)
            return None


def features_of(path: Path, max_pixels: int = 64_000_000, max_bytes: int = 512 << 20) -> Features:
    """Local features of an image file, decoded as verification needs it (JPEG at a reduced scale still at least
    :data:`~lookalike.search.features.MAX_SIDE` on its short side) and reported in the file's own pixels, with a
    JPEG's quality setting.

    Raises:
        DecodeError: the file cannot be decoded as an image.
    """
    image, meta = load_image(path, max_pixels=max_pixels, max_bytes=max_bytes, draft=MAX_SIDE)
    return replace(extract(image, (meta.width, meta.height)), quality=meta.quality)
