"""Which image formats Pillow may open: an allow-list, with the plugins that depend on the build registered lazily."""

from __future__ import annotations

from PIL import Image

IMAGE_FORMATS = ("JPEG", "MPO", "PNG", "WEBP", "GIF", "BMP", "TIFF", "AVIF", "HEIF")  # HEIF: pillow-heif


def _register_heif() -> None:
    """Let Pillow open HEIC/HEIF files (pillow-heif), on the first image opened rather than at import."""
    if "HEIF" in Image.OPEN:
        return
    try:
        from pillow_heif import register_heif_opener
    except ImportError:  # not installed: HEIF files are reported as unsupported
        return
    register_heif_opener()


def image_formats() -> list[str]:
    """The allowed formats this Pillow build can open (MPO, AVIF and HEIF depend on it)."""
    Image.init()  # register every plugin so the allow-list names resolve (idempotent)
    _register_heif()
    return [f for f in IMAGE_FORMATS if f in Image.OPEN]  # MPO, AVIF and HEIF depend on the build
