"""CUDA path: the same vectors on the GPU (fp16 autocast) as on the CPU. Skipped without CUDA."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lookalike.indexer.embedders.registry import create_embedder
from lookalike.storage.vectors import VectorIndex

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


def test_cuda_embeddings_match_cpu(images):
    pics = [images["chelsea"], images["coffee"], images["rocket"]]
    cpu = create_embedder(device="cpu").embed_images(pics)
    gpu = create_embedder(device="cuda").embed_images(pics)
    assert np.all(np.sum(cpu * gpu, axis=1) > 0.999)


def test_faiss_gpu_search_matches_cpu_when_available():
    import faiss

    if not hasattr(faiss, "StandardGpuResources"):
        pytest.skip("faiss-cpu build")
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(1000, 64)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    index = VectorIndex.create(64)
    index.add(np.arange(1000), vecs)
    gpu = faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), 0, faiss.IndexFlatIP(64))
    gpu.add(vecs)
    _, ids = gpu.search(vecs[:10], 5)
    assert np.array_equal(ids, index.search(vecs[:10], 5).ids)
