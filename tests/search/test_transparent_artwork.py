"""White-on-transparent artwork (../shared/BAD_INPUTS.md row 77) indexed with the real default model: the shapes
survive, different designs are not duplicates, one design as PNG and as WebP still is; an old collection keeps
compositing onto white."""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont
from skimage import data

from lookalike.indexer.colour import AlphaRule, to_rgb
from lookalike.indexer.describe import MediaDescriptor
from lookalike.indexer.embedders.registry import collection_name
from lookalike.indexer.pipeline import pooling_config
from lookalike.workspace import Workspace

SIDE = 384
WHITE = (255, 255, 255, 255)


def _canvas() -> tuple[Image.Image, ImageDraw.ImageDraw]:
    im = Image.new("RGBA", (SIDE, SIDE), (0, 0, 0, 0))
    return im, ImageDraw.Draw(im)


def _star() -> Image.Image:
    im, draw = _canvas()
    radius = [SIDE * 0.45 if i % 2 == 0 else SIDE * 0.18 for i in range(10)]
    angle = [i * math.pi / 5 for i in range(10)]
    draw.polygon(
        [(SIDE / 2 + r * math.sin(a), SIDE / 2 - r * math.cos(a)) for r, a in zip(radius, angle, strict=True)],
        fill=WHITE,
    )
    return im


def _letter() -> Image.Image:
    im, draw = _canvas()
    draw.text((SIDE / 2, SIDE / 2), "A", font=ImageFont.load_default(size=int(SIDE * 0.8)), fill=WHITE, anchor="mm")
    return im


def _dots() -> Image.Image:
    im, draw = _canvas()
    r = SIDE * 0.09
    for i, j in itertools.product(range(4), range(4)):
        x, y = SIDE * (i + 0.5) / 4, SIDE * (j + 0.5) / 4
        draw.ellipse((x - r, y - r, x + r, y + r), fill=WHITE)
    return im


def _logo() -> Image.Image:
    """scikit-image's logo (real RGBA artwork) as a white silhouette."""
    logo = data.logo()
    im = Image.new("RGBA", (logo.shape[1], logo.shape[0]), WHITE)
    im.putalpha(Image.fromarray(logo[..., 3]))
    return im.resize((SIDE, SIDE))


DESIGNS = {"star": _star, "letter": _letter, "dots": _dots, "logo": _logo}


def _write_designs(root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    for name, draw in DESIGNS.items():
        im = draw()
        im.save(root / f"{name}.png")
        im.save(root / f"{name}.webp", quality=80)  # lossy colour, lossless alpha: WebP's defaults


def _vectors(ws: Workspace, root: Path) -> dict[str, np.ndarray]:
    store = ws.store()
    cid = store.info.id
    out = {}
    for path in sorted(root.iterdir()):
        media_id = store.catalog.media_id(cid, str(path))
        assert media_id is not None, path
        out[path.name] = store.catalog.vectors_of(cid, media_id, store.dim)[0].embedding
    return out


@pytest.fixture(scope="module")
def artwork(tmp_path_factory, settings_factory):
    root = tmp_path_factory.mktemp("artwork") / "designs"
    _write_designs(root)
    settings = settings_factory()
    with Workspace(settings) as ws:
        report = ws.index([root])
        vectors = _vectors(ws, root)
        groups = [(g.kind, sorted(Path(i.path).name for i in g.items)) for g in ws.duplicates(similar=True)]
    return settings, report, vectors, groups


def test_every_design_is_indexed(artwork):
    _, report, vectors, _ = artwork
    assert report.failed == [] and report.images == 2 * len(DESIGNS)
    assert sorted(vectors) == sorted(f"{n}.{ext}" for n in DESIGNS for ext in ("png", "webp"))


def test_different_designs_are_not_near_duplicates(artwork):
    settings, _, vectors, _ = artwork
    for a, b in itertools.combinations(DESIGNS, 2):
        for ext_a, ext_b in itertools.product(("png", "webp"), repeat=2):
            cosine = float(vectors[f"{a}.{ext_a}"] @ vectors[f"{b}.{ext_b}"])
            assert cosine < settings.similar_threshold, (a, b, cosine)  # were all 1.0: blank pictures


def test_one_design_as_png_and_as_webp_is_still_one_picture(artwork):
    _, _, vectors, _ = artwork
    for name in DESIGNS:
        assert float(vectors[f"{name}.png"] @ vectors[f"{name}.webp"]) > 0.99, name


def test_dupes_pairs_each_design_with_its_own_copy_only(artwork):
    """Verified groups need keypoints, which not every smooth silhouette has; none joins two designs. Each design
    is paired with its own copy once: verified, or else as similar (a verified pair is not repeated as similar)."""
    *_, groups = artwork
    pairs = sorted([f"{n}.png", f"{n}.webp"] for n in DESIGNS)
    assert sorted(names for _, names in groups) == pairs  # similar groups were one group of all eight
    assert any(kind == "duplicates" for kind, _ in groups)


def test_an_old_collection_keeps_compositing_onto_white(tmp_path, settings_factory):
    """A collection made before the rule was stored holds vectors of pictures flattened onto white; its new files
    and its queries must be described the same way, or they would not match what it holds."""
    root = tmp_path / "designs"
    _write_designs(root)
    settings = settings_factory()
    old = {k: v for k, v in pooling_config(settings).items() if k not in ("alpha", "animation_frames")}
    with Workspace(settings) as ws:
        emb = ws.embedder(settings.model, settings.weights)
        name = collection_name(settings.model, settings.weights)
        ws.library.create_collection(name, emb.spec, emb.weights_tag, emb.dim, emb.preprocess.to_dict(), old)
        ws.index([root])
        stored = _vectors(ws, root)
        top = ws.search_files([root / "star.png"], k=1)[0].hits[0]
        flattened = to_rgb(Image.open(root / "star.png"), AlphaRule.WHITE)
        expected = emb.embed_images([MediaDescriptor.from_pooling(old).clean_image(flattened)])[0]
    assert np.allclose(stored["star.png"], expected, atol=1e-5)
    assert top.score > 0.999  # the query is described as the stored files were (every design is blank there)
