"""An embedder whose network runs on ONNX Runtime or OpenVINO: exported from the torch embedder, checked against it.

The torch embedder stays the reference. Its module is exported to ONNX once (dynamic batch; cached by
:mod:`.graph_cache`); before the graph's first use its vectors are compared with torch's on the first real pictures
it is given (the collection's first images, or a query), and only a runtime whose every vector reaches cosine
:data:`MIN_COSINE` with torch's is used, always at f32 (bf16 misses it on real photos: RESULTS.md, issue 14); the
result is remembered beside the graph. A network that does not export,
or a runtime that misses the tolerance, falls back to torch with a one-line message. Text (CLIP) stays on torch.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from lookalike.indexer.embedders.base import Embedder, TorchEmbedder
from lookalike.indexer.embedders.graph_cache import OPSET, CachedGraph, GraphCache, RecordedFailure, first_line
from lookalike.indexer.embedders.graph_runtimes import GraphSession, open_session, runtime_version
from lookalike.indexer.embedders.quiet import quiet_loggers
from lookalike.types import Backend

log = logging.getLogger(__name__)

# every vector of a runtime vs torch's on the same pictures (issue 14): f32 measures 1.000000 over 500 photos, so
# 0.99999 leaves room for summation order only; bf16 (lowest 0.990, a burst of alike pictures can pass at 0.9997)
# can never pass it, and is never chosen
MIN_COSINE = 0.99999
PRECISION = "f32"


def export_onnx(reference: TorchEmbedder, path: Path) -> int:
    """Write the reference's network (pixels normalised -> features) to ``path`` as ONNX with a dynamic batch;
    returns the vector dimension."""
    import torch

    class Features(torch.nn.Module):
        def __init__(self, net: torch.nn.Module) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return reference.forward(self.net, x).flatten(1)

    wrapper = Features(reference.load()).eval()
    size = reference.preprocess.size
    example = torch.zeros(2, 3, size, size)
    batch = torch.export.Dim("batch", min=1, max=4096)
    # the exporter reports its progress on stdout and warns about internals: a user sees only our one line
    quiet = quiet_loggers("onnxscript", "onnx_ir", "torch.onnx", "torch.export", output=True)
    with quiet, torch.inference_mode(False):
        torch.onnx.export(
            wrapper,
            (example,),
            str(path),
            input_names=["pixels"],
            output_names=["features"],
            dynamic_shapes=({0: batch},),
            opset_version=OPSET,
            dynamo=True,
            external_data=False,
            verbose=False,
        )
        with torch.no_grad():
            return int(wrapper(example).shape[1])


def normalise_array(mean: Sequence[float], std: Sequence[float], pixels: np.ndarray) -> np.ndarray:
    """A uint8 (n, 3, H, W) batch as the normalised float32 input (as ``base.normalise_pixels`` does in torch)."""
    m = np.asarray(mean, np.float32).reshape(1, 3, 1, 1) * np.float32(255.0)
    s = np.asarray(std, np.float32).reshape(1, 3, 1, 1) * np.float32(255.0)
    out: np.ndarray = (pixels.astype(np.float32) - m) / s
    return out


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (float32), as torch's ``normalize`` does (eps 1e-12)."""
    x = np.asarray(x, np.float32).reshape(len(x), -1)
    norms = np.maximum(np.linalg.norm(x, axis=1, keepdims=True), np.float32(1e-12))
    out: np.ndarray = (x / norms).astype(np.float32, copy=False)
    return out


class GraphEmbedder(Embedder):
    """Runs a torch embedder's network on ``backend`` (ONNX Runtime or OpenVINO), torch being the reference."""

    def __init__(self, reference: TorchEmbedder, backend: Backend, cache: GraphCache, threads: int = 0) -> None:
        super().__init__(reference.spec, reference.weights_tag, reference.preprocess, "cpu")
        self.reference = reference
        self.backend = backend
        self.supports_text = reference.supports_text
        self._cache = cache
        self._threads = threads
        self._graph: CachedGraph | None = None
        self._session: GraphSession | None = None
        self._fallback: str | None = None  # why torch runs the network instead (None: not fallen back)
        self._prepare_lock = threading.Lock()

    @property
    def runtime(self) -> str:
        """``openvino-f32``, ``onnxruntime-f32``, ``torch`` after a fallback, or the backend before first use."""
        if self._fallback is not None:
            return "torch"
        return f"{self.backend}-{self._session.precision}" if self._session else str(self.backend)

    @property
    def tolerance(self) -> float:
        """:data:`MIN_COSINE` once the runtime passed verification (1.0 on torch)."""
        return 1.0 if self._fallback is not None or self._session is None else MIN_COSINE

    @property
    def fallback(self) -> str | None:
        """Why the network runs on torch instead of the backend asked for, if it does."""
        return self._fallback

    @property
    def graph(self) -> CachedGraph | None:
        """The cached ONNX graph in use, once it was needed."""
        return self._graph

    @property
    def dim(self) -> int:
        """Vector dimension, from the exported graph (no forward pass, no torch when the graph is cached)."""
        with self._prepare_lock:  # one export per embedder, whichever thread asks first
            graph = self._get_graph()
        return graph.dim if graph is not None else self.reference.dim

    def embed_batch(self, pixels: np.ndarray) -> np.ndarray:
        """Embed a uint8 batch; the first call verifies the runtime against torch on these pictures."""
        session = self._session if self._session is not None or self._fallback else self._prepare(pixels)
        if session is None:
            return self.reference.embed_batch(pixels)
        pre = self.preprocess
        return unit_rows(session.run(normalise_array(pre.mean, pre.std, pixels)))

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Text queries run on the torch reference (CLIP models)."""
        return self.reference.embed_texts(texts)

    def _get_graph(self) -> CachedGraph | None:
        """The cached graph, exported on first need; the caller holds ``_prepare_lock``."""
        if self._graph is None and self._fallback is None:
            try:
                self._graph = self._cache.get(self.spec, self.weights_tag, lambda p: export_onnx(self.reference, p))
            except RecordedFailure as e:
                self._fall_back(str(e), recorded=True)
            except Exception as e:  # any exporter failure (an op without an ONNX form ...) means: stay on torch
                self._fall_back(f"{self.spec} cannot be exported to ONNX ({first_line(e)})")
        return self._graph

    def _prepare(self, pixels: np.ndarray) -> GraphSession | None:
        with self._prepare_lock:
            if self._session is not None or self._fallback is not None:
                return self._session
            graph = self._get_graph()
            if graph is None:
                return None
            key = runtime_version(self.backend)
            known = graph.verified(key) or {}
            if "failed" in known:  # an earlier process found it: no second try
                self._fall_back(str(known["failed"]), recorded=True)
                return None
            passed = known.get("precision") == PRECISION and known.get("min_cosine", 0) >= MIN_COSINE
            try:
                if passed:
                    self._session = open_session(self.backend, graph.graph, PRECISION, self._threads)
                else:
                    self._session = self._verify(graph, pixels, key)
            except Exception as e:  # the runtime cannot compile or run this graph (an operator it lacks ...)
                self._refuse(graph, key, f"{self.backend} cannot run the graph of {self.spec} ({first_line(e)})")
            return self._session

    def _verify(self, graph: CachedGraph, pixels: np.ndarray, key: str) -> GraphSession | None:
        """Open the runtime at f32 if its every vector reaches :data:`MIN_COSINE` with torch's on ``pixels``; the
        outcome is recorded under ``key`` (the runtime and its version)."""
        want = self.reference.embed_batch(pixels)
        pre = self.preprocess
        x = normalise_array(pre.mean, pre.std, pixels)
        session = open_session(self.backend, graph.graph, PRECISION, self._threads)
        lowest = float(np.min(np.sum(unit_rows(session.run(x)) * want, axis=1)))
        if lowest >= MIN_COSINE:
            graph.record(key, {"precision": PRECISION, "min_cosine": lowest, "pictures": len(x)})
            return session
        self._refuse(
            graph,
            key,
            f"{self.backend} vectors of {self.spec} differ from torch's (cosine {lowest:.5f} < {MIN_COSINE} "
            f"on {len(x)} pictures)",
        )
        return None

    def _refuse(self, graph: CachedGraph, key: str, reason: str) -> None:
        """Fall back to torch, and remember why beside the graph so later processes do not try again."""
        self._fall_back(reason)
        graph.record(key, {"failed": reason})

    def _fall_back(self, reason: str, recorded: bool = False) -> None:
        self._fallback = reason
        if recorded:
            log.warning("%s (found by an earlier run); running the model on torch", reason)
        else:
            log.warning("%s; running the model on torch", reason)
