"""Any timm image model as an embedder (pooled pre-logits features)."""

from __future__ import annotations

import torch

from lookalike.errors import UnknownModelError
from lookalike.indexer.embedders.base import Preprocess, TorchEmbedder
from lookalike.indexer.embedders.checkpoint import load_strictly
from lookalike.indexer.embedders.weights import RANDOM_WEIGHTS, check_weights_file, weights_tag_for_file


def _preprocess(name: str) -> Preprocess:
    import timm
    from timm.data import resolve_data_config

    cfg = timm.models.get_pretrained_cfg(name)
    if cfg is None:
        raise UnknownModelError(f"timm has no model {name!r} (see timm.list_models())")
    data = resolve_data_config(pretrained_cfg=cfg.to_dict())
    size = int(data["input_size"][-1])
    crop_pct = float(data.get("crop_pct") or 0.875)
    interpolation = data.get("interpolation") or "bicubic"
    if interpolation not in ("bicubic", "bilinear", "nearest", "lanczos"):
        interpolation = "bicubic"
    return Preprocess(
        size=size,
        resize=round(size / crop_pct),
        interpolation=interpolation,
        mean=tuple(data["mean"]),
        std=tuple(data["std"]),
    )


def build_timm(name: str, weights: str | None = None, device: str | None = None) -> TorchEmbedder:
    """A timm model with its classifier removed.

    Args:
        name: a timm model name, optionally with a pretrained tag (``convnext_tiny.fb_in22k``).
        weights: None for timm's pretrained weights (hub cache), a local checkpoint, or ``random``.
        device: where to run it.
    """
    import timm

    base = name.split(".")[0]
    if base not in timm.list_models() and name not in timm.list_models(pretrained=True):
        raise UnknownModelError(f"timm has no model {name!r} (see timm.list_models())")
    local = check_weights_file(weights)
    tag = RANDOM_WEIGHTS if weights == RANDOM_WEIGHTS else (weights_tag_for_file(local) if local else f"timm:{name}")

    def build() -> torch.nn.Module:
        model = timm.create_model(name, pretrained=weights is None, num_classes=0)
        if local is not None:
            cfg = getattr(model, "pretrained_cfg", None)
            head = (cfg.get("classifier") if isinstance(cfg, dict) else None) or "classifier"
            load_strictly(model, local, f"timm:{name}", classifier=[head] if isinstance(head, str) else head)
        return model

    return TorchEmbedder(f"timm:{name}", tag, _preprocess(name), build, device)
