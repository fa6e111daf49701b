"""OpenCLIP models: image and text towers in one space, so text queries work."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from lookalike.errors import UnknownModelError
from lookalike.indexer.embedders.base import Preprocess, TorchEmbedder, l2_normalise
from lookalike.indexer.embedders.quiet import quiet_loggers
from lookalike.indexer.embedders.weights import RANDOM_WEIGHTS, check_weights_file, weights_tag_for_file


class OpenClipEmbedder(TorchEmbedder):
    """An OpenCLIP model: pictures through ``encode_image``, texts through ``encode_text``."""

    supports_text = True

    def __init__(self, arch: str, pretrained: str | None, weights: str | None, device: str | None) -> None:
        import open_clip

        if arch not in open_clip.list_models():
            raise UnknownModelError(f"open_clip has no architecture {arch!r} (see open_clip.list_models())")
        local = check_weights_file(weights)
        if weights == RANDOM_WEIGHTS:
            source, tag = None, RANDOM_WEIGHTS
        elif local is not None:
            source, tag = str(local), weights_tag_for_file(local)
        else:
            tags = open_clip.list_pretrained_tags_by_model(arch)
            if pretrained is None and not tags:
                raise UnknownModelError(f"open_clip has no pretrained weights for {arch}; pass --weights PATH")
            source = pretrained or tags[0]
            tag = source
        self._arch, self._source = arch, source
        spec = f"open_clip:{arch}@{tag}" if source and local is None else f"open_clip:{arch}"
        super().__init__(spec, tag, _preprocess(arch), self._make, device)
        self._tokenizer: Any = None

    def _make(self) -> torch.nn.Module:
        import open_clip

        try:
            # the download libraries' own warnings are silenced: a failure is reported once, as our error
            with quiet_loggers("", "huggingface_hub", "huggingface_hub.utils._http"):
                model = open_clip.create_model(self._arch, pretrained=self._source)
        except RuntimeError as e:
            offline = "download" in str(e).lower() or "connection" in str(e).lower()
            hint = (
                "; offline: fetch the checkpoint where there is a network (open_clip.create_model downloads it into "
                "the Hugging Face cache, ~/.cache/huggingface, which can be copied here) or pass --weights FILE "
                "with a local open_clip checkpoint"
                if offline
                else ""
            )
            reason = str(e).splitlines()[0]
            raise UnknownModelError(
                f"cannot load open_clip weights {self._source!r} for {self._arch}: {reason}{hint}"
            ) from e
        return model

    def forward(self, module: torch.nn.Module, pixels: torch.Tensor) -> torch.Tensor:
        """Image-tower features."""
        out: torch.Tensor = module.encode_image(pixels)  # type: ignore[operator]
        return out

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Text-tower features, in the same space as the images."""
        import open_clip

        module = self.load()
        if self._tokenizer is None:
            self._tokenizer = open_clip.get_tokenizer(self._arch)
        tokens = self._tokenizer(list(texts)).to(self.device)
        with torch.inference_mode():
            feats = module.encode_text(tokens)  # type: ignore[operator]
        return l2_normalise(feats)


def _preprocess(arch: str) -> Preprocess:
    import open_clip

    cfg = open_clip.get_model_config(arch) or {}
    vision = cfg.get("vision_cfg", {})
    size = vision.get("image_size", 224)
    size = int(size[0] if isinstance(size, list | tuple) else size)
    pp = cfg.get("preprocess_cfg", {})
    mean = tuple(pp.get("mean", open_clip.OPENAI_DATASET_MEAN))
    std = tuple(pp.get("std", open_clip.OPENAI_DATASET_STD))
    # open_clip resizes the short side to the input size, then centre-crops
    return Preprocess(size=size, resize=size, interpolation=pp.get("interpolation", "bicubic"), mean=mean, std=std)


def build_open_clip(
    arch: str, pretrained: str | None = None, weights: str | None = None, device: str | None = None
) -> OpenClipEmbedder:
    """An OpenCLIP embedder.

    Args:
        arch: architecture (``ViT-B-32``, ``RN50`` ...).
        pretrained: an open_clip pretrained tag; None picks the first listed for the architecture.
        weights: a local checkpoint instead, or ``random`` for untrained weights.
        device: where to run it.
    """
    return OpenClipEmbedder(arch, pretrained, weights, device)
