"""Frame cleaning before embedding: black bars come off, dark scenes and bar-less frames stay whole."""

from __future__ import annotations

from PIL import Image, ImageEnhance

from lookalike.indexer.frames import VideoDescriptor, trim_borders


def _pad(im: Image.Image, size: tuple[int, int]) -> Image.Image:
    canvas = Image.new("RGB", size, (16, 16, 16))  # video black is 16, not 0
    canvas.paste(im, ((size[0] - im.width) // 2, (size[1] - im.height) // 2))
    return canvas


def test_letterbox_and_pillarbox_bars_are_trimmed(images):
    frame = images["chelsea"].resize((320, 180))
    assert trim_borders(_pad(frame, (320, 240))).size == (320, 180)
    assert trim_borders(_pad(frame, (420, 180))).size == (320, 180)
    assert trim_borders(_pad(frame, (400, 240))).size == (320, 180)  # windowboxed: both


def test_frames_without_bars_and_dark_scenes_are_left_alone(images):
    frame = images["coffee"].resize((320, 180))
    assert trim_borders(frame).size == frame.size
    night = ImageEnhance.Brightness(frame).enhance(0.05)  # almost black everywhere: not a bar
    assert trim_borders(night).size == night.size


def test_descriptor_round_trips_and_old_collections_keep_their_behaviour():
    d = VideoDescriptor(frame_rate=2.0, segment_seconds=1.0, trim_borders=True, mirror=False, grayscale=True)
    assert VideoDescriptor.from_pooling(d.to_pooling()) == d
    old = VideoDescriptor.from_pooling({"frame_rate": 1.0, "segment_seconds": 2.0, "method": "mean"})
    assert not old.trim_borders and not old.mirror and not old.grayscale
