"""Uniform-border trimming: is the box it finds right, and does it stay put when the pixels barely change?

Every picture is trimmed of uniform borders (a mat, a canvas, letterbox bars) before it is embedded, and again
before local features are compared. A box that moves when a decoder rounds a pixel the other way turns one photo
into two pictures: on an H200, nvJPEG's and Pillow's decodes of one grainy photo (pixels within one grey level of
each other) were trimmed to boxes 200 px apart (60% of the side), and their vectors met at cosine 0.38.

Pictures: the sources and hard negatives of the dupes benchmark (``benchmarks.dupes_corpus``: package photos,
video stills, Debian wallpapers and artwork) and its fillers (OpenCV's sample photos), each whole, as a crop
(70-100% of each side) and darkened to 30% brightness (night, astro and line-art pictures have sparse content),
long side at most 800 px. Each is saved as JPEG at quality 90, 40 and 15 and decoded as indexing decodes it
(``load_image`` in draft mode, short side 256); each (picture, quality) is one decode:

  * plain       the picture as it is: how many decodes get a box, and the share of the picture's area the boxes
                keep (a photo's own plain background may be trimmed, as long as the box is stable);
  * framed      the same picture on a mat of random colour (flat, a gentle gradient, grain of sigma 3, or a
                blotchy texture of sigma ~4) of one of four shapes (all sides 4%, all sides 12%, top and bottom
                12%, left and right 12%): right when every side of the box is within 1.5% of the picture's side
                of the true one; the mean of each box's worst side error;
  * decoder     the box the GPU path finds for the same JPEG, run on the CPU: libjpeg-turbo's full decode
                reduced by block means (what the GPU path does after nvJPEG) and borders looked for on a copy
                resized by torch, against Pillow's draft mode and its own resized copy (pictures not reduced by
                the draft decode to the same pixels: the count reduced is printed); and the box after every pixel
                is moved by -1, 0 or +1 at random. "No box" counts as the whole picture, so a side moves as far as
                the box would cut;
  * quality     the box at quality 40 and 15 against the one at 90, by the same measure.

    python -m benchmarks.border_trim [--limit N]
"""

from __future__ import annotations

import argparse
import io
import random
import time
import warnings
from collections.abc import Iterator

import numpy as np
from PIL import Image, ImageEnhance

from benchmarks.machine import describe

SIDE = 800
QUALITIES = (90, 40, 15)
MATS = ("flat", "gradient", "grain", "texture")
SHAPES = {"all 4%": (0.04, 0.04), "all 12%": (0.12, 0.12), "top+bottom 12%": (0.0, 0.12), "left+right 12%": (0.12, 0.0)}
RIGHT = 0.015  # a framed picture's box is right when each side is within this share of the picture's side
TOLERANCE = 0.025  # a box moved more than this (a share of the side) has moved ...
FAR = 0.1  # ... and this far, the model sees another picture

Box = tuple[float, float, float, float]  # left, top, right, bottom as fractions of the width and height


def sources(limit: int | None) -> Iterator[tuple[str, Image.Image]]:
    """Each picture of the dupes corpus and each filler: whole, a crop, and dark; long side at most ``SIDE``."""
    from benchmarks.dupes_corpus import fillers, fit, pictures

    pics = [(p.name, p.load) for p in pictures()] + [(f"filler{i}", lambda im=im: im) for i, im in enumerate(fillers())]
    for n, (name, load) in enumerate(pics[:limit]):
        im = fit(load(), SIDE)
        rng = random.Random(n)
        yield name, im
        fw, fh = rng.uniform(0.7, 1.0), rng.uniform(0.7, 1.0)
        left, top = rng.uniform(0, 1 - fw) * im.width, rng.uniform(0, 1 - fh) * im.height
        crop = im.crop((int(left), int(top), int(left + fw * im.width), int(top + fh * im.height)))
        yield f"{name}_crop", fit(crop.resize((round(crop.width * 1.25), round(crop.height * 1.25))), SIDE)
        yield f"{name}_dark", ImageEnhance.Brightness(im).enhance(0.3)


def framed(im: Image.Image, mat: str, shape: tuple[float, float], rng: random.Random) -> tuple[Image.Image, Box]:
    """``im`` on a mat; the true content box as fractions."""
    mx, my = round(shape[0] * im.width), round(shape[1] * im.height)
    w, h = im.width + 2 * mx, im.height + 2 * my
    colour = np.array([rng.randrange(256) for _ in range(3)], dtype=np.float32)
    canvas = np.broadcast_to(colour, (h, w, 3)).copy()
    noise = np.random.default_rng(rng.randrange(1 << 30))
    if mat == "gradient":  # a gentle light gradient: up to 10 levels from one corner to the other
        ramp = (np.arange(w)[None, :] / w + np.arange(h)[:, None] / h) / 2 * rng.uniform(4, 10)
        canvas += ramp[..., None] * (1 if colour.mean() < 128 else -1)
    elif mat == "grain":
        canvas += noise.normal(0, 3, (h, w, 1))
    elif mat == "texture":  # blotches a few dozen pixels wide (paper, a wall): the probe's shrink keeps them
        coarse = Image.fromarray(noise.normal(0, 4, (h // 24 + 2, w // 24 + 2)).astype(np.float32), mode="F")
        canvas += np.asarray(coarse.resize((w, h), Image.Resampling.BICUBIC))[..., None]
    out = Image.fromarray(canvas.round().clip(0, 255).astype(np.uint8))
    out.paste(im, (mx, my))
    return out, (mx / w, my / h, (mx + im.width) / w, (my + im.height) / h)


def encoded(im: Image.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def decoded(data: bytes) -> Image.Image:
    """A JPEG decoded as indexing decodes it on the CPU (Pillow's draft mode)."""
    from lookalike.indexer.decode import load_image

    picture, _ = load_image(None, data=data, draft=256)  # type: ignore[arg-type]
    return picture


def box_otherwise(data: bytes) -> tuple[Box | None, bool]:
    """The box the GPU path finds for the same JPEG, run on the CPU: decoded in full by torchvision
    (libjpeg-turbo), reduced by block means (:func:`lookalike.indexer.device_jpeg.drafted`) and searched for borders
    on a copy resized by torch (``content_box_on_device``); and whether the picture was reduced at all (a picture
    not reduced is decoded to the same pixels, so only the resized copy differs)."""
    import torch
    from torchvision.io import ImageReadMode, decode_jpeg

    from lookalike.indexer.device_jpeg import content_box_on_device, draft_factor, drafted

    with warnings.catch_warnings():  # torchvision 0.29 marks its image decoders deprecated (for TorchCodec)
        warnings.simplefilter("ignore")
        full = decode_jpeg(torch.frombuffer(bytearray(data), dtype=torch.uint8), mode=ImageReadMode.RGB)
    h, w = full.shape[-2:]
    factor = draft_factor(w, h, 256)
    picture = drafted(full, factor)
    box = content_box_on_device(picture)
    ph, pw = picture.shape[-2:]
    return (None if box is None else (box[0] / pw, box[1] / ph, box[2] / pw, box[3] / ph)), factor > 1


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


def jittered(picture: Image.Image, seed: int) -> Image.Image:
    """Every pixel moved by -1, 0 or +1 at random."""
    arr = np.asarray(picture, dtype=np.int16) + np.random.default_rng(seed).integers(-1, 2, (*picture.size[::-1], 3))
    return Image.fromarray(arr.clip(0, 255).astype(np.uint8))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--limit", type=int, default=None, help="use only the first N corpus pictures")
    args = parser.parse_args()
    print(describe())
    start = time.perf_counter()
    count = {k: 0 for k in ("plain", "plain_cut", "framed", "right", "none", "wrong", "reduced")}
    kept: list[float] = []
    errors: list[float] = []
    moves: dict[str, list[float]] = {f"{k} {w}": [] for k in ("plain", "framed") for w in ("decoder", "jitter", "q")}
    far: list[str] = []
    far_q: list[str] = []
    wrong_by: dict[str, int] = {}
    for n, (name, im) in enumerate(sources(args.limit)):
        mat, shape = MATS[n % len(MATS)], list(SHAPES)[(n // len(MATS)) % len(SHAPES)]
        frame, truth = framed(im, mat, SHAPES[shape], random.Random(1000 + n))
        for kind, picture in (("plain", im), ("framed", frame)):
            boxes = {}
            for q in QUALITIES:
                data = encoded(picture, q)
                dec = decoded(data)
                box = boxes[q] = box_of(dec)
                count[kind] += 1
                if kind == "plain":
                    count["plain_cut"] += box is not None
                    kept.append(1.0 if box is None else (box[2] - box[0]) * (box[3] - box[1]))
                else:
                    errors.append(moved(box, truth))
                    if errors[-1] <= RIGHT:
                        count["right"] += 1
                    else:
                        count["none" if box is None else "wrong"] += 1
                        wrong_by[f"{mat}, {shape}, q{q}"] = wrong_by.get(f"{mat}, {shape}, q{q}", 0) + 1
                label = f"{name} ({kind}{'' if kind == 'plain' else ', ' + mat + ' ' + shape}, q{q})"
                other, reduced = box_otherwise(data)
                count["reduced"] += reduced
                moves[f"{kind} decoder"].append(moved(box, other))
                if moves[f"{kind} decoder"][-1] > FAR:
                    far.append(label)
                for seed in (1, 2):
                    moves[f"{kind} jitter"].append(moved(box, box_of(jittered(dec, 10 * n + seed))))
            for q in QUALITIES[1:]:
                moves[f"{kind} q"].append(moved(boxes[q], boxes[QUALITIES[0]]))
                if moves[f"{kind} q"][-1] > FAR:
                    far_q.append(f"{name} ({kind}, q{q})")
    print(f"{count['plain'] // len(QUALITIES)} pictures, each plain and framed at {len(QUALITIES)} qualities: ", end="")
    print(f"{count['plain'] + count['framed']} decodes ({count['reduced']} reduced by the draft), ", end="")
    print(f"{time.perf_counter() - start:.0f} s\n")
    print("| decodes (picture x quality) | count | share |")
    print("|---|---|---|")
    for label, k, total in (
        ("plain, given a box", count["plain_cut"], count["plain"]),
        ("framed, trimmed right (every side within 1.5%)", count["right"], count["framed"]),
        ("framed, not trimmed", count["none"], count["framed"]),
        ("framed, trimmed wrong", count["wrong"], count["framed"]),
    ):
        print(f"| {label} | {k} / {total} | {k / max(1, total):.3f} |")
    print(f"\nplain pictures: boxes keep {np.mean(kept):.4f} of the area on average; ", end="")
    print(f"framed: each box's worst side {np.mean(errors):.4f} of the side off the true one on average\n")
    print(f"| box moved (a side, share of the picture's side) | pairs | > {TOLERANCE:.1%} | > {FAR:.0%} |")
    print("|---|---|---|---|")
    labels = {
        "decoder": "the GPU path's decode and probe",
        "jitter": "every pixel +-1 at random",
        "q": "quality 40 and 15 vs 90",
    }
    for key, values in moves.items():
        kind, what = key.split()
        v = np.array(values)
        print(f"| {kind}: {labels[what]} | {len(v)} | {int(np.sum(v > TOLERANCE))} | {int(np.sum(v > FAR))} |")
    missed = ", ".join(f"{k}: {v}" for k, v in sorted(wrong_by.items(), key=lambda kv: -kv[1]))
    print(f"\nframed decodes not trimmed right, by mat, shape and quality: {missed or 'none'}")
    print(f"moved > {FAR:.0%} by the GPU path's decode and probe: {'; '.join(far) or 'none'}")
    dark = sum(label.split(" (")[0].endswith("_dark") for label in far_q)
    print(f"moved > {FAR:.0%} by quality 40 or 15 vs 90 ({dark} of {len(far_q)} darkened): ", end="")
    print("; ".join(far_q) or "none")


if __name__ == "__main__":
    main()
