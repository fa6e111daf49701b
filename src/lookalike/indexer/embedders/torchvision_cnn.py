"""torchvision classification models as embedders (the classifier replaced by identity)."""

from __future__ import annotations

import torch

from lookalike.errors import UnknownModelError
from lookalike.indexer.embedders.base import Preprocess, TorchEmbedder
from lookalike.indexer.embedders.checkpoint import load_strictly
from lookalike.indexer.embedders.weights import RANDOM_WEIGHTS, check_weights_file, weights_tag_for_file


def strip_classifier(model: torch.nn.Module) -> torch.nn.Module:
    """Replace the final classification layer with identity so the model returns pooled features."""
    for attr in ("fc", "head", "heads"):
        if isinstance(getattr(model, attr, None), torch.nn.Module):
            setattr(model, attr, torch.nn.Identity())
            return model
    classifier = getattr(model, "classifier", None)
    if isinstance(classifier, torch.nn.Sequential):
        for i in range(len(classifier) - 1, -1, -1):
            if isinstance(classifier[i], torch.nn.Linear):
                classifier[i] = torch.nn.Identity()
                return model
    if isinstance(classifier, torch.nn.Linear):
        model.classifier = torch.nn.Identity()
        return model
    raise UnknownModelError(f"cannot find the classifier of {type(model).__name__} to remove")


def _classifiers(model: torch.nn.Module) -> list[str]:
    """The name of the layer :func:`strip_classifier` removes (a checkpoint may hold it or not)."""
    for attr in ("fc", "head", "heads"):
        if isinstance(getattr(model, attr, None), torch.nn.Module):
            return [attr]
    classifier = getattr(model, "classifier", None)
    if isinstance(classifier, torch.nn.Sequential):
        last = [i for i, layer in enumerate(classifier) if isinstance(layer, torch.nn.Linear)]
        return [f"classifier.{last[-1]}"] if last else []
    return ["classifier"] if isinstance(classifier, torch.nn.Linear) else []


def _preprocess(name: str) -> Preprocess:
    import torchvision

    try:
        tr = torchvision.models.get_model_weights(name).DEFAULT.transforms()
    except (ValueError, KeyError, AttributeError):
        return Preprocess()
    interpolation = getattr(tr.interpolation, "value", "bilinear")
    return Preprocess(
        size=int(tr.crop_size[0]),
        resize=int(tr.resize_size[0]),
        interpolation=str(interpolation),
        mean=tuple(tr.mean),
        std=tuple(tr.std),
    )


def build_torchvision(name: str, weights: str | None = None, device: str | None = None) -> TorchEmbedder:
    """A torchvision model (``resnet50``, ``convnext_tiny`` ...) without its classifier.

    Args:
        name: a name from ``torchvision.models.list_models()``.
        weights: None for the DEFAULT weights (torch hub cache), a local checkpoint, or ``random``.
        device: where to run it.
    """
    import torchvision

    if name not in torchvision.models.list_models(module=torchvision.models):
        raise UnknownModelError(f"torchvision has no classification model {name!r}")
    local = check_weights_file(weights)
    tag = (
        RANDOM_WEIGHTS
        if weights == RANDOM_WEIGHTS
        else (weights_tag_for_file(local) if local else f"torchvision:{name}:DEFAULT")
    )

    def build() -> torch.nn.Module:
        model = torchvision.models.get_model(name, weights="DEFAULT" if weights is None else None)
        if local is not None:
            load_strictly(model, local, f"torchvision:{name}", classifier=_classifiers(model))
        return strip_classifier(model)

    return TorchEmbedder(f"torchvision:{name}", tag, _preprocess(name), build, device)
