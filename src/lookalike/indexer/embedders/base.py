"""The embedder interface: preprocessing config, lazy loading, batched normalised inference."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from lookalike.errors import TextQueryNotSupportedError
from lookalike.indexer.device import device_type, resolve_device
from lookalike.indexer.preprocess import Preprocess

if TYPE_CHECKING:
    import torch


def normalise_pixels(pre: Preprocess, pixels: torch.Tensor) -> torch.Tensor:
    """A uint8 (n, 3, size, size) batch as the float input the model expects (on the batch's device)."""
    import torch

    mean = torch.tensor(pre.mean, device=pixels.device).view(1, 3, 1, 1) * 255.0
    std = torch.tensor(pre.std, device=pixels.device).view(1, 3, 1, 1) * 255.0
    return (pixels.float() - mean) / std


class Embedder(ABC):
    """Turns pictures (and, for CLIP models, texts) into L2-normalised float32 vectors.

    Subclasses implement :meth:`embed_batch`; everything else is built on it. Heavy work (building the
    network, reading weights) happens in :meth:`load`, lazily and once, under a lock; torch itself is imported only
    where a torch device or network is needed (a cached ONNX graph runs without it).
    """

    spec: str
    weights_tag: str
    preprocess: Preprocess
    device_type: str  # ``cpu`` or ``cuda``
    supports_text: bool = False

    def __init__(self, spec: str, weights_tag: str, preprocess: Preprocess, device: str | None = None) -> None:
        self.spec = spec
        self.weights_tag = weights_tag
        self.preprocess = preprocess
        self.device_type = device_type(device)  # checks the name (and CUDA) now, without torch on a CPU
        self._requested = device
        self._device: torch.device | None = None
        self._lock = threading.Lock()
        self._dim: int | None = None

    @property
    def device(self) -> torch.device:
        """The torch device the network runs on."""
        if self._device is None:
            self._device = resolve_device(self._requested or self.device_type)
        return self._device

    @abstractmethod
    def embed_batch(self, pixels: np.ndarray) -> np.ndarray:
        """Embed a uint8 (n, 3, size, size) batch made by :attr:`preprocess`; returns (n, dim) unit vectors."""

    @property
    def runtime(self) -> str:
        """What runs the network (``torch``, ``openvino-f32`` ...), recorded with the collections it indexes."""
        return "torch"

    @property
    def tolerance(self) -> float:
        """The cosine every vector keeps with torch's on the same pictures (1.0: torch itself)."""
        return 1.0

    @property
    def dim(self) -> int:
        """Vector dimension (found by one forward pass the first time)."""
        if self._dim is None:
            size = self.preprocess.size
            self._dim = int(self.embed_batch(np.zeros((1, 3, size, size), np.uint8)).shape[1])
        return self._dim

    def embed_images(self, images: Sequence[Image.Image]) -> np.ndarray:
        """Embed RGB pictures."""
        if not images:
            return np.zeros((0, self.dim), np.float32)
        return self.embed_pixels(np.stack([self.preprocess(im) for im in images]))

    def embed_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """Embed a uint8 (n, 3, size, size) array made by :attr:`preprocess`."""
        return self.embed_batch(pixels)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Embed text queries into the picture space (CLIP models only).

        Raises:
            TextQueryNotSupportedError: the model has no text tower.
        """
        raise TextQueryNotSupportedError(
            f"{self.spec} cannot embed text; text search needs a CLIP model (--model open_clip:ARCH@TAG)"
        )


def l2_normalise(x: torch.Tensor) -> np.ndarray:
    """Rows scaled to unit length, as float32 numpy."""
    import torch

    return torch.nn.functional.normalize(x.float(), dim=-1).cpu().numpy().astype(np.float32, copy=False)


class TorchEmbedder(Embedder):
    """An embedder over a torch module that maps a pixel batch to feature rows."""

    def __init__(
        self,
        spec: str,
        weights_tag: str,
        preprocess: Preprocess,
        build: Callable[[], torch.nn.Module],
        device: str | None = None,
    ) -> None:
        super().__init__(spec, weights_tag, preprocess, device)
        self._build = build
        self._module: torch.nn.Module | None = None

    @property
    def runtime(self) -> str:
        """``torch`` on the CPU; ``torch-cuda`` on a GPU, where the network runs in fp16 and JPEGs may be decoded by
        nvJPEG (``indexer.device_jpeg``)."""
        return "torch-cuda" if self.device_type == "cuda" else "torch"

    @property
    def tolerance(self) -> float:
        """1.0 on the CPU; on CUDA the cosine its vectors keep with the CPU's on the same files: fp16 gives >= 0.999,
        nvJPEG's decoding (``LOOKALIKE_GPU_JPEG=1``) >= 0.995 on the test photos (``tests/indexer/test_gpu.py``,
        ``test_device_jpeg.py``), though not on every grainy, nearly plain photo, whose uniform-border box can part
        between the two paths (benchmarks/RESULTS.md, "A third H200 session")."""
        return 0.995 if self.device_type == "cuda" else 1.0

    def load(self) -> torch.nn.Module:
        """Build the network once (thread-safe) and move it to the device."""
        import torch

        if self._module is None:
            with self._lock:
                if self._module is None:
                    module = self._build().eval()
                    self._module = module.to(self.device).to(memory_format=torch.channels_last)
        return self._module

    def forward(self, module: torch.nn.Module, pixels: torch.Tensor) -> torch.Tensor:
        """The features of a batch already on the device; override for models with a special entry point."""
        out: torch.Tensor = module(pixels)
        return out

    def embed_batch(self, pixels: np.ndarray) -> np.ndarray:
        """Embed a batch: channels-last, inference mode, autocast to fp16 on CUDA."""
        import torch

        return self.embed_device(torch.from_numpy(pixels).to(self.device, non_blocking=True))

    def embed_device(self, pixels: torch.Tensor) -> np.ndarray:
        """Embed a uint8 (n, 3, size, size) batch already on the model's device (JPEGs decoded on the GPU)."""
        import torch

        module = self.load()
        x = normalise_pixels(self.preprocess, pixels).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            if self.device.type == "cuda":
                with torch.autocast("cuda", dtype=torch.float16):
                    feats = self.forward(module, x)
            else:
                feats = self.forward(module, x)
        return l2_normalise(feats.flatten(1))
