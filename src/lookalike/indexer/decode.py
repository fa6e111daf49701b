"""Decode images (Pillow) and sample video frames (PyAV) into upright RGB pictures, or fail precisely."""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import filetype
from PIL import Image, ImageOps, UnidentifiedImageError

from lookalike.errors import DecodeError
from lookalike.indexer.colour import AlphaRule, to_rgb
from lookalike.indexer.exif import photo_metadata
from lookalike.indexer.float_tiff import read_float_tiff
from lookalike.indexer.image_formats import image_formats
from lookalike.storage.records import PhotoMetadata

# Formats we decode; Pillow can open more (PDF, EPS, PSD, FITS ...) but those are not photos or frames.
ANIMATED_FORMATS = frozenset({"GIF", "WEBP", "PNG"})  # their frames are an animation (TIFF pages, HEIF images: not)
# Demuxers allowed to open a "video"; playlists and concat scripts (which read other files) are not.
VIDEO_DEMUXERS = "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi,mpegts"  # mpegts: AVCHD .mts/.m2ts
_SNIFFABLE = {"JPG", "PNG", "WEBP", "GIF", "BMP", "TIF", "AVIF", "HEIC"}
MAX_BAD_PACKETS = 1000  # past this many undecodable packets a video is treated as corrupt


@dataclass(frozen=True, slots=True)
class ImageMeta:
    """What decoding learned about an image file (size of the upright, full-resolution picture)."""

    width: int
    height: int
    format: str
    n_frames: int
    photo: PhotoMetadata = field(default_factory=PhotoMetadata)  # what its EXIF says


@dataclass(frozen=True, slots=True)
class VideoMeta:
    """What decoding learned about a video file."""

    width: int
    height: int
    duration: float | None
    fps: float | None
    n_frames: int


@dataclass(frozen=True, slots=True)
class Frame:
    """One sampled video frame: presentation time in seconds and the upright RGB picture."""

    time: float
    image: Image.Image


def _upright(im: Image.Image) -> Image.Image:
    try:
        return ImageOps.exif_transpose(im) or im
    except Exception:
        return im


def load_image(
    path: Path,
    *,
    data: bytes | None = None,
    max_pixels: int = 64_000_000,
    max_bytes: int = 512 << 20,
    draft: int | None = None,
    alpha: AlphaRule = AlphaRule.CONTRAST,
) -> tuple[Image.Image, ImageMeta]:
    """Decode an image file to an upright RGB picture (an animation's first frame); arguments and errors as
    :func:`load_frames`."""
    frames, meta = load_frames(
        path, data=data, max_pixels=max_pixels, max_bytes=max_bytes, draft=draft, alpha=alpha, frames=1
    )
    return frames[0], meta


def load_frames(
    path: Path,
    *,
    data: bytes | None = None,
    max_pixels: int = 64_000_000,
    max_bytes: int = 512 << 20,
    draft: int | None = None,
    alpha: AlphaRule = AlphaRule.CONTRAST,
    frames: int = 1,
) -> tuple[list[Image.Image], ImageMeta]:
    """Decode an image file to upright RGB pictures: a still's one picture, or up to ``frames`` frames of an
    animation (GIF, WebP, APNG) spread evenly over it, its first and last included.

    A frame of an animation past the first that cannot be decoded ends it there, as a video's bad packets do.
    With ``draft``, an animation's frames are also reduced (by a whole factor) to about that short side.

    Args:
        path: the file (used for reading when ``data`` is None, and in messages).
        data: the file's bytes, when the caller already read them.
        max_pixels: refuse larger pictures before decoding them (``too_many_pixels``).
        max_bytes: refuse larger files before reading them (``too_large``).
        draft: the short side the pictures are wanted at (JPEG decodes at a reduced scale above it).
        alpha: what transparent pixels are composited onto (a collection's stored rule when embedding).
        frames: how many frames of an animation to return at most.

    Raises:
        DecodeError: with code ``unidentified_format``, ``unsupported_format``, ``too_large``,
            ``too_many_pixels``, ``out_of_memory``, ``truncated`` or ``corrupt``.
    """
    data = _read(path, data, max_bytes)
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        warnings.simplefilter("ignore", UserWarning)
        im = _open(data, max_pixels)
        width, height = im.size
        if width * height > max_pixels:
            raise DecodeError("too_many_pixels", f"{width}x{height} is over the {max_pixels}-pixel limit")
        n_frames = int(getattr(im, "n_frames", 1) or 1)
        fmt = im.format or "?"
        if draft and fmt in ("JPEG", "MPO"):
            short = min(width, height)
            scale = max(1, short // draft)
            im.draft("RGB", (max(1, width // scale), max(1, height // scale)))
        _load(im, complete=fmt in ("JPEG", "MPO") and _ends_whole(data))
        upright = _upright(im)
        photo = photo_metadata(im)  # after _upright, which parsed the EXIF already
        pictures = [to_rgb(upright, alpha)]
        if frames > 1 and n_frames > 1 and fmt in ANIMATED_FORMATS:
            later = _later_frames(im, spread_frames(n_frames, frames)[1:], alpha)
            pictures = [_reduced(p, draft) for p in pictures + later]
    swapped = upright.size != im.size and upright.size == im.size[::-1]
    return pictures, ImageMeta(height if swapped else width, width if swapped else height, fmt, n_frames, photo)


_ORIENTATION = 0x0112


def peek_jpeg(
    path: Path, *, max_pixels: int = 64_000_000, max_bytes: int = 512 << 20
) -> tuple[bytes, ImageMeta, int] | None:
    """A still 8-bit RGB or grey JPEG read but not decoded: its bytes, what decoding would learn, and its EXIF
    orientation (1-8), for a decoder elsewhere (the GPU's). None for any other file, or a JPEG not ending in its
    end-of-image marker (cut short: Pillow's decode reports it as ``truncated``).

    Raises:
        DecodeError: as :func:`load_frames`, for the checks made before decoding.
    """
    data = _read(path, None, max_bytes)
    if data[:3] != b"\xff\xd8\xff" or not _ends_whole(data):
        return None
    with warnings.catch_warnings():  # as load_frames: past Pillow's bomb limit is too_many_pixels, not a warning
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        im = _open(data, max_pixels)
    width, height = im.size
    if im.format != "JPEG" or im.mode not in ("RGB", "L") or width * height > max_pixels:
        return None
    try:
        orientation = int(im.getexif().get(_ORIENTATION, 1))
    except Exception:  # an EXIF block Pillow cannot parse: the CPU decoder leaves such a picture as stored too
        orientation = 1
    orientation = orientation if 1 <= orientation <= 8 else 1
    swapped = orientation in (5, 6, 7, 8)
    meta = ImageMeta(height if swapped else width, width if swapped else height, "JPEG", 1, photo_metadata(im))
    return data, meta, orientation


def spread_frames(n_frames: int, count: int) -> list[int]:
    """At most ``count`` frame numbers spread evenly over ``n_frames`` frames, the first and the last included."""
    if count <= 1 or n_frames <= 1:
        return [0]
    if n_frames <= count:
        return list(range(n_frames))
    return sorted({round(i * (n_frames - 1) / (count - 1)) for i in range(count)})


def _later_frames(im: Image.Image, numbers: list[int], alpha: AlphaRule) -> list[Image.Image]:
    out = []
    for number in numbers:
        try:
            im.seek(number)
            _load(im)
        except (DecodeError, EOFError, OSError, ValueError, SyntaxError):
            break  # a damaged frame ends the animation; the frames before it stand
        out.append(to_rgb(_upright(im), alpha))
    return out


def _reduced(im: Image.Image, short_side: int | None) -> Image.Image:
    """``im`` shrunk by a whole factor while its short side stays at least ``short_side`` (a frame of an
    animation: several are held at once)."""
    factor = min(im.size) // short_side if short_side else 1
    return im.reduce(factor) if factor > 1 else im


def _read(path: Path, data: bytes | None, max_bytes: int) -> bytes:
    if data is None:
        size = os.stat(path).st_size
        if size > max_bytes:
            raise DecodeError("too_large", f"{size} bytes is over the {max_bytes}-byte limit for images")
        data = Path(path).read_bytes()
    if len(data) > max_bytes:
        raise DecodeError("too_large", f"{len(data)} bytes is over the {max_bytes}-byte limit for images")
    if not data:
        raise DecodeError("unidentified_format", "empty file")
    return data


def _open(data: bytes, max_pixels: int) -> Image.Image:
    formats = image_formats()
    try:
        return Image.open(io.BytesIO(data), formats=formats)
    except Image.DecompressionBombError as e:
        raise DecodeError("too_many_pixels", str(e)) from e
    except Image.DecompressionBombWarning as e:
        raise DecodeError("too_many_pixels", str(e)) from e
    except UnidentifiedImageError as e:
        sniffed = filetype.guess(data[:262])
        if sniffed is not None and sniffed.mime.startswith("image/") and sniffed.extension.upper() in _SNIFFABLE:
            floats = read_float_tiff(data, max_pixels) if sniffed.extension == "tif" else None
            if floats is not None:
                floats.format = "TIFF"
                return floats
            raise DecodeError("corrupt", f"a {sniffed.extension.upper()} file with a damaged header") from e
        try:
            other = Image.open(io.BytesIO(data))
        except Exception:
            raise DecodeError("unidentified_format", "not an image file Pillow recognises") from e
        raise DecodeError("unsupported_format", f"{other.format} files are not indexed") from e
    except (OSError, SyntaxError, ValueError) as e:
        code = "truncated" if "runcated" in str(e) else "corrupt"
        raise DecodeError(code, f"unreadable image header: {e}") from e


def _ends_whole(jpeg: bytes) -> bool:
    """Whether a JPEG's data ends with its end-of-image marker (padding aside): it was not cut short."""
    return jpeg.rstrip(b"\0")[-2:] == b"\xff\xd9"


def _load(im: Image.Image, complete: bool = False) -> None:
    # ImageFile.LOAD_TRUNCATED_IMAGES stays at Pillow's default (False): a cut file is an error, not grey. Pillow
    # says "broken data stream" for cut and damaged data alike: a file that ends whole (complete) is damaged.
    try:
        im.load()
    except Image.DecompressionBombWarning as e:
        raise DecodeError("too_many_pixels", str(e)) from e
    except OSError as e:
        msg = str(e)
        cut = "truncated" in msg or "broken data stream" in msg or "unrecognized data" in msg
        code = "truncated" if cut and not complete else "corrupt"
        raise DecodeError(code, msg) from e
    except (SyntaxError, ValueError, EOFError) as e:
        raise DecodeError("corrupt", str(e) or type(e).__name__) from e
    except MemoryError as e:
        raise DecodeError("out_of_memory", "decoding the image needs more memory than the decoder may use") from e


def _open_video(path: Path):
    import av

    try:
        return av.open(str(path), mode="r", options={"format_whitelist": VIDEO_DEMUXERS})
    except av.error.InvalidDataError as e:
        raise DecodeError("corrupt", "not a video container FFmpeg can read") from e
    except av.error.FFmpegError as e:
        raise DecodeError("corrupt", f"cannot open video: {e}") from e


def _video_stream(container):
    import av

    for stream in container.streams.video:
        if stream.disposition & av.stream.Disposition.attached_pic:
            continue  # cover art, not video
        return stream
    raise DecodeError("no_video_stream", "the file has no video stream")


def _scaled(width: int, height: int, short_side: int | None) -> tuple[int, int]:
    if not short_side or min(width, height) <= short_side:
        return width, height
    scale = short_side / min(width, height)
    return max(2, round(width * scale)), max(2, round(height * scale))


def _stream_meta(container, stream) -> VideoMeta:
    tb = float(stream.time_base) if stream.time_base else 0.0
    duration = (
        float(stream.duration * tb)
        if stream.duration and tb
        else (container.duration / 1e6 if container.duration else None)
    )
    fps = float(stream.average_rate) if stream.average_rate else None
    width, height = stream.codec_context.width, stream.codec_context.height
    return VideoMeta(width, height, duration, fps, int(stream.frames or 0))


def video_meta(path: Path) -> VideoMeta:
    """A video's metadata from its header alone (nothing decoded): how long it is, to split it into parts.

    Raises:
        DecodeError: ``corrupt`` or ``no_video_stream``.
    """
    container = _open_video(path)
    try:
        return _stream_meta(container, _video_stream(container))
    finally:
        container.close()


def sample_frames(
    path: Path, frame_rate: float = 1.0, short_side: int | None = 256, start: float = 0.0, end: float | None = None
) -> tuple[VideoMeta, Iterator[Frame]]:
    """Open a video and sample frames at ``frame_rate`` per second by decoding it sequentially.

    Sequential decoding beats seeking on long GOPs. Frames are scaled by FFmpeg so the short side is about
    ``short_side`` pixels, and turned upright when the stream carries a rotation.

    A part of a video (``start`` > 0 or ``end``, in seconds) yields exactly the frames of the whole video's
    sampling whose times fall in [start, end): whether a frame is sampled depends only on its time and the time of
    the frame before it, so the part seeks to a keyframe before ``start`` and decodes forward from there. Parts
    that tile a video yield its frames once each; a part may yield none.

    Returns:
        the stream's metadata, and an iterator of frames (decode errors mid-stream end it; the whole video, or its
        first part, produces at least one frame or raises a DecodeError).

    Raises:
        DecodeError: ``corrupt``, ``no_video_stream`` or ``no_frames``.
    """
    import av

    container = _open_video(path)
    try:
        stream = _video_stream(container)
    except DecodeError:
        container.close()
        raise
    stream.thread_type = "AUTO"
    tb = float(stream.time_base) if stream.time_base else 0.0
    meta = _stream_meta(container, stream)
    step = 1.0 / frame_rate
    whole = start <= 0 and end is None
    first_part = start <= 0
    if start > 0 and tb:
        origin = float(stream.start_time * tb) if stream.start_time is not None else 0.0
        with contextlib.suppress(av.error.FFmpegError):  # the frame before ``start`` too: it decides the first
            container.seek(int((origin + max(0.0, start - step)) / tb), stream=stream, backward=True, any_frame=False)

    def decoded() -> Iterator[av.VideoFrame]:
        """Frames in order; a packet that fails to decode is skipped (counted), not the end of the video."""
        bad = 0
        for packet in container.demux(stream):
            try:
                yield from packet.decode()
            except av.error.InvalidDataError:
                bad += 1
                if bad > MAX_BAD_PACKETS:
                    raise
        with contextlib.suppress(av.error.InvalidDataError):
            yield from stream.decode(None)  # flush the decoder

    def frames() -> Iterator[Frame]:
        produced = 0
        next_t = 0.0
        origin = float(stream.start_time * tb) if stream.start_time is not None and tb else 0.0
        try:
            for frame in decoded():
                t = (float(frame.pts * tb) - origin) if frame.pts is not None and tb else produced * step
                if end is not None and t >= end:
                    break
                if t + 1e-6 < next_t:
                    continue
                while next_t <= t + 1e-6:
                    next_t += step
                if t < start:
                    continue  # sampled before the part: only its time mattered
                w, h = _scaled(frame.width, frame.height, short_side)
                image = frame.to_image(width=w, height=h) if (w, h) != (frame.width, frame.height) else frame.to_image()
                rotation = int(getattr(frame, "rotation", 0) or 0)
                if rotation % 360:
                    image = image.rotate(rotation, expand=True)
                produced += 1
                yield Frame(max(0.0, t), image)
        except av.error.FFmpegError as e:
            if produced == 0 and first_part:
                raise DecodeError("corrupt", f"no frame could be decoded: {e}") from e
        finally:
            container.close()
        if produced == 0 and whole:
            raise DecodeError("no_frames", "the video stream holds no decodable frame")

    return meta, frames()


def frame_at(path: Path, time: float, short_side: int | None = 256) -> Image.Image:
    """The frame of a video shown at ``time`` seconds (the last frame when ``time`` is past the end).

    Seeks to the keyframe before ``time`` and decodes forward to it: a thumbnail of one moment, not a scan.

    Raises:
        DecodeError: ``corrupt``, ``no_video_stream`` or ``no_frames``.
    """
    import av

    container = _open_video(path)
    try:
        stream = _video_stream(container)
        tb = float(stream.time_base) if stream.time_base else 0.0
        start = float(stream.start_time * tb) if stream.start_time is not None and tb else 0.0
        target = start + max(0.0, time)
        if tb and time > 0:
            with contextlib.suppress(av.error.FFmpegError):
                container.seek(int(target / tb), stream=stream, backward=True, any_frame=False)
        chosen = None
        for frame in container.decode(stream):
            chosen = frame
            if frame.pts is None or not tb or frame.pts * tb >= target - 1e-3:
                break
        if chosen is None:
            raise DecodeError("no_frames", f"no frame could be decoded at {time:.2f} s")
        w, h = _scaled(chosen.width, chosen.height, short_side)
        image = chosen.to_image(width=w, height=h) if (w, h) != (chosen.width, chosen.height) else chosen.to_image()
        rotation = int(getattr(chosen, "rotation", 0) or 0)
        return image.rotate(rotation, expand=True) if rotation % 360 else image
    except av.error.FFmpegError as e:
        raise DecodeError("corrupt", f"no frame could be decoded at {time:.2f} s: {e}") from e
    finally:
        container.close()
