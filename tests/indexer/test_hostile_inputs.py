"""A corpus of hostile and unusual files (../shared/BAD_INPUTS.md) through the whole index pipeline: the run
survives, every file ends with vectors or one named error, skipped paths say why, and nothing indexed is lost."""

from __future__ import annotations

import io
import os
import struct
import zlib
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from benchmarks.corpus import write_video
from lookalike.indexer.plan import key_path, path_key
from lookalike.workspace import Workspace

OK = "ok"


def _b(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _heic(im: Image.Image) -> bytes:
    import pillow_heif

    buf = io.BytesIO()
    pillow_heif.from_pillow(im).save(buf, quality=80)
    return buf.getvalue()


def _float_rgb_tiff(im: Image.Image) -> bytes:
    import tifffile

    buf = io.BytesIO()
    tifffile.imwrite(buf, (np.asarray(im) / 255.0).astype(np.float32), photometric="rgb")
    return buf.getvalue()


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png_header(w: int, h: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + _png_chunk(b"IEND", b"")
    )


def _ztxt_bomb(png: bytes) -> bytes:
    bomb = _png_chunk(b"zTXt", b"Comment\0\0" + zlib.compress(b"A" * (64 << 20), 9))
    return png[:33] + bomb + png[33:]


def _forged_sof(jpg: bytes) -> bytes:
    i = jpg.index(b"\xff\xc0")
    return jpg[: i + 5] + struct.pack(">HH", 65500, 65500) + jpg[i + 9 :]


def _garbage_exif(jpg: bytes) -> bytes:
    body = b"Exif\0\0" + np.random.default_rng(3).bytes(200)
    return jpg[:2] + b"\xff\xe1" + struct.pack(">H", len(body) + 2) + body + jpg[2:]


def _exif(im: Image.Image, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return _b(im, "JPEG", exif=exif.tobytes())


def _audio_only(path: Path) -> None:
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=44100)
        for i in range(10):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = 44100, i * 1024, Fraction(1, 44100)
            for p in stream.encode(frame):
                out.mux(p)
        for p in stream.encode():
            out.mux(p)


def _two_streams(path: Path, frames: list[Image.Image]) -> None:
    import av

    with av.open(str(path), "w", format="matroska") as out:
        streams = [out.add_stream("mjpeg", rate=10) for _ in range(2)]
        for s in streams:
            s.width, s.height, s.pix_fmt = 64, 48, "yuvj420p"
        for im in frames:
            for s in streams:
                for p in s.encode(av.VideoFrame.from_image(im.resize((64, 48)))):
                    out.mux(p)
        for s in streams:
            for p in s.encode():
                out.mux(p)


def _corrupt_packets(mp4: bytes) -> bytes:
    data = bytearray(mp4)
    at = data.index(b"mdat")
    end = at - 4 + struct.unpack(">I", data[at - 4 : at])[0]  # only inside the media data, not the index
    rng = np.random.default_rng(4)
    for pos in rng.integers(at + 2000, end - 100, 20):
        data[pos : pos + 10] = rng.bytes(10)
    return bytes(data)


def build_hostile(root: Path, cat: Image.Image, coffee: Image.Image) -> dict[str, str]:
    """Write the corpus; returns {file name: expected outcome ("ok" or an error code)}."""
    root.mkdir(parents=True)
    jpg = _b(cat, "JPEG", quality=90)
    png = _b(cat, "PNG")
    frames = [coffee.rotate(i * 5).resize((96, 64)) for i in range(30)]
    good_mp4 = write_video(iter(frames), root / "ok_video.mp4", fps=10).read_bytes()
    gif_frames = [cat.resize((90, 60)).rotate(i * 40) for i in range(8)]
    files: dict[str, tuple[bytes, str]] = {
        "empty.jpg": (b"", "unidentified_format"),
        "random.jpg": (np.random.default_rng(1).bytes(4096), "unidentified_format"),
        "png_named.jpg": (png, OK),
        "html_named.png": (b"<html><script>alert(1)</script></html>", "unidentified_format"),
        "onload.svg.png": (b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', "unidentified_format"),
        "cut60.jpg": (jpg[: int(len(jpg) * 0.6)], "truncated"),
        "cut_png.png": (png[: len(png) // 2], "truncated"),
        "bad_crc.png": (png[:29] + bytes([png[29] ^ 0xFF]) + png[30:], "corrupt"),
        "bomb_30000.png": (_png_header(30000, 30000), "too_many_pixels"),
        "big_10000.png": (_png_header(10000, 10000), "too_many_pixels"),
        "sof_65500.jpg": (_forged_sof(jpg), "too_many_pixels"),
        "ztxt_bomb.png": (_ztxt_bomb(png), "corrupt"),
        "wide_20000x2.png": (_b(Image.new("RGB", (20000, 2), "red"), "PNG"), OK),
        "one_pixel.png": (_b(Image.new("RGB", (1, 1), "blue"), "PNG"), OK),
        "garbage_exif.jpg": (_garbage_exif(jpg), OK),
        "bad_icc.jpg": (_b(cat, "JPEG", icc_profile=np.random.default_rng(2).bytes(512)), OK),
        "cmyk.jpg": (_b(cat.convert("CMYK"), "JPEG"), OK),
        "gray16.png": (_b(cat.convert("L").convert("I").point(lambda v: v * 257).convert("I;16"), "PNG"), OK),
        "float.tif": (_b(cat.convert("L").convert("F"), "TIFF"), OK),
        "float_rgb.tif": (_float_rgb_tiff(cat), OK),
        "phone.heic": (_heic(cat), OK),
        "rgba.png": (_b(cat.convert("RGBA"), "PNG"), OK),
        "la.png": (_b(cat.convert("LA"), "PNG"), OK),
        "palette_trns.png": (_b(cat.convert("P", palette=Image.Palette.ADAPTIVE), "PNG", transparency=0), OK),
        "one_bit.png": (_b(cat.convert("1"), "PNG"), OK),
        "anim.gif": (_b(gif_frames[0], "GIF", save_all=True, append_images=gif_frames[1:]), OK),
        "anim.webp": (_b(gif_frames[0], "WEBP", save_all=True, append_images=gif_frames[1:]), OK),
        "apng.png": (_b(gif_frames[0], "PNG", save_all=True, append_images=gif_frames[1:]), OK),
        "pages.tif": (_b(gif_frames[0], "TIFF", save_all=True, append_images=gif_frames[1:]), OK),
        "progressive.jpg": (_b(cat, "JPEG", progressive=True), OK),
        "doc.pdf.jpg": (_b(cat, "PDF"), "unidentified_format"),
        "image.ppm.png": (_b(cat, "PPM"), "unsupported_format"),
        "half_video.mp4": (good_mp4[: len(good_mp4) // 2], "corrupt"),
        "corrupt_packets.mp4": (_corrupt_packets(good_mp4), OK),
        "jpeg_named.mp4": (jpg, OK),
        "random.mkv": (np.random.default_rng(5).bytes(65536), "corrupt"),
        "concat.mp4": (b"ffconcat version 1.0\nfile /etc/hostname\n", "corrupt"),
        "playlist.mp4": (b"#EXTM3U\n#EXTINF:1,\nfile:///etc/hostname\n", "corrupt"),
        "new\nline.jpg": (jpg, OK),
        "-leading-dash.jpg": (_b(coffee, "JPEG"), OK),
        ("x" * 240) + ".jpg": (_b(coffee.rotate(90), "JPEG"), OK),
    }
    for k in range(2, 9):
        files[f"exif_orientation_{k}.jpg"] = (_exif(cat, k), OK)
    expected = {"ok_video.mp4": OK}
    for name, (data, outcome) in files.items():
        (root / name).write_bytes(data)
        expected[name] = outcome
    _audio_only(root / "audio_only.mp4")
    expected["audio_only.mp4"] = "no_video_stream"
    _two_streams(root / "two_streams.mkv", frames[:10])
    expected["two_streams.mkv"] = OK
    write_video(iter([coffee.resize((63, 37))] * 10), root / "odd_63x37.mp4", fps=10)
    expected["odd_63x37.mp4"] = OK
    write_video(iter([coffee.resize((1600, 16))] * 10), root / "wide_1600x16.mp4", fps=10)
    expected["wide_1600x16.mp4"] = OK
    with open(root / "sparse_8g.jpg", "wb") as fh:
        fh.truncate(8 << 30)
    expected["sparse_8g.jpg"] = "too_large"
    os.link(root / "cmyk.jpg", root / "hardlink_of_cmyk.jpg")
    expected["hardlink_of_cmyk.jpg"] = OK
    (root / os.fsdecode(b"latin1_\xe9t\xe9.jpg")).write_bytes(_b(cat.rotate(180), "JPEG"))
    expected["latin1_\udce9t\udce9.jpg"] = OK
    (root / "dir.jpg").mkdir()
    (root / "dir.jpg" / "inside.png").write_bytes(png)
    expected["dir.jpg/inside.png"] = OK
    return expected


def _name(key: str, root: Path) -> str:
    return os.path.relpath(key_path(key), root)


@pytest.fixture(scope="module")
def hostile_run(tmp_path_factory, images, settings_factory):
    root = tmp_path_factory.mktemp("hostile") / "media"
    expected = build_hostile(root, images["chelsea"], images["coffee"])
    # filesystem oddities: reported as skipped, never opened
    os.mkfifo(root / "fifo.jpg")
    os.symlink("/dev/zero", root / "zero_link.jpg")
    os.symlink(root / "loop_b.jpg", root / "loop_a.jpg")
    os.symlink(root / "loop_a.jpg", root / "loop_b.jpg")
    outside = root.parent / "outside.jpg"
    outside.write_bytes(_b(images["rocket"], "JPEG"))
    os.symlink(outside, root / "escape.jpg")
    settings = settings_factory()
    with Workspace(settings) as ws:
        first = ws.index([root / "ok_video.mp4"])  # indexed before the storm; must survive it
        report = ws.index([root])
        failures = {_name(p, root): c for p, c, _ in ws.failures()}
        info = ws.info()["collections"][0]
        hits = ws.search_files([root / "ok_video.mp4"], k=1)[0].hits
    return root, expected, first, report, failures, info, hits


def test_at_least_40_kinds_each_with_a_named_outcome(hostile_run):
    root, expected, _, report, failures, _, _ = hostile_run
    assert len(expected) >= 45
    got = {_name(f.path, root): f.code for f in report.failed}
    assert got == {k: v for k, v in expected.items() if v != OK}
    assert failures == got  # the same codes are stored with each path
    assert all(f.message for f in report.failed)


def test_good_files_among_them_are_indexed(hostile_run):
    _, expected, _, report, _, info, _ = hostile_run
    ok = [k for k, v in expected.items() if v == OK and k != "ok_video.mp4"]
    assert report.new == len(ok)
    assert info["images_ok"] + info["videos_ok"] == len(ok) + 1


def test_filesystem_oddities_are_skipped_with_reasons(hostile_run):
    root, *_ = hostile_run
    report = hostile_run[3]
    skipped = {_name(str(s.path), root): s.reason for s in report.skipped}
    assert skipped == {
        "fifo.jpg": "not_regular_file",
        "zero_link.jpg": "symlink_not_followed",
        "loop_a.jpg": "broken_link",
        "loop_b.jpg": "broken_link",
        "escape.jpg": "symlink_not_followed",
    }


def test_nothing_indexed_before_is_lost(hostile_run):
    root, _, first, _, _, _, hits = hostile_run
    assert first.new == 1
    assert hits[0].path == str(root / "ok_video.mp4") and hits[0].score > 0.999


def test_non_utf8_names_are_indexed_and_round_trip(hostile_run):
    root, *_ = hostile_run
    name = os.fsdecode(b"latin1_\xe9t\xe9.jpg")
    key = path_key(root / name)
    assert key.startswith("bytes:") and key.encode("utf-8")
    assert os.fsencode(key_path(key)) == os.fsencode(root / name)
    ws_info = hostile_run[5]
    assert ws_info["images_ok"] >= 1
