"""The windows a verified image search cuts its query into."""

from __future__ import annotations

import pytest
from PIL import Image

from lookalike.search.windows import window_boxes, windows

pytestmark = pytest.mark.catalog_free  # opens no catalog: the PostgreSQL run leaves it out


def test_windows_are_halves_in_nine_places_and_seventy_percent_in_the_corners():
    assert window_boxes(400, 200) == [
        *[(x, y, x + 200, y + 100) for x in (0, 100, 200) for y in (0, 50, 100)],
        *[(x, y, x + 280, y + 140) for x in (0, 120) for y in (0, 60)],
    ]


def test_a_picture_too_small_for_windows_gets_none():
    assert window_boxes(120, 1000) == []  # half of 120 px is under 64
    assert len(window_boxes(128, 128)) == 13


def test_windows_are_the_picture_cut_at_the_boxes():
    picture = Image.new("RGB", (400, 200))
    picture.paste((255, 0, 0), (200, 100, 400, 200))  # the lower right quarter is red
    parts = windows(picture)
    assert [p.size for p in parts] == [(200, 100)] * 9 + [(280, 140)] * 4
    assert parts[8].getcolors() == [(200 * 100, (255, 0, 0))]  # the last half-size window is that quarter
