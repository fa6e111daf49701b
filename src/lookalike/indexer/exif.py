"""What a picture's EXIF says about it (date taken, camera, how much metadata), read without decoding pixels.

EXIF is written by cameras, phones, editors and broken converters alike: dates of ``0000:00:00 00:00:00``, names in
undeclared encodings, tags of the wrong type. Each field is read on its own and one that makes no sense is None;
nothing here raises, so odd metadata never fails a file.
"""

from __future__ import annotations

import re
import unicodedata
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

from PIL import ExifTags, Image, PngImagePlugin, UnidentifiedImageError

from lookalike.indexer.image_formats import image_formats
from lookalike.storage.records import CAMERA_LENGTH, PhotoMetadata

# Which version of this reader filled a catalog row (media.meta_version): rows with an older one (or none) are read
# again on the next index run, without re-embedding. Bump it when what is read changes.
META_VERSION = 1

DATE_TIME_ORIGINAL = 0x9003
DATE_TIME = 0x0132
MAKE = 0x010F
MODEL = 0x0110
# Tags that lay out the pixels (a TIFF's IFD0 holds them) or point at other directories: not metadata.
STRUCTURE = frozenset(
    {254, 255, 256, 257, 258, 259, 262, 266, 273, 277, 278, 279, 284, 317, 322, 323, 324, 325, 338, 339, 513, 514}
    | {ExifTags.IFD.Exif, ExifTags.IFD.GPSInfo, ExifTags.IFD.Interop, 34675}  # 34675: ICC profile (colour)
)
_DATE = re.compile(r"(\d{4})[:-](\d{2})[:-](\d{2})[ T](\d{2}):(\d{2}):(\d{2})")
OLDEST_YEAR = 1826  # the first photograph: an earlier date taken is a camera's unset clock (0001, 1600...)


def _exif(im: Image.Image) -> Image.Exif:
    if isinstance(im, PngImagePlugin.PngImageFile) and "exif" not in im.info:
        # PngImageFile.getexif() decodes the pixels to reach an eXIf chunk after them; before they are loaded (an
        # existing library's fill pass) only the chunks ahead of them are read
        return Image.Image.getexif(im)
    return im.getexif()


def _text(value: Any) -> str | None:
    """An EXIF text as printable text: Pillow hands ASCII tags over as Latin-1; UTF-8 behind them is accepted,
    other bytes are not (a name in an unknown encoding is None, not mojibake)."""
    if isinstance(value, str):
        value = value.encode("latin-1", "replace")
    if not isinstance(value, bytes):
        return None
    try:
        text = value.split(b"\0", 1)[0].decode("utf-8")
    except UnicodeDecodeError:
        return None
    text = " ".join("".join(ch for ch in text if unicodedata.category(ch)[0] != "C").split())
    return text or None


def parse_date(value: Any) -> datetime | None:
    """``2019:05:06 07:08:09`` (EXIF's form; ``-`` and ``T`` are accepted too) as a naive datetime, or None for
    anything else: empty, ``0000:00:00 00:00:00``, month 13, a year before photography."""
    text = _text(value)
    match = _DATE.match(text or "")
    if match is None:
        return None
    try:
        year, month, day, hour, minute, second = (int(g) for g in match.groups())
        taken = datetime(year, month, day, hour, minute, second)
    except ValueError:
        return None
    return taken if taken.year >= OLDEST_YEAR else None


def camera_name(make: Any, model: Any) -> str | None:
    """Make and model as one short name: ``Apple iPhone 12``; ``Canon EOS 5D`` (not ``Canon Canon EOS 5D``) where
    the model already names the make."""
    maker, name = _text(make), _text(model)
    if maker and name and name.lower().startswith(maker.split()[0].lower()):
        maker = None
    joined = " ".join(p for p in (maker, name) if p)
    return joined[:CAMERA_LENGTH].rstrip() or None


def _count(exif: Image.Exif) -> int:
    fields = sum(1 for tag in exif if tag not in STRUCTURE)
    for ifd in (ExifTags.IFD.Exif, ExifTags.IFD.GPSInfo):
        if ifd in exif:
            fields += len(exif.get_ifd(ifd))
    return fields


def _safely(read: Any) -> Any:
    try:
        return read()
    except Exception:  # a directory that points nowhere, a value Pillow cannot unpack: that field is unknown
        return None


def photo_metadata(im: Image.Image) -> PhotoMetadata:
    """What the EXIF of an opened picture says; never raises, never decodes its pixels.

    The date taken is DateTimeOriginal, else DateTime, as the camera's clock showed it (no time zone).
    """
    exif = _safely(lambda: _exif(im))
    if exif is None:
        return PhotoMetadata()
    sub = _safely(lambda: exif.get_ifd(ExifTags.IFD.Exif)) or {}
    taken = _safely(lambda: parse_date(sub.get(DATE_TIME_ORIGINAL))) or _safely(lambda: parse_date(exif.get(DATE_TIME)))
    return PhotoMetadata(
        taken_at=taken,
        camera=_safely(lambda: camera_name(exif.get(MAKE), exif.get(MODEL))),
        exif_fields=_safely(lambda: _count(exif)),
    )


def record_fields(photo: PhotoMetadata) -> dict[str, Any]:
    """``photo`` as the :class:`~lookalike.storage.records.MediaRecord` fields that hold it, marked as read by this
    reader (a video's empty metadata too: there is nothing more to read from it)."""
    return {
        "taken_at": photo.taken_at,
        "camera": photo.camera,
        "exif_fields": photo.exif_fields,
        "meta_version": META_VERSION,
    }


def read_photos_metadata(paths: Sequence[Path], threads: int = 4) -> list[PhotoMetadata | None]:
    """What image files' EXIF says, from their headers alone (no pixels decoded), read on ``threads`` threads
    (mostly waiting on the disk): empty metadata for a file that is not an image by its header (it will not become
    one), None for one that cannot be read now (gone, no permission: tried again on the next run). An indexed
    library that predates the metadata columns is filled with this."""
    with warnings.catch_warnings():  # set once here, not in the threads (the filters are the process's)
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # a big picture's pixels are not decoded
        with ThreadPoolExecutor(max_workers=threads) as pool:
            return list(pool.map(_read_photo_metadata, paths))


def _read_photo_metadata(path: Path) -> PhotoMetadata | None:
    try:
        with Image.open(path, formats=image_formats()) as im:
            return photo_metadata(im)
    except UnidentifiedImageError:
        return PhotoMetadata()
    except OSError:
        return None
    except Exception:  # a header Pillow cannot make sense of: no metadata, not retried
        return PhotoMetadata()
