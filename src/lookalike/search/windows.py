"""Parts of a query picture, searched on their own for a verified search.

A collage, a picture-in-picture or a screenshot holds the picture it was made from in a part of its frame, so its
whole vector is far from that picture's: on the dev half of ``benchmarks.dupes_quality`` the originals of 6 of the
8 copies a verified search missed were beyond rank 40 of the whole query's hits, and each was among the 10 nearest of
a window around its part. The windows are a fixed grid (halves of each side in 3 x 3 overlapping places, and 70% of
each side in the 4 corners), cut from the query decoded at twice the model's input size; each window is cleaned
(uniform borders trimmed) and embedded by the collection's model, searched, and the images nearest to any window
that the whole query's candidates do not hold (ranked by their best window's score) join the candidates that are
verified. Verification then decides, as for every other candidate.
"""

from __future__ import annotations

from PIL import Image

from lookalike.search.groups import Box

GRID = ((0.5, 3), (0.7, 2))  # (window side as a share of the picture's side, windows along each axis)
MIN_SIDE = 64  # a picture whose window would be narrower than this many pixels is not cut into windows


def window_boxes(width: int, height: int) -> list[Box]:
    """The boxes (left, top, right, bottom) of a ``width`` x ``height`` picture's windows, evenly spread along
    each axis for each entry of :data:`GRID`; none when a window would be under :data:`MIN_SIDE` pixels."""
    boxes: list[Box] = []
    for share, steps in GRID:
        w, h = round(width * share), round(height * share)
        if min(w, h) < MIN_SIDE:
            return []
        for i in range(steps):
            for j in range(steps):
                x, y = round((width - w) * i / (steps - 1)), round((height - h) * j / (steps - 1))
                boxes.append((x, y, x + w, y + h))
    return boxes


def windows(picture: Image.Image) -> list[Image.Image]:
    """The picture cut into the windows of :func:`window_boxes`."""
    return [picture.crop(box) for box in window_boxes(*picture.size)]
