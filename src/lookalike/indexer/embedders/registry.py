"""One registry of model families, one spec parser, one factory.

The registry imports a family's builder module only when that family is built (torch, timm, open_clip load then);
builders import nothing from here (their shared weight helpers live in :mod:`.weights`), so there is no cycle."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lookalike.errors import UnknownModelError
from lookalike.indexer.embedders.weights import RANDOM_WEIGHTS, check_weights_file, weights_tag_for_file
from lookalike.types import Backend

if TYPE_CHECKING:
    from lookalike.indexer.embedders.base import Embedder

DEFAULT_SPEC = "efficientnet_lite0"


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model spec: ``family`` and, within it, ``name`` and optional ``pretrained`` tag."""

    family: str
    name: str
    pretrained: str | None = None

    def __str__(self) -> str:
        if self.family == "efficientnet_lite0":
            return "efficientnet_lite0"
        tag = f"@{self.pretrained}" if self.pretrained else ""
        return f"{self.family}:{self.name}{tag}"


def _efficientnet(spec: ModelSpec, weights: str | None, device: str | None) -> Embedder:
    from lookalike.indexer.embedders.efficientnet import build_efficientnet_lite0

    return build_efficientnet_lite0(weights, device)


def _timm(spec: ModelSpec, weights: str | None, device: str | None) -> Embedder:
    from lookalike.indexer.embedders.timm_cnn import build_timm

    return build_timm(spec.name, weights, device)


def _torchvision(spec: ModelSpec, weights: str | None, device: str | None) -> Embedder:
    from lookalike.indexer.embedders.torchvision_cnn import build_torchvision

    return build_torchvision(spec.name, weights, device)


def _open_clip(spec: ModelSpec, weights: str | None, device: str | None) -> Embedder:
    from lookalike.indexer.embedders.openclip import build_open_clip

    return build_open_clip(spec.name, spec.pretrained, weights, device)


FAMILIES: dict[str, Callable[[ModelSpec, str | None, str | None], Embedder]] = {
    "efficientnet_lite0": _efficientnet,
    "timm": _timm,
    "torchvision": _torchvision,
    "open_clip": _open_clip,
}


def parse_spec(spec: str) -> ModelSpec:
    """Parse ``efficientnet_lite0``, ``timm:NAME``, ``torchvision:NAME`` or ``open_clip:ARCH[@PRETRAINED]``.

    Raises:
        UnknownModelError: the spec has no known family or no name.
    """
    text = spec.strip()
    if text in ("efficientnet_lite0", "default", ""):
        return ModelSpec("efficientnet_lite0", "tf_efficientnet_lite0")
    family, sep, rest = text.partition(":")
    if not sep or family not in FAMILIES or family == "efficientnet_lite0":
        known = "efficientnet_lite0, timm:NAME, torchvision:NAME, open_clip:ARCH[@PRETRAINED]"
        raise UnknownModelError(f"unknown model {spec!r}; use one of: {known}")
    name, _, pretrained = rest.partition("@")
    if not name:
        raise UnknownModelError(f"model spec {spec!r} names no model after '{family}:'")
    if pretrained and family != "open_clip":
        raise UnknownModelError(f"'@{pretrained}' tags are for open_clip models; use --weights for {family}")
    return ModelSpec(family, name, pretrained or None)


def collection_name(spec: str, weights: str | None) -> str:
    """The collection a model's vectors go to: the normalised spec, plus the weights when not the default.

    Computed without building the model, so an unchanged re-index never loads it.
    """
    name = str(parse_spec(spec))
    if weights is None:
        return name
    if weights == RANDOM_WEIGHTS:
        return f"{name}+{RANDOM_WEIGHTS}"
    path = check_weights_file(weights)
    assert path is not None
    return f"{name}+{weights_tag_for_file(path)}"


def create_embedder(
    spec: str = DEFAULT_SPEC,
    weights: str | None = None,
    device: str | None = None,
    backend: Backend | str = Backend.TORCH,
    models: Path | None = None,
    threads: int = 0,
) -> Embedder:
    """Build the embedder a spec names (the network itself is built lazily on first use).

    Args:
        spec: model spec, see :func:`parse_spec`.
        weights: None for the model's default weights (downloaded to the hub cache by their libraries
            when not cached), a local checkpoint path, or ``random`` for untrained weights.
        device: ``cpu``, ``cuda`` or None for automatic (the CPU for ``onnxruntime`` and ``openvino``).
        backend: the runtime of the network (``torch``, ``onnxruntime``, ``openvino``, ``auto``); see
            :mod:`.backends`.
        models: where exported graphs are cached (``<home>/models``); None keeps the network on torch.
        threads: threads of an ONNX Runtime or OpenVINO session (0: the runtime's default).

    Raises:
        UnknownModelError: bad spec, unknown name within a family, or missing weights file.
        UsageError: an unknown backend, or one that is not installed.
    """
    parsed = parse_spec(spec)
    check_weights_file(weights)
    if device is None and backend in (Backend.ONNXRUNTIME, Backend.OPENVINO):
        device = "cpu"  # a CPU runtime asked for by name: its torch reference (and verification) runs there too
    embedder = FAMILIES[parsed.family](parsed, weights, device)
    if backend == Backend.TORCH:
        return embedder
    from lookalike.indexer.embedders.backends import on_backend

    return on_backend(embedder, backend, models, threads)
