"""Decode images (Pillow) into upright RGB pictures, or fail precisely (videos: ``video_decode``)."""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import filetype
from PIL import Image, ImageOps, UnidentifiedImageError

from lookalike.errors import DecodeError
from lookalike.indexer.colour import AlphaRule, to_rgb
from lookalike.indexer.exif import photo_metadata
from lookalike.indexer.float_tiff import read_float_tiff
from lookalike.indexer.image_formats import image_formats
from lookalike.indexer.jpeg_quality import jpeg_quality
from lookalike.storage.records import PhotoMetadata

# Formats we decode; Pillow can open more (PDF, EPS, PSD, FITS ...) but those are not photos or frames.
ANIMATED_FORMATS = frozenset({"GIF", "WEBP", "PNG"})  # their frames are an animation (TIFF pages, HEIF images: not)
_SNIFFABLE = {"JPG", "PNG", "WEBP", "GIF", "BMP", "TIF", "AVIF", "HEIC"}


@dataclass(frozen=True, slots=True)
class ImageMeta:
    """What decoding learned about an image file (size of the upright, full-resolution picture)."""

    width: int
    height: int
    format: str
    n_frames: int
    photo: PhotoMetadata = field(default_factory=PhotoMetadata)  # what its EXIF says
    quality: int | None = None  # a JPEG's quality setting, estimated from its quantization table


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
    size = (height, width) if swapped else (width, height)
    return pictures, ImageMeta(*size, fmt, n_frames, photo, jpeg_quality(im))


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
    size = (height, width) if swapped else (width, height)
    meta = ImageMeta(*size, "JPEG", 1, photo_metadata(im), jpeg_quality(im))
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
