"""TIFFs of float samples that Pillow cannot open (RGB float, half and double precision), read with tifffile.

Pillow reads 32-bit float greyscale (mode ``F``) only; a 32-bit float RGB TIFF (what HDR tools and Photoshop's
32-bit mode write) or a 16/64-bit float one is "cannot identify" to it, which made a valid file look corrupt
(issue 12, item 12). tifffile reads those without compiled codecs for uncompressed, Deflate and LZMA data.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from lookalike.errors import DecodeError
from lookalike.indexer.colour import rgb_from_samples


def read_float_tiff(data: bytes, max_pixels: int) -> Image.Image | None:
    """The first page of a float-sample TIFF as an 8-bit RGB picture, or None when the file is not one.

    Samples are scaled by :func:`lookalike.indexer.colour.floats_to_8bit`.

    Args:
        data: the file's bytes.
        max_pixels: refuse larger pages before decoding them (``too_many_pixels``).

    Raises:
        DecodeError: ``too_many_pixels``, ``truncated``, or ``unsupported_format`` (a compression tifffile
            cannot decode without the ``imagecodecs`` package).
    """
    import tifffile

    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tif:
            page = tif.pages.first
            if page.dtype is None or np.dtype(page.dtype).kind != "f":
                return None
            width, height = int(page.imagewidth), int(page.imagelength)
            if width * height > max_pixels:
                raise DecodeError("too_many_pixels", f"{width}x{height} is over the {max_pixels}-pixel limit")
            arr, axes = page.asarray(), page.axes
        if "S" in axes:  # samples last, whether they were stored interleaved or as planes
            arr = np.moveaxis(arr, axes.index("S"), -1)
        return rgb_from_samples(arr.reshape((height, width, -1)))
    except DecodeError:
        raise
    except MemoryError as e:
        raise DecodeError("out_of_memory", "decoding the image needs more memory than the decoder may use") from e
    except (KeyError, ValueError) as e:
        raise DecodeError(_code(str(e)), f"unreadable float TIFF: {e}") from e
    except Exception:
        return None  # not a TIFF tifffile understands either: the caller's verdict stands


def _code(message: str) -> str:
    if "imagecodecs" in message:  # tifffile names the codec package it would need (LZW, float predictor ...)
        return "unsupported_format"
    return "truncated" if "failed to read" in message else "corrupt"
