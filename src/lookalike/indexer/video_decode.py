"""Sample video frames (PyAV) into upright RGB pictures, or fail precisely."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from lookalike.errors import DecodeError

# Demuxers allowed to open a "video"; playlists and concat scripts (which read other files) are not.
VIDEO_DEMUXERS = "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi,mpegts"  # mpegts: AVCHD .mts/.m2ts
MAX_BAD_PACKETS = 1000  # past this many undecodable packets a video is treated as corrupt


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
