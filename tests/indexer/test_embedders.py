"""Model registry and embedders: the default model's real weights give semantics; other families plug in."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from lookalike.errors import TextQueryNotSupportedError, UnknownModelError
from lookalike.indexer.embedders.efficientnet import packaged_checkpoint
from lookalike.indexer.embedders.registry import collection_name, create_embedder, parse_spec

pytestmark = pytest.mark.catalog_free  # opens no catalog: the PostgreSQL run leaves it out


@pytest.fixture(scope="module")
def default():
    return create_embedder("efficientnet_lite0", device="cpu")


def test_default_weights_classify_real_photos(images):
    """The remapped packaged checkpoint loads strictly and predicts the right ImageNet classes."""
    import timm

    from lookalike.indexer.embedders.base import normalise_pixels
    from lookalike.indexer.embedders.efficientnet import LITE0_PREPROCESS, remap_lukemelas

    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    state = torch.load(packaged_checkpoint(), map_location="cpu", weights_only=True)
    model.load_state_dict(remap_lukemelas(state), strict=True)
    model.eval()
    batch = torch.from_numpy(np.stack([LITE0_PREPROCESS(images["chelsea"]), LITE0_PREPROCESS(images["coffee"])]))
    with torch.inference_mode():
        top = model(normalise_pixels(LITE0_PREPROCESS, batch)).topk(3).indices.tolist()
    assert top[0][0] in {281, 282, 285}  # tabby / tiger cat / Egyptian cat
    assert top[1][0] == 967  # espresso


def test_default_embedder_vectors_are_unit_and_meaningful(default, images):
    cat, coffee = images["chelsea"], images["coffee"]
    small_flipped_cat = cat.transpose(Image.Transpose.FLIP_LEFT_RIGHT).resize((200, 133))
    vecs = default.embed_images([cat, coffee, small_flipped_cat])
    assert vecs.dtype == np.float32 and vecs.shape == (3, 1280)
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    sims = vecs @ vecs.T
    assert sims[0, 2] > 0.85 > 0.3 > sims[0, 1]


def test_the_packaged_checkpoint_loads_strictly_without_its_classifier(tmp_path):
    """The embedding network (no classifier) takes every tensor of the reference-named checkpoint but the
    classifier's; a copy missing one tensor is an error naming it (the loader is the one local files use)."""
    import timm

    from lookalike.indexer.embedders.checkpoint import load_strictly
    from lookalike.indexer.embedders.efficientnet import reference_keys, remap_lukemelas

    state = torch.load(packaged_checkpoint(), map_location="cpu", weights_only=True)
    model = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=0)
    load_strictly(model, packaged_checkpoint(), "efficientnet_lite0", classifier=("classifier",), rename=reference_keys)
    expected = {
        k: v for k, v in remap_lukemelas(state).items() if not k.startswith("classifier.") and "num_batches" not in k
    }
    loaded = model.state_dict()
    assert set(expected) == {k for k in loaded if not k.endswith("num_batches_tracked")}
    assert all(torch.equal(loaded[k], v) for k, v in expected.items())
    lacking = tmp_path / "lacking.pth"
    torch.save({k: v for k, v in state.items() if k != "_conv_head.weight"}, lacking)
    with pytest.raises(UnknownModelError, match=r"does not fit efficientnet_lite0: missing 1 \(conv_head.weight\)"):
        load_strictly(model, lacking, "efficientnet_lite0", classifier=("classifier",), rename=reference_keys)


def test_default_model_has_no_text_tower(default):
    with pytest.raises(TextQueryNotSupportedError, match="CLIP"):
        default.embed_texts(["a cat"])


@pytest.mark.parametrize("spec", ["resnet", "timm:", "foo:bar", "timm:resnet18@openai"])
def test_bad_specs_are_clear_errors(spec):
    with pytest.raises(UnknownModelError):
        parse_spec(spec)


def test_unknown_names_within_a_family():
    with pytest.raises(UnknownModelError, match="timm has no model"):
        create_embedder("timm:not_a_model", weights="random")
    with pytest.raises(UnknownModelError, match="torchvision has no"):
        create_embedder("torchvision:not_a_model", weights="random")
    with pytest.raises(UnknownModelError, match="does not exist"):
        create_embedder("efficientnet_lite0", weights="/nonexistent.pth")


@pytest.mark.parametrize(
    ("spec", "dim"), [("timm:resnet18", 512), ("torchvision:mobilenet_v3_small", 1024), ("open_clip:RN50", 1024)]
)
def test_other_families_plug_in_with_random_weights(spec, dim, images):
    emb = create_embedder(spec, weights="random", device="cpu")
    vecs = emb.embed_images([images["chelsea"], images["coffee"]])
    assert vecs.shape == (2, dim)
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-4)
    assert emb.weights_tag == "random"


def test_clip_text_queries_share_the_image_space():
    emb = create_embedder("open_clip:RN50", weights="random", device="cpu")
    assert emb.supports_text
    assert emb.embed_texts(["a cat", "a cup of coffee"]).shape == (2, emb.dim)


def test_local_checkpoint_is_loaded_and_tagged(tmp_path, default, images):
    path = tmp_path / "lite0.pth"
    torch.save(torch.load(packaged_checkpoint(), weights_only=True), path)
    local = create_embedder("efficientnet_lite0", weights=str(path), device="cpu")
    assert local.weights_tag.startswith("file:lite0.pth:")
    assert np.allclose(local.embed_images([images["coffee"]]), default.embed_images([images["coffee"]]), atol=1e-5)
    assert collection_name("efficientnet_lite0", str(path)) == f"efficientnet_lite0+{local.weights_tag}"


@pytest.mark.parametrize(
    ("spec", "make"),
    [
        ("timm:resnet18", "timm"),
        ("torchvision:mobilenet_v3_small", "torchvision"),
    ],
)
def test_local_checkpoints_load_strictly_and_lose_wrapper_prefixes(tmp_path, images, spec, make):
    """A DataParallel checkpoint (``module.`` keys, in a training container) loads every tensor; one that does
    not fit the network is a clear error naming the keys, not a network left with random weights."""
    import timm
    import torchvision

    torch.manual_seed(0)
    if make == "timm":
        net = timm.create_model("resnet18", pretrained=False)
    else:
        net = torchvision.models.get_model("mobilenet_v3_small", weights=None)
    wrapped = tmp_path / "wrapped.pth"
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in net.state_dict().items()}}, wrapped)
    first = create_embedder(spec, weights=str(wrapped), device="cpu")
    again = create_embedder(spec, weights=str(wrapped), device="cpu")
    v1, v2 = first.embed_images([images["coffee"]]), again.embed_images([images["coffee"]])
    assert np.allclose(v1, v2, atol=1e-5)  # the file's weights, not two different random draws
    other = create_embedder(spec, weights="random", device="cpu")
    assert not np.allclose(v1, other.embed_images([images["coffee"]]), atol=1e-3)

    broken = tmp_path / "broken.pth"
    state = dict(net.state_dict())
    dropped = next(k for k in state if k.endswith("weight") and "bn" not in k)
    del state[dropped]
    state["extra.weight"] = torch.zeros(3)
    torch.save(state, broken)
    with pytest.raises(UnknownModelError, match=rf"does not fit {spec}: missing 1 \({dropped}\); unexpected 1"):
        create_embedder(spec, weights=str(broken), device="cpu").embed_images([images["coffee"]])


def test_open_clip_weights_offline_say_what_to_do(monkeypatch):
    """Offline, open_clip cannot download its weights: one error that says where they go and how to pass a file."""
    import open_clip

    def offline(*args, **kwargs):
        raise RuntimeError("Failed to download weights for tag 'openai': Failed to download file\nmore lines")

    monkeypatch.setattr(open_clip, "create_model", offline)
    embedder = create_embedder("open_clip:ViT-B-32", device="cpu")
    with pytest.raises(UnknownModelError) as info:
        embedder.embed_texts(["a cat"])
    message = str(info.value)
    assert message.startswith("cannot load open_clip weights 'openai' for ViT-B-32: Failed to download")
    assert "--weights FILE" in message and "~/.cache/huggingface" in message and "\n" not in message


def test_a_checkpoint_without_batchnorm_counters_loads(tmp_path, images):
    """Older checkpoints have no ``num_batches_tracked``: torch accepts them, so lookalike does too."""
    import timm

    torch.manual_seed(1)
    net = timm.create_model("resnet18", pretrained=False)
    old = tmp_path / "old.pth"
    torch.save({k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}, old)
    a = create_embedder("timm:resnet18", weights=str(old), device="cpu").embed_images([images["coffee"]])
    b = create_embedder("timm:resnet18", weights=str(old), device="cpu").embed_images([images["coffee"]])
    assert np.allclose(a, b, atol=1e-5)
