"""Local checkpoints loaded strictly: a file that does not fit the network is an error naming the keys, never a
network that silently keeps its random weights."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

import torch

from lookalike.errors import UnknownModelError

CONTAINERS = ("state_dict", "model_state_dict", "model", "module")  # where training scripts put the weights
PREFIXES = ("module.", "_orig_mod.", "model.")  # DataParallel/DDP, torch.compile, Lightning-style wrappers
SHOWN = 5  # keys named in an error


def read_state(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint file, unwrapped from a training container and from wrapper prefixes that all
    its keys share."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    while isinstance(state, dict) and not _tensors(state):
        inner = next((state[k] for k in CONTAINERS if isinstance(state.get(k), dict)), None)
        if inner is None:
            break
        state = inner
    if not isinstance(state, dict) or not _tensors(state):
        raise UnknownModelError(f"{path} holds no state dict of tensors")
    state = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    stripped = True
    while stripped:
        stripped = False
        for prefix in PREFIXES:
            if all(k.startswith(prefix) for k in state):
                state = {k[len(prefix) :]: v for k, v in state.items()}
                stripped = True
    return state


def load_strictly(
    model: torch.nn.Module,
    path: Path,
    spec: str,
    classifier: Iterable[str] = (),
    rename: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None = None,
) -> None:
    """Load ``path`` into ``model``; keys under the ``classifier`` prefixes may be missing or extra (they are not
    part of the embedding). ``rename`` maps another implementation's key names onto the model's first.

    Raises:
        UnknownModelError: the checkpoint misses keys of the network or holds keys it does not have, or a tensor's
            shape differs; the message names the first of them.
    """
    state = read_state(path)
    if rename is not None:
        state = rename(state)
    heads = tuple(f"{c}." for c in classifier)
    own = model.state_dict()
    misshapen = [k for k in state if k in own and state[k].shape != own[k].shape and not k.startswith(heads)]
    missing: list[str] = []
    unexpected: list[str] = []
    if not misshapen:
        fitting = {k: v for k, v in state.items() if k not in own or v.shape == own[k].shape}
        # torch's own accounting: its compatibility hooks accept what old checkpoints lack (BatchNorm's
        # num_batches_tracked), so only keys it reports matter
        result = model.load_state_dict(fitting, strict=False)
        missing = [k for k in result.missing_keys if not k.startswith(heads)]
        unexpected = [k for k in result.unexpected_keys if not k.startswith(heads)]
    if missing or unexpected or misshapen:
        parts = [
            f"{label} {len(keys)} ({', '.join(keys[:SHOWN])}{', ...' if len(keys) > SHOWN else ''})"
            for label, keys in (("missing", missing), ("unexpected", unexpected), ("wrong shape", misshapen))
            if keys
        ]
        raise UnknownModelError(f"{path} does not fit {spec}: " + "; ".join(parts))


def _tensors(state: dict) -> bool:
    return any(isinstance(v, torch.Tensor) for v in state.values())
