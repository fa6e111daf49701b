"""Decoding: every image mode comes out upright 8-bit RGB; hostile files fail with a specific code."""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
import sys
import zlib
from fractions import Fraction

import numpy as np
import pytest
from PIL import Image

from benchmarks.corpus import write_video
from lookalike.errors import DecodeError
from lookalike.indexer.decode import load_frames, load_image, spread_frames
from lookalike.indexer.discover import classify
from lookalike.indexer.video_decode import frame_at, sample_frames
from lookalike.types import MediaKind

pytestmark = pytest.mark.catalog_free  # opens no catalog: the PostgreSQL run leaves it out


@pytest.fixture(scope="module")
def cat(images) -> Image.Image:
    return images["chelsea"]


def _bytes(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _write(tmp_path, name: str, data: bytes):
    p = tmp_path / name
    p.write_bytes(data)
    return p


def _code(path, **kw) -> str:
    with pytest.raises(DecodeError) as info:
        load_image(path, **kw)
    return info.value.code


# inverse of what exif_transpose applies for each orientation value
_STORE_AS = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_comes_out_upright(tmp_path, cat, orientation):
    stored = cat.transpose(_STORE_AS[orientation]) if orientation in _STORE_AS else cat
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = _write(tmp_path, "o.jpg", _bytes(stored, "JPEG", quality=95, exif=exif.tobytes()))
    rgb, meta = load_image(path)
    assert rgb.size == cat.size and (meta.width, meta.height) == cat.size
    diff = np.abs(np.asarray(rgb, np.int16) - np.asarray(cat, np.int16)).mean()
    assert diff < 6, f"orientation {orientation}: mean abs diff {diff}"


@pytest.mark.parametrize("mode", ["CMYK", "P", "L", "1", "LA", "RGBA", "I;16", "F", "I"])
def test_every_mode_becomes_rgb_with_its_content(tmp_path, cat, mode):
    if mode == "I;16":
        im = cat.convert("L").convert("I").point(lambda v: v * 257).convert("I;16")
        fmt, name = "PNG", "x.png"
    elif mode == "F":
        im = cat.convert("L").convert("F")
        fmt, name = "TIFF", "x.tif"
    elif mode == "I":
        im = cat.convert("L").convert("I")
        fmt, name = "TIFF", "x.tif"
    elif mode == "CMYK":
        im, fmt, name = cat.convert("CMYK"), "JPEG", "x.jpg"
    else:
        im = cat.convert(mode)
        fmt, name = "PNG", "x.png"
    rgb, _ = load_image(_write(tmp_path, name, _bytes(im, fmt)))
    assert rgb.mode == "RGB" and rgb.size == cat.size
    # compare at thumbnail size so dithered 1-bit pictures count as the same picture
    gray = np.asarray(rgb.convert("L").resize((45, 30), Image.Resampling.BOX), np.float32)
    ref = np.asarray(cat.convert("L").resize((45, 30), Image.Resampling.BOX), np.float32)
    assert np.corrcoef(gray.ravel(), ref.ravel())[0, 1] > 0.8  # same picture, not white or black


def test_transparency_is_composited_on_white(tmp_path, cat):
    rgba = cat.convert("RGBA")
    rgba.putalpha(0)
    rgb, _ = load_image(_write(tmp_path, "a.png", _bytes(rgba, "PNG")))
    assert np.asarray(rgb).min() == 255


def test_palette_with_transparency(tmp_path, cat):
    p = cat.convert("P", palette=Image.Palette.ADAPTIVE)
    rgb, _ = load_image(_write(tmp_path, "p.png", _bytes(p, "PNG", transparency=0)))
    assert rgb.mode == "RGB"


def test_animated_gif_uses_first_frame_and_counts_frames(tmp_path, cat):
    frames = [cat.rotate(i * 40) for i in range(8)]
    data = _bytes(frames[0], "GIF", save_all=True, append_images=frames[1:])
    _, meta = load_image(_write(tmp_path, "anim.gif", data))
    assert meta.n_frames == 8


def test_png_bytes_named_jpg_are_decoded_by_content(tmp_path, cat):
    rgb, meta = load_image(_write(tmp_path, "really_png.jpg", _bytes(cat, "PNG")))
    assert meta.format == "PNG" and rgb.size == cat.size


def test_jpeg_draft_decodes_big_photos_small(tmp_path, images):
    big = images["retina"]  # 1411 x 1411
    rgb, meta = load_image(_write(tmp_path, "big.jpg", _bytes(big, "JPEG")), draft=256)
    assert (meta.width, meta.height) == big.size
    assert 256 <= min(rgb.size) < 1411


def _png_header(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")
    )


def _damaged_huffman_table(jpeg: bytes) -> bytes:
    """A JPEG with a byte of its first Huffman table overwritten: it ends whole (end-of-image marker and all)."""
    data = bytearray(jpeg)
    data[data.index(b"\xff\xc4") + 9] = 0xFF
    return bytes(data)


@pytest.mark.parametrize(
    ("name", "make", "code"),
    [
        ("empty.jpg", lambda cat: b"", "unidentified_format"),
        ("random.jpg", lambda cat: np.random.default_rng(0).bytes(4096), "unidentified_format"),
        ("page.png", lambda cat: b"<html><script>alert(1)</script></html>", "unidentified_format"),
        ("x.svg", lambda cat: b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>', "unidentified_format"),
        ("cut.jpg", lambda cat: _bytes(cat, "JPEG")[: int(0.6 * len(_bytes(cat, "JPEG")))], "truncated"),
        ("no_eoi.jpg", lambda cat: _bytes(cat, "JPEG")[:-2] + b"", None),
        ("damaged.jpg", lambda cat: _damaged_huffman_table(_bytes(cat, "JPEG")), "corrupt"),  # whole, not cut
        ("cut.png", lambda cat: _bytes(cat, "PNG")[: len(_bytes(cat, "PNG")) // 2], "truncated"),
        ("bomb.png", lambda cat: _png_header(30000, 30000), "too_many_pixels"),
        ("big.png", lambda cat: _png_header(10000, 10000), "too_many_pixels"),
        ("doc.pdf", lambda cat: _bytes(cat, "PDF"), "unidentified_format"),
        ("x.ppm", lambda cat: _bytes(cat, "PPM"), "unsupported_format"),
        ("x.tga", lambda cat: _bytes(cat, "TGA"), "unsupported_format"),
        ("x.ico", lambda cat: _bytes(cat.resize((64, 64)), "ICO"), "unsupported_format"),
    ],
)
def test_hostile_images_fail_with_specific_codes(tmp_path, cat, name, make, code):
    path = _write(tmp_path, name, make(cat))
    if code is None:  # a JPEG missing only its end marker: Pillow decodes it completely or says truncated
        try:
            rgb, _ = load_image(path)
            assert rgb.size == cat.size
        except DecodeError as e:
            assert e.code == "truncated"
        return
    assert _code(path) == code


def test_bad_crc_is_corrupt(tmp_path, cat):
    data = bytearray(_bytes(cat, "PNG"))
    data[29] ^= 0xFF  # inside the IHDR CRC
    assert _code(_write(tmp_path, "crc.png", bytes(data))) == "corrupt"


def test_file_size_limit_is_checked_before_reading(tmp_path):
    path = tmp_path / "sparse.jpg"
    with open(path, "wb") as fh:
        fh.truncate(8 << 30)  # sparse: no disk used, and never read
    assert _code(path, max_bytes=1 << 20) == "too_large"


# -- video ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clip(tmp_path_factory, images):
    frames = [images["coffee"].rotate(i * 3).resize((160, 120)) for i in range(50)]
    return write_video(iter(frames), tmp_path_factory.mktemp("v") / "clip.mp4", fps=10)


def test_video_sampled_at_frame_rate_with_timestamps(clip):
    meta, frames = sample_frames(clip, frame_rate=1.0)
    got = list(frames)
    assert [round(f.time, 2) for f in got] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert (meta.width, meta.height) == (160, 120)
    assert meta.duration == pytest.approx(5.0, abs=0.15)
    assert meta.fps == pytest.approx(10.0)


def test_video_sampling_rate_is_configurable(clip):
    _, frames = sample_frames(clip, frame_rate=2.0)
    assert len(list(frames)) == 10


def test_frame_at_a_time_is_the_frame_sampled_there(clip):
    _, frames = sample_frames(clip, frame_rate=1.0, short_side=None)
    sampled = {round(f.time): np.asarray(f.image, np.float32) for f in frames}
    for t in (0.0, 2.0, 3.0):
        got = np.asarray(frame_at(clip, t, short_side=None), np.float32)
        assert got.shape == sampled[int(t)].shape
        assert np.abs(got - sampled[int(t)]).mean() < 1.0  # the same frame (the clip rotates 3 degrees a frame)
        others = [np.abs(got - v).mean() for k, v in sampled.items() if k != int(t)]
        assert min(others) > 5.0
    past_end = frame_at(clip, 60.0, short_side=60)
    assert min(past_end.size) == 60  # the last frame, scaled


def test_frame_at_in_an_undecodable_file_is_a_decode_error(tmp_path, clip):
    path = tmp_path / "half.mp4"
    path.write_bytes(clip.read_bytes()[:2000])
    with pytest.raises(DecodeError) as info:
        frame_at(path, 1.0)
    assert info.value.code in {"corrupt", "no_frames"}


def test_audio_only_file_has_no_video_stream(tmp_path):
    import av

    path = tmp_path / "audio.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=44100)
        samples = np.zeros((1, 1024), np.float32)
        for i in range(20):
            frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = 44100, i * 1024, Fraction(1, 44100)
            for p in stream.encode(frame):
                out.mux(p)
        for p in stream.encode():
            out.mux(p)
    with pytest.raises(DecodeError) as info:
        sample_frames(path)
    assert info.value.code == "no_video_stream"


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("random.mkv", lambda clip: np.random.default_rng(1).bytes(65536)),
        ("half.mp4", lambda clip: clip.read_bytes()[: len(clip.read_bytes()) // 2]),
        ("playlist.mp4", lambda clip: b"#EXTM3U\n#EXTINF:1,\nfile:///etc/hostname\n"),
        ("concat.mp4", lambda clip: b"ffconcat version 1.0\nfile /etc/hostname\n"),
    ],
)
def test_hostile_videos_fail_cleanly(tmp_path, clip, name, make):
    path = tmp_path / name
    path.write_bytes(make(clip))
    with pytest.raises(DecodeError) as info:
        _, frames = sample_frames(path)
        list(frames)
    assert info.value.code in {"corrupt", "no_frames", "no_video_stream"}


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg CLI to write rotation metadata")
@pytest.mark.parametrize("rotate", [90, 180, 270])
def test_rotated_video_comes_out_as_ffmpeg_displays_it(tmp_path, rotate):
    arr = np.zeros((32, 64, 3), np.uint8)
    arr[:16, :16] = 255  # a white block in the top-left corner tells up from down and left from right
    src = write_video(iter([Image.fromarray(arr)] * 10), tmp_path / "src.mp4", fps=10)
    rotated = tmp_path / "rotated.mp4"
    subprocess.run(
        [
            "ffmpeg",
            "-y",
            "-loglevel",
            "error",
            "-i",
            str(src),
            "-c",
            "copy",
            "-metadata:s:v:0",
            f"rotate={rotate}",
            str(rotated),
        ],
        check=True,
    )
    subprocess.run(
        ["ffmpeg", "-y", "-loglevel", "error", "-i", str(rotated), "-frames:v", "1", str(tmp_path / "shown.png")],
        check=True,
    )  # the ffmpeg CLI applies the rotation itself
    shown = np.asarray(Image.open(tmp_path / "shown.png").convert("L"), np.float32)
    _, frames = sample_frames(rotated)
    ours = np.asarray(next(iter(frames)).image.convert("L"), np.float32)
    assert ours.shape == shown.shape
    assert np.abs(ours - shown).mean() < 8


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg CLI to write MPEG transport streams")
@pytest.mark.parametrize(("ext", "extra"), [(".mts", []), (".m2ts", ["-mpegts_m2ts_mode", "1"])])
def test_avchd_transport_streams_are_videos(tmp_path, clip, ext, extra):
    """Camcorders write AVCHD .mts/.m2ts (MPEG transport streams): found by name, decoded, timed from 0 like the
    MP4 they were remuxed from (they used to be passed over silently)."""
    out = tmp_path / f"clip{ext}"
    cmd = ["ffmpeg", "-y", "-loglevel", "error", "-i", str(clip), "-c", "copy", "-f", "mpegts", *extra, str(out)]
    subprocess.run(cmd, check=True)
    assert classify(out) == MediaKind.VIDEO
    meta, frames = sample_frames(out, frame_rate=1.0)
    assert meta.duration == pytest.approx(5.0, abs=0.2)
    assert [round(f.time, 2) for f in frames] == [0.0, 1.0, 2.0, 3.0, 4.0]


def _tiff(arr: np.ndarray, **kw) -> bytes:
    import tifffile

    buf = io.BytesIO()
    tifffile.imwrite(buf, arr, **kw)
    return buf.getvalue()


@pytest.mark.parametrize(
    ("name", "dtype", "rgb", "tolerance"),
    [
        ("rgb_float32", np.float32, True, 0),  # what HDR tools and Photoshop's 32-bit mode write
        ("rgb_float32_deflate", np.float32, True, 0),
        ("grey_float16", np.float16, False, 1),  # half precision rounds some levels by one
        ("grey_float64", np.float64, False, 0),
    ],
)
def test_float_tiffs_pillow_cannot_open_decode_to_their_pixels(tmp_path, cat, name, dtype, rgb, tolerance):
    """Valid float TIFFs used to be called corrupt (Pillow reads 32-bit float greyscale only)."""
    source = np.asarray(cat if rgb else cat.convert("L"))
    samples = (source / 255.0).astype(dtype)
    kw = {"photometric": "rgb" if rgb else "minisblack"}
    if "deflate" in name:
        kw["compression"] = "zlib"
    decoded, meta = load_image(_write(tmp_path, f"{name}.tif", _tiff(samples, **kw)))
    assert (meta.format, meta.width, meta.height) == ("TIFF", cat.width, cat.height)
    got = np.asarray(decoded.convert("RGB" if rgb else "L"), np.int16)
    assert np.abs(got - source).max() <= tolerance


def test_a_float_tiff_beyond_0_to_255_is_stretched_onto_its_finite_range(tmp_path, cat):
    grey = np.asarray(cat.convert("L"), np.float64)
    samples = (grey - 128.0) * 40.0  # about -5000..5000, as a scientific float image might hold
    samples[0, :10] = np.nan
    samples[1, :10] = np.inf
    im = Image.fromarray(samples.astype(np.float32), mode="F")
    decoded, _ = load_image(_write(tmp_path, "wide.tif", _bytes(im, "TIFF")))
    got = np.asarray(decoded.convert("L"), np.float64)
    assert got[2:].min() == 0 and got[2:].max() == 255  # the finite range spans 0..255
    assert (got[0, :10] == got[2:].min()).all() and (got[1, :10] == 255).all()  # NaN low, +inf high
    stretched = (grey - grey[2:].min()) * 255.0 / (grey[2:].max() - grey[2:].min())
    assert np.abs(got[2:] - stretched[2:]).max() <= 1


def test_a_float_tiff_compressed_with_a_missing_codec_is_unsupported_not_corrupt(tmp_path, cat):
    import tifffile

    data = bytearray(_tiff((np.asarray(cat) / 255.0).astype(np.float32), photometric="rgb"))
    with tifffile.TiffFile(io.BytesIO(bytes(data))) as tif:
        at = tif.pages.first.tags[259].valueoffset  # Compression
    data[at : at + 2] = struct.pack("<H", 5)  # LZW: decodable only with the imagecodecs package, not installed
    assert _code(_write(tmp_path, "lzw.tif", bytes(data))) == "unsupported_format"


def test_heic_photos_decode(tmp_path, cat):
    import pillow_heif

    path = tmp_path / "cat.heic"
    pillow_heif.from_pillow(cat).save(path, quality=90)  # written without registering the opener here
    rgb, meta = load_image(path)
    assert (meta.format, rgb.size) == ("HEIF", cat.size)
    assert np.abs(np.asarray(rgb, np.int16) - np.asarray(cat, np.int16)).mean() < 4


def test_importing_the_decoder_registers_no_heif_opener():
    code = "import lookalike.indexer.decode; from PIL import Image; Image.init(); print('HEIF' in Image.OPEN)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


@pytest.mark.parametrize(
    ("n_frames", "count", "expected"),
    [(1, 8, [0]), (5, 8, [0, 1, 2, 3, 4]), (12, 1, [0]), (12, 8, [0, 2, 3, 5, 6, 8, 9, 11]), (30, 4, [0, 10, 19, 29])],
)
def test_animation_frames_are_spread_evenly_first_and_last_included(n_frames, count, expected):
    assert spread_frames(n_frames, count) == expected


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "PNG"])
def test_an_animation_gives_frames_spread_over_it(tmp_path, images, fmt):
    astronaut = images["astronaut"]
    frames = [astronaut.crop((i * 24, i * 24, i * 24 + 240, i * 24 + 240)) for i in range(12)]
    data = _bytes(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, lossless=True)
    path = _write(tmp_path, f"pan.{fmt.lower()}", data)
    got, meta = load_frames(path, frames=8)
    assert meta.n_frames == 12 and len(got) == 8
    for picture, number in zip(got, spread_frames(12, 8), strict=True):
        diff = np.abs(np.asarray(picture, np.int16) - np.asarray(frames[number], np.int16)).mean()
        assert diff < 6, (number, diff)  # GIF's 256-colour palette costs a few levels
    still, _ = load_frames(_write(tmp_path, "still.png", _bytes(frames[0], "PNG")), frames=8)
    assert len(still) == 1
