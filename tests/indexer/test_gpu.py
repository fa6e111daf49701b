"""CUDA path: the same vectors on the GPU (fp16 autocast) as on the CPU. Skipped without CUDA."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lookalike.indexer.embedders.registry import create_embedder
from lookalike.storage.vectors import VectorIndex

pytestmark = [
    pytest.mark.catalog_free,
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]


def test_cuda_embeddings_match_cpu(images):
    pics = [images["chelsea"], images["coffee"], images["rocket"]]
    cpu = create_embedder(device="cpu").embed_images(pics)
    gpu = create_embedder(device="cuda").embed_images(pics)
    assert np.all(np.sum(cpu * gpu, axis=1) > 0.999)


def test_faiss_gpu_search_matches_cpu_when_available():
    from lookalike.storage.vectors import gpu_count

    if not gpu_count():
        pytest.skip("faiss-cpu build, or faiss sees no GPU")
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(5000, 64)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    for factory in ("Flat", "IVF64,Flat"):
        cpu, gpu = VectorIndex.create(64, factory), VectorIndex.create(64, factory)
        for index in (cpu, gpu):
            if not index.is_trained:
                index.train(vecs)
            index.add(np.arange(5000) * 7, vecs)
        assert gpu.to_gpu() and gpu.on_gpu
        assert np.array_equal(gpu.search(vecs[:50], 10).ids, cpu.search(vecs[:50], 10).ids)
