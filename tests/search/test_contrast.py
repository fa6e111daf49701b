"""A darkened copy tied by keypoints is compared at its original's contrast: its faint patches once counted as
disagreeing, while the comparisons of smooth pictures (no keypoints) keep absolute contrast (real photos)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageEnhance

from lookalike.search import overlap
from lookalike.search.features import extract
from lookalike.search.image_dupes import VerifyRule, verify
from lookalike.search.verify import match

pytestmark = pytest.mark.catalog_free  # opens no catalog: the PostgreSQL run leaves it out


def _reshoot(im: Image.Image, seed: int = 0) -> Image.Image:
    """A poor phone re-shoot: at 45% brightness, grey-level noise of 9, 80% of the size, JPEG quality 20."""
    dark = np.asarray(ImageEnhance.Brightness(im.convert("RGB")).enhance(0.45), dtype=np.float32)
    noisy = np.clip(dark + np.random.default_rng(seed).normal(0.0, 9.0, dark.shape), 0, 255).astype(np.uint8)
    out = Image.fromarray(noisy)
    out = out.resize((round(out.width * 0.8), round(out.height * 0.8)))
    buf = io.BytesIO()
    out.save(buf, "JPEG", quality=20)
    return Image.open(io.BytesIO(buf.getvalue())).convert("RGB")


@pytest.mark.parametrize("name", ["rocket", "camera", "retina"])
def test_a_dark_noisy_reshoot_is_verified(images, name: str, monkeypatch) -> None:
    im = images[name].convert("RGB")
    fa, fb = extract(im), extract(_reshoot(im))
    m = match(fa, fb)
    assert m is not None and m.inliers >= 50 and m.agreement >= 0.95
    assert verify(fa, fb, 0.9, VerifyRule()).duplicate
    # without the contrast: its faint patches disagree (agreement 0.72-0.73, under the 0.75 needed)
    monkeypatch.setattr(overlap, "CONTRAST_FLOOR", 1.0)
    flat = match(fa, fb)
    assert flat is not None and flat.agreement < 0.75
    assert not verify(fa, fb, 0.9, VerifyRule()).duplicate


def test_a_dark_reshoot_with_a_photo_pasted_over_a_quarter_still_disagrees_there(images) -> None:
    """The contrast scales thresholds, not evidence: what an edit pasted over the picture stays a block that
    disagrees (a picture pasted over a shared background is no copy)."""
    im = images["camera"].convert("RGB")
    shot = _reshoot(im)
    pasted = shot.copy()
    other = images["coffee"].convert("RGB").resize((shot.width // 2, shot.height // 2))
    pasted.paste(ImageEnhance.Brightness(other).enhance(0.45), (0, 0))
    fa = extract(im)
    m = match(fa, extract(pasted))
    assert m is not None and m.block > VerifyRule().max_block, m and m.block
    assert not verify(fa, extract(pasted), 0.9, VerifyRule()).duplicate
    clean = match(fa, extract(shot))
    assert clean is not None and clean.block < 0.05


def test_a_box_pasted_over_a_copy_is_not_taken_for_contrast(images, monkeypatch) -> None:
    """The contrast is the median over patches structured in both: a white, black-framed box with a caption over a
    corner of a copy at the original's contrast changes it nothing (measured as one ratio of spreads over the whole
    overlap, it read as 1.5 times the contrast and failed the moon's copy: agreement 0.58)."""
    im = images["moon"].convert("RGB")
    boxed = im.copy()
    draw = ImageDraw.Draw(boxed)
    w, h = boxed.size
    draw.rectangle((w * 0.6, h * 0.75, w * 0.95, h * 0.92), fill="white", outline="black", width=4)
    draw.text((w * 0.62, h * 0.78), "(c) lookalike", fill="black")
    fa, fb = extract(im), extract(boxed)
    m = match(fa, fb)
    assert m is not None and verify(fa, fb, 0.9, VerifyRule()).duplicate
    monkeypatch.setattr(overlap, "CONTRAST_FLOOR", 1.0)
    plain = match(fa, fb)
    assert plain is not None and (m.agreement, m.block) == (plain.agreement, plain.block)
