"""Uniform-border trimming: is the box it finds right, and does it stay put when the pixels barely change?

Every picture is trimmed of uniform borders (a mat, a canvas, letterbox bars) before it is embedded, and again
before local features are compared. A box that jumps when a decoder rounds a pixel the other way turns one photo
into two different pictures: on an H200, nvJPEG's and Pillow's decodes of one grainy photo (pixels within one grey
level of each other) were trimmed to boxes 200 px apart, and their vectors met at cosine 0.38.

Pictures: the sources and hard negatives of the dupes benchmark (``benchmarks.dupes_corpus``: package photos,
video stills, Debian wallpapers and artwork) and its fillers (OpenCV's sample photos), each whole and as two crops
(70-100% of each side), long side 800 px. Each is saved as JPEG at quality 90, 40 and 15, and decoded as indexing
decodes it (``load_image`` in draft mode, short side 256):

  * plain       the picture as it is: how many get a box at all (not a defect by itself: a photo's own plain
                background can be trimmed, as long as the box is stable);
  * framed      the same picture on a mat of one colour (flat, a gentle gradient, grain of sigma 3, or heavy
                grain of sigma 6) of one of four shapes (all sides 4%, all sides 12%, top and bottom 12%, left and
                right 12%): right when each side of the box is within 2.5% of the picture's side of the true one;
  * decoder     the box of the same decode with every pixel moved by -1, 0 or +1 at random (what another JPEG
                decoder does: nvJPEG against libjpeg-turbo differed by at most 1), twice: a flip when a side
                moves by more than 2.5%, or one has a box and the other none;
  * quality     the box at quality 40 and 15 against the one at 90, with the same rule.

    python -m benchmarks.border_trim [--limit N]
"""

from __future__ import annotations

import argparse
import io
import random
import time
from collections.abc import Iterator

import numpy as np
from PIL import Image

from benchmarks.machine import describe

SIDE = 800
QUALITIES = (90, 40, 15)
MATS = ("flat", "gradient", "grain", "heavy grain")
SHAPES = {"all 4%": (0.04, 0.04), "all 12%": (0.12, 0.12), "top+bottom 12%": (0.0, 0.12), "left+right 12%": (0.12, 0.0)}
TOLERANCE = 0.025
FAR = 0.1  # a box moved this far changes what the model sees (the cosine of 0.38 above)

Box = tuple[float, float, float, float]  # left, top, right, bottom as fractions of the width and height


def sources(limit: int | None) -> Iterator[tuple[str, Image.Image]]:
    """Each picture of the dupes corpus and each filler, whole and as two crops, long side ``SIDE``."""
    from benchmarks.dupes_corpus import fillers, fit, pictures

    pics = [(p.name, p.load) for p in pictures()] + [(f"filler{i}", lambda im=im: im) for i, im in enumerate(fillers())]
    for n, (name, load) in enumerate(pics[:limit]):
        im = fit(load(), SIDE)
        rng = random.Random(n)
        yield name, im
        for c in range(2):
            fw, fh = rng.uniform(0.7, 1.0), rng.uniform(0.7, 1.0)
            left, top = rng.uniform(0, 1 - fw) * im.width, rng.uniform(0, 1 - fh) * im.height
            crop = im.crop((int(left), int(top), int(left + fw * im.width), int(top + fh * im.height)))
            yield f"{name}_crop{c}", fit(crop.resize((round(crop.width * 1.25), round(crop.height * 1.25))), SIDE)


def framed(im: Image.Image, mat: str, shape: tuple[float, float], rng: random.Random) -> tuple[Image.Image, Box]:
    """``im`` on a mat; the true content box as fractions."""
    mx, my = round(shape[0] * im.width), round(shape[1] * im.height)
    w, h = im.width + 2 * mx, im.height + 2 * my
    colour = np.array([rng.randrange(256) for _ in range(3)], dtype=np.float32)
    canvas = np.broadcast_to(colour, (h, w, 3)).copy()
    if mat == "gradient":  # a gentle light gradient: up to 10 levels from one corner to the other
        ramp = (np.arange(w)[None, :] / w + np.arange(h)[:, None] / h) / 2 * rng.uniform(4, 10)
        canvas += ramp[..., None] * (1 if colour.mean() < 128 else -1)
    elif mat in ("grain", "heavy grain"):  # heavy grain (sigma 6) sits at the edge of what a border is
        sigma = 3 if mat == "grain" else 6
        canvas += np.random.default_rng(rng.randrange(1 << 30)).normal(0, sigma, (h, w, 1))
    out = Image.fromarray(canvas.round().clip(0, 255).astype(np.uint8))
    out.paste(im, (mx, my))
    return out, (mx / w, my / h, (mx + im.width) / w, (my + im.height) / h)


def decoded(im: Image.Image, quality: int) -> Image.Image:
    """``im`` saved as JPEG and decoded as indexing decodes it."""
    from lookalike.indexer.decode import load_image

    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    picture, _ = load_image(None, data=buf.getvalue(), draft=256)  # type: ignore[arg-type]
    return picture


def box_of(picture: Image.Image) -> Box | None:
    """The product's uniform-border box, as fractions."""
    from lookalike.indexer.describe import content_box

    box = content_box(picture)
    if box is None:
        return None
    w, h = picture.size
    return box[0] / w, box[1] / h, box[2] / w, box[3] / h


def moved(a: Box | None, b: Box | None) -> float:
    """How far the sides of two boxes lie apart at most, as a fraction of the picture's side (no box: the whole)."""
    whole = (0.0, 0.0, 1.0, 1.0)
    return max(abs(x - y) for x, y in zip(a or whole, b or whole, strict=True))


def same(a: Box | None, b: Box | None) -> bool:
    """Two boxes agree: every side within the tolerance (no box is the whole picture)."""
    return moved(a, b) <= TOLERANCE


def jittered(picture: Image.Image, seed: int) -> Image.Image:
    """Every pixel moved by -1, 0 or +1 at random (another decoder's rounding)."""
    arr = np.asarray(picture, dtype=np.int16) + np.random.default_rng(seed).integers(-1, 2, (*picture.size[::-1], 3))
    return Image.fromarray(arr.clip(0, 255).astype(np.uint8))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N corpus pictures")
    args = parser.parse_args()
    print(describe())
    start = time.perf_counter()
    count = {k: 0 for k in ("plain", "plain_cut", "framed", "right", "none", "wrong")}
    moves: dict[str, list[float]] = {f"{k} {w}": [] for k in ("plain", "framed") for w in ("decoder", "quality")}
    far: list[str] = []
    wrong_by: dict[str, int] = {}
    for n, (name, im) in enumerate(sources(args.limit)):
        mat, shape = MATS[n % len(MATS)], list(SHAPES)[(n // len(MATS)) % len(SHAPES)]
        frame, truth = framed(im, mat, SHAPES[shape], random.Random(1000 + n))
        for kind, picture in (("plain", im), ("framed", frame)):
            boxes = {}
            for q in QUALITIES:
                dec = decoded(picture, q)
                boxes[q] = box_of(dec)
                count[kind] += 1
                if kind == "plain":
                    count["plain_cut"] += boxes[q] is not None
                elif not same(boxes[q], truth):
                    count["none" if boxes[q] is None else "wrong"] += 1
                    wrong_by[f"{mat}, {shape}, q{q}"] = wrong_by.get(f"{mat}, {shape}, q{q}", 0) + 1
                else:
                    count["right"] += 1
                for seed in (1, 2):
                    moves[f"{kind} decoder"].append(moved(boxes[q], box_of(jittered(dec, seed))))
                    if moves[f"{kind} decoder"][-1] > FAR:
                        far.append(f"{name} ({kind}{'' if kind == 'plain' else ', ' + mat + ' ' + shape}, q{q})")
            for q in QUALITIES[1:]:
                moves[f"{kind} quality"].append(moved(boxes[q], boxes[QUALITIES[0]]))
    print(f"{count['plain'] // len(QUALITIES)} pictures, {count['plain'] + count['framed']} decodes, ", end="")
    print(f"{time.perf_counter() - start:.0f} s\n")
    print("| what | count | share |")
    print("|---|---|---|")
    for label, k, total in (
        ("plain pictures given a box", count["plain_cut"], count["plain"]),
        ("framed pictures trimmed right", count["right"], count["framed"]),
        ("framed pictures not trimmed", count["none"], count["framed"]),
        ("framed pictures trimmed wrong", count["wrong"], count["framed"]),
    ):
        print(f"| {label} | {k} / {total} | {k / max(1, total):.3f} |")
    print(f"\n| box moved (a side, share of the picture's side) | pairs | > {TOLERANCE:.1%} | > {FAR:.0%} |")
    print("|---|---|---|---|")
    for key, values in moves.items():
        kind, what = key.split()
        label = f"{kind}: {'by a decoder' + chr(39) + 's rounding' if what == 'decoder' else 'quality 40 and 15 vs 90'}"
        v = np.array(values)
        print(f"| {label} | {len(v)} | {int(np.sum(v > TOLERANCE))} | {int(np.sum(v > FAR))} |")
    missed = ", ".join(f"{k}: {v}" for k, v in sorted(wrong_by.items(), key=lambda kv: -kv[1]))
    print(f"\nframed pictures not trimmed right, by mat, shape and quality: {missed or 'none'}")
    print(f"moved > {FAR:.0%} by a decoder's rounding: {'; '.join(far) or 'none'}")


if __name__ == "__main__":
    main()
