"""Media descriptors: how pictures and sampled video frames are cleaned before embedding, stored with the collection.

Copies of a picture often come with borders added: a letterbox, a mat, the photo shown small on a plain canvas.
Uniform borders of any colour are cut off every picture before it is embedded (:func:`trim_uniform_borders`), so
the copy and its original describe the same pixels.

Copies of a video often come letterboxed, pillarboxed, mirrored or in grayscale. Black bars are cut off each frame
before it is embedded (:func:`trim_borders`), and with ``mirror`` a frame's vector is the mean of its own and its
horizontal mirror's (the embedding side does that), so a flipped copy gets the same vectors. ``grayscale`` (off by
default) embeds frames without colour. Each choice was measured on ``benchmarks/video_copies.py``
(benchmarks/RESULTS.md) and ``benchmarks/dupes_quality.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from lookalike.indexer.colour import AlphaRule
from lookalike.indexer.decode import ImageMeta, load_frames
from lookalike.indexer.pooling import Segment, pool_segments, pool_video, unit_rows

if TYPE_CHECKING:
    from lookalike.config import Settings

BLACK = 24  # luma at or below which a row or column of a bar counts as black (video black is 16, plus noise)
MIN_BAR = 0.02  # bars thinner than this fraction of the side are left alone
MIN_CONTENT = 0.3  # never cut a frame down to less than this fraction of a side (a dark scene is not a bar)


@dataclass(frozen=True)
class MediaDescriptor:
    """How a collection turns pictures and videos into vectors; queries must use the same.

    Attributes:
        trim_images: cut uniform borders of any colour off pictures before embedding.
        frame_rate: frames sampled per second.
        segment_seconds: length of the windows frame vectors are mean-pooled into.
        trim_borders: cut black bars off frames before embedding.
        mirror: average each frame's vector with its horizontal mirror's (flip-invariant vectors).
        grayscale: embed frames in grayscale (colour-invariant vectors, less discriminative).
        alpha: what transparent pixels of pictures are composited onto.
        animation_frames: frames of an animated picture whose vectors are averaged into its one vector.
    """

    frame_rate: float = 1.0
    segment_seconds: float = 2.0
    trim_borders: bool = True
    mirror: bool = True
    grayscale: bool = False
    trim_images: bool = True
    alpha: AlphaRule = AlphaRule.CONTRAST
    animation_frames: int = 8

    def to_pooling(self) -> dict[str, Any]:
        """The JSON stored with the collection."""
        return {
            "frame_rate": self.frame_rate,
            "segment_seconds": self.segment_seconds,
            "method": "mean",
            "trim_borders": self.trim_borders,
            "mirror": self.mirror,
            "grayscale": self.grayscale,
            "trim_images": self.trim_images,
            "alpha": self.alpha.value,
            "animation_frames": self.animation_frames,
        }

    @classmethod
    def from_settings(cls, settings: Settings) -> MediaDescriptor:
        """The descriptor a new collection gets from the settings."""
        return cls(
            frame_rate=settings.frame_rate,
            segment_seconds=settings.segment_seconds,
            trim_borders=settings.trim_borders,
            mirror=settings.mirror,
            grayscale=settings.grayscale,
            trim_images=settings.trim_images,
        )

    @classmethod
    def from_pooling(cls, pooling: dict[str, Any]) -> MediaDescriptor:
        """What a collection stored. A collection lacking a key was made before that setting existed and keeps
        the behaviour of then: no trimming, no mirroring, transparency on white, an animation's first frame."""
        return cls(
            frame_rate=float(pooling.get("frame_rate", 1.0)),
            segment_seconds=float(pooling.get("segment_seconds", 2.0)),
            trim_borders=bool(pooling.get("trim_borders", False)),
            mirror=bool(pooling.get("mirror", False)),
            grayscale=bool(pooling.get("grayscale", False)),
            trim_images=bool(pooling.get("trim_images", False)),
            alpha=AlphaRule(pooling.get("alpha", AlphaRule.WHITE)),
            animation_frames=int(pooling.get("animation_frames", 1)),
        )

    def clean(self, image: Image.Image) -> Image.Image:
        """A sampled frame as it is embedded: bars trimmed, in grayscale when asked."""
        if self.trim_borders:
            image = trim_borders(image)
        return image.convert("L").convert("RGB") if self.grayscale else image

    def clean_image(self, image: Image.Image) -> Image.Image:
        """A picture as it is embedded: uniform borders trimmed."""
        return trim_uniform_borders(image) if self.trim_images else image

    def pictures(
        self, path: Path, *, max_pixels: int, max_bytes: int, draft: int | None = None
    ) -> tuple[list[Image.Image], ImageMeta]:
        """An image file as the pictures that are embedded: decoded with this collection's transparency rule, its
        frames when it is animated, each cleaned; their vectors are pooled by :func:`pool_pictures`.

        Raises:
            DecodeError: as :func:`lookalike.indexer.decode.load_frames`.
        """
        frames, meta = load_frames(
            path,
            max_pixels=max_pixels,
            max_bytes=max_bytes,
            draft=draft,
            alpha=self.alpha,
            frames=self.animation_frames,
        )
        return [self.clean_image(f) for f in frames], meta


@dataclass(frozen=True)
class VideoDescription:
    """A video as it is stored and searched: segment vectors in time order, the whole-video vector, and where the
    video ends (seconds)."""

    segments: list[Segment]
    vector: np.ndarray
    end: float


def describe_video(
    times: np.ndarray, vectors: np.ndarray, duration: float | None, descriptor: MediaDescriptor
) -> VideoDescription:
    """Frame vectors (as :func:`embed_frames` makes them, in any order) pooled into what a video is stored and
    searched as; the indexer and the searcher both call this, so a query video is described as indexed ones are.

    Args:
        times: each frame's time (seconds).
        vectors: (n, dim) unit frame vectors.
        duration: the video's length when its container says (clips the last segment).
        descriptor: the collection's settings (segment length, frame rate).
    """
    order = np.argsort(times, kind="stable")
    times, vectors = np.asarray(times)[order], vectors[order]
    step = 1.0 / descriptor.frame_rate
    segments = pool_segments(times, vectors, descriptor.segment_seconds, step, duration)
    end = duration if duration else float(times[-1]) + step
    return VideoDescription(segments, pool_video(vectors), float(end))


def embed_frames(embed: Callable[[np.ndarray], np.ndarray], pixels: np.ndarray, mirror: bool) -> np.ndarray:
    """Frame vectors of a uint8 (n, 3, H, W) block as a collection makes them: with ``mirror``, each the normalised
    mean of the frame's and its horizontal mirror's (``embed`` runs one pass over both)."""
    return fold_mirrors(embed(with_mirrors(pixels))) if mirror else embed(pixels)


def pool_pictures(vectors: np.ndarray) -> np.ndarray:
    """An image's one vector from the vectors of its :meth:`MediaDescriptor.pictures` (a still's is its own)."""
    return vectors[0] if len(vectors) == 1 else unit_rows(vectors.mean(axis=0))


def with_mirrors(pixels: np.ndarray) -> np.ndarray:
    """A uint8 (n, 3, H, W) block followed by its n horizontal mirror images (embed them all in one pass)."""
    return np.concatenate([pixels, pixels[..., ::-1]])


def fold_mirrors(vectors: np.ndarray) -> np.ndarray:
    """The 2n vectors of a :func:`with_mirrors` block as n flip-invariant vectors (normalised means)."""
    half = len(vectors) // 2
    return unit_rows(vectors[:half] + vectors[half:])


def _content_span(dark: np.ndarray) -> tuple[int, int] | None:
    """First and one-past-last index of the non-dark lines, or None when nothing should be cut."""
    n = len(dark)
    lit = np.flatnonzero(~dark)
    if len(lit) == 0:
        return None
    first, last = int(lit[0]), int(lit[-1]) + 1
    if last - first < MIN_CONTENT * n or (first < MIN_BAR * n and n - last < MIN_BAR * n):
        return None
    return first, last


def trim_borders(image: Image.Image) -> Image.Image:
    """``image`` without black letterbox/pillarbox bars (unchanged when there are none)."""
    luma = np.asarray(image.convert("L"), dtype=np.uint8)
    if luma.size == 0:
        return image
    rows = _content_span(np.percentile(luma, 98, axis=1) <= BLACK)
    cols = _content_span(np.percentile(luma, 98, axis=0) <= BLACK)
    if rows is None and cols is None:
        return image
    top, bottom = rows or (0, luma.shape[0])
    left, right = cols or (0, luma.shape[1])
    return image.crop((left, top, right, bottom))


UNIFORM = 12  # a border line's pixels differ from the border colour by at most this (any channel)
PROBE = 256  # borders are looked for on a copy of this long side


def trim_uniform_borders(image: Image.Image) -> Image.Image:
    """``image`` without uniform borders of one colour (letterbox, mat, canvas); unchanged when there are none."""
    box = content_box(image)
    return image if box is None else image.crop(box)


def content_box(image: Image.Image, probe: int = PROBE) -> tuple[int, int, int, int] | None:
    """The box of ``image`` inside uniform borders of one colour, or None when it has none.

    The border colour is the one all four corners share (a photo whose corners differ has no frame); a line is
    border when nearly all of its pixels are that colour. Borders are looked for on a copy ``probe`` pixels long
    (the box is as precise as that).
    """
    w, h = image.size
    if w < 8 or h < 8:
        return None
    small = image.convert("RGB")
    small.thumbnail((probe, probe), Image.Resampling.BILINEAR)
    return box_in_probe(np.asarray(small, dtype=np.int16), w, h)


def probe_size(w: int, h: int, probe: int = PROBE) -> tuple[int, int]:
    """The (width, height) of the copy :func:`content_box` looks for borders on (never larger than the picture)."""
    if max(w, h) <= probe:
        return w, h
    return (probe, max(1, round(h * probe / w))) if w >= h else (max(1, round(w * probe / h)), probe)


def box_in_probe(arr: np.ndarray, w: int, h: int) -> tuple[int, int, int, int] | None:
    """:func:`content_box` of a ``w`` x ``h`` picture, given its small copy as an int16 (ph, pw, 3) array."""
    corners = arr[[0, 0, -1, -1], [0, -1, 0, -1]]
    colour = np.median(corners, axis=0)
    if np.abs(corners - colour).max() > UNIFORM:
        return None
    off = np.abs(arr - colour).max(axis=2) > UNIFORM
    rows = _content_span(np.mean(off, axis=1) <= 0.02)
    cols = _content_span(np.mean(off, axis=0) <= 0.02)
    if rows is None and cols is None:
        return None
    ph, pw = off.shape
    top, bottom = rows or (0, ph)
    left, right = cols or (0, pw)
    sx, sy = w / pw, h / ph
    return int(left * sx), int(top * sy), min(w, round(right * sx)), min(h, round(bottom * sy))
