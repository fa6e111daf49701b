"""Inference backends: ONNX Runtime and OpenVINO against torch on real pictures, the graph cache, the fallback, and
libraries indexed with one backend and searched with another."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from benchmarks.corpus import EDITS, EXTENSIONS, edited, video_dir
from lookalike.cli.main import app
from lookalike.errors import UsageError
from lookalike.indexer.embedders.backends import resolve_backend
from lookalike.indexer.embedders.base import TorchEmbedder
from lookalike.indexer.embedders.efficientnet import build_efficientnet_lite0
from lookalike.indexer.embedders.graph_cache import GraphCache
from lookalike.indexer.embedders.graph_embedder import MIN_COSINE, GraphEmbedder, export_onnx
from lookalike.indexer.embedders.graph_runtimes import OpenVinoSession, runtime_version
from lookalike.indexer.embedders.registry import create_embedder
from lookalike.types import Backend
from lookalike.workspace import Workspace, for_serving
from tests.conftest import TEST_SERVER, fresh_db_url

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field", "retina", "china", "flower")
RUNTIMES = (Backend.ONNXRUNTIME, Backend.OPENVINO)


def _ours(caplog: pytest.LogCaptureFixture) -> list[str]:
    """What lookalike logged (torch's exporter logs its own debug records)."""
    return [r.getMessage() for r in caplog.records if r.name.startswith("lookalike")]


@pytest.fixture(scope="module")
def reference() -> TorchEmbedder:
    return build_efficientnet_lite0(device="cpu")


@pytest.fixture(scope="module")
def cached(reference, model_cache) -> Path:
    """The session's model cache, holding the default model's graph."""
    GraphCache(model_cache).get(reference.spec, reference.weights_tag, lambda p: export_onnx(reference, p))
    return model_cache


def _unverified(cached: Path, directory: Path) -> GraphCache:
    """A copy of the session's graph in ``directory``, with no verification recorded (earlier tests record theirs)."""
    directory.mkdir(parents=True)
    for sidecar in cached.glob("*.json"):
        meta = json.loads(sidecar.read_text())
        shutil.copy(sidecar.with_suffix(".onnx"), directory)
        (directory / sidecar.name).write_text(json.dumps({**meta, "verified": {}}))
    return GraphCache(directory)


@pytest.fixture(scope="module")
def pictures(images) -> np.ndarray:
    """The real photos, and each mirrored, as one uint8 model-input batch."""
    from PIL import ImageOps

    from lookalike.indexer.embedders.efficientnet import LITE0_PREPROCESS

    pics = [images[n] for n in PHOTOS] + [ImageOps.mirror(images[n]) for n in PHOTOS]
    return np.stack([LITE0_PREPROCESS(p) for p in pics])


@pytest.mark.catalog_free
@pytest.mark.parametrize("backend", RUNTIMES)
def test_every_backend_matches_torch_on_real_pictures(backend, reference, pictures, cached, tmp_path):
    """Verified here, on these pictures (the graph copied without what earlier tests recorded)."""
    want = reference.embed_pixels(pictures)
    emb = GraphEmbedder(reference, backend, _unverified(cached, tmp_path / "models"))
    got = emb.embed_pixels(pictures)
    cosines = np.sum(got * want, axis=1)
    assert got.shape == (16, 1280) and got.dtype == np.float32
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert cosines.min() >= MIN_COSINE
    assert emb.fallback is None and emb.runtime == f"{backend}-f32"
    assert emb.tolerance == MIN_COSINE and emb.dim == 1280
    recorded = emb.graph.verified(runtime_version(backend)) if emb.graph else None
    assert recorded is not None and recorded["min_cosine"] >= MIN_COSINE and recorded["pictures"] == 16
    # the batch dimension is dynamic: one picture, and an odd number, give the same vectors as the full batch
    assert np.allclose(emb.embed_pixels(pictures[:1]), got[:1], atol=1e-5)
    assert np.allclose(emb.embed_pixels(pictures[3:10]), got[3:10], atol=1e-5)


@pytest.mark.catalog_free
def test_openvino_runs_a_batch_over_its_streams_in_order(pictures, cached):
    """With the throughput hint a batch is split over several infer requests run at once; the rows come back in
    the batch's order and equal one request's (the latency hint). A batch too small to split (a query) runs whole
    on the latency-compiled model."""
    from lookalike.indexer.embedders.efficientnet import LITE0_PREPROCESS
    from lookalike.indexer.embedders.graph_embedder import normalise_array
    from lookalike.indexer.embedders.graph_runtimes import SPLIT_ROWS

    [graph] = cached.glob("*.onnx")
    split, whole = OpenVinoSession(graph), OpenVinoSession(graph, hint="LATENCY")
    if split._requests < 2:
        pytest.skip("OpenVINO compiled one stream on this machine: nothing to split")
    assert whole._requests == 1
    small = SPLIT_ROWS * split._requests - 1
    tiled = np.tile(pictures, (-(-(5 + 2 * (small + 1)) // len(pictures)), 1, 1, 1))  # enough rows for any streams
    x = normalise_array(LITE0_PREPROCESS.mean, LITE0_PREPROCESS.std, tiled)
    want = whole.run(x)
    assert np.allclose(split.run(x), want, atol=1e-5)
    for rows in (slice(2, len(x)), slice(5, 5 + small + 1)):
        assert np.allclose(split.run(x[rows]), want[rows], atol=1e-5)
    assert split._latency is None  # every batch so far was split
    assert np.allclose(split.run(x[:1]), want[:1], atol=1e-5)
    assert np.allclose(split.run(x[3 : 3 + small]), want[3 : 3 + small], atol=1e-5)
    assert split._latency is not None and str(split._latency.get_property("PERFORMANCE_HINT")) == "LATENCY"


@pytest.mark.catalog_free
def test_openvino_keeps_f32_on_a_burst_of_alike_pictures(reference, pictures, cached, tmp_path):
    """A full batch of near-identical first pictures (a burst) once let bf16 pass, to miss the tolerance on later
    pictures; and a sidecar that recorded bf16, or a lower cosine, is verified again at f32."""
    cache = _unverified(cached, tmp_path / "models")
    burst = np.repeat(pictures[:2], 16, axis=0)
    emb = GraphEmbedder(reference, Backend.OPENVINO, cache)
    emb.embed_pixels(burst)
    assert emb.runtime == "openvino-f32" and emb.graph is not None
    recorded = emb.graph.verified(runtime_version(Backend.OPENVINO))
    assert recorded is not None and recorded["precision"] == "f32" and recorded["pictures"] == 32
    emb.graph.record(runtime_version(Backend.OPENVINO), {"precision": "bf16", "min_cosine": 0.9997, "pictures": 32})
    again = GraphEmbedder(reference, Backend.OPENVINO, cache)
    got = again.embed_pixels(pictures)
    assert again.runtime == "openvino-f32"
    assert np.sum(got * reference.embed_pixels(pictures), axis=1).min() >= MIN_COSINE == 0.99999
    assert again.graph is not None and again.graph.verified(runtime_version(Backend.OPENVINO)) == {
        "precision": "f32",
        "min_cosine": pytest.approx(1.0, abs=1e-5),
        "pictures": 16,
    }


@pytest.mark.catalog_free
def test_cached_graph_is_reused_without_export_or_torch(reference, pictures, tmp_path):
    cache = GraphCache(tmp_path / "models")
    first = GraphEmbedder(reference, Backend.ONNXRUNTIME, cache)
    want = first.embed_pixels(pictures)
    assert first.graph is not None and first.graph.exported
    graph, sidecar = cache.paths(reference.spec, reference.weights_tag)
    stamp = (graph.stat().st_mtime_ns, sidecar.read_bytes())

    fresh = build_efficientnet_lite0(device="cpu")  # its torch module is never built if the cache is used
    again = GraphEmbedder(fresh, Backend.ONNXRUNTIME, GraphCache(tmp_path / "models"))
    assert np.array_equal(again.embed_pixels(pictures), want)
    assert again.graph is not None and not again.graph.exported
    assert (graph.stat().st_mtime_ns, sidecar.read_bytes()) == stamp
    assert fresh._module is None  # verified before: no torch forward pass, no torch network


@pytest.mark.catalog_free
def test_threads_asking_for_the_dimension_export_once(reference, tmp_path, monkeypatch):
    import threading
    import time

    from lookalike.indexer.embedders import graph_embedder

    exports: list[Path] = []

    def slow_export(ref: TorchEmbedder, path: Path) -> int:
        exports.append(path)
        time.sleep(0.3)
        path.write_bytes(b"graph")
        return 1280

    monkeypatch.setattr(graph_embedder, "export_onnx", slow_export)
    emb = GraphEmbedder(reference, Backend.ONNXRUNTIME, GraphCache(tmp_path / "models"))
    dims: list[int] = []
    threads = [threading.Thread(target=lambda: dims.append(emb.dim)) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert dims == [1280, 1280, 1280] and len(exports) == 1


@pytest.mark.catalog_free
def test_damaged_cache_is_exported_again_with_one_line(reference, pictures, cached, tmp_path, caplog):
    cache = GraphCache(tmp_path / "models")
    shutil.copytree(cached, cache.directory, dirs_exist_ok=True)
    graph, _ = cache.paths(reference.spec, reference.weights_tag)
    graph.write_bytes(graph.read_bytes()[: graph.stat().st_size // 2])  # a torn copy
    caplog.set_level(logging.WARNING)
    emb = GraphEmbedder(reference, Backend.OPENVINO, cache)
    got = emb.embed_pixels(pictures)
    assert _ours(caplog) == [f"model cache {graph} is damaged (its checksum does not match); exporting it again"]
    assert emb.graph is not None and emb.graph.exported
    assert np.sum(got * reference.embed_pixels(pictures), axis=1).min() >= MIN_COSINE


@pytest.mark.catalog_free
def test_failing_verification_falls_back_to_torch_and_is_not_tried_again(
    reference, pictures, tmp_path, caplog, monkeypatch
):
    """A graph that does not compute the reference's vectors (here: the same network untrained, cached under the
    trained one's key) is refused on its first pictures; torch runs instead, and later processes (fresh embedders)
    fall back at once, for this runtime version."""
    from lookalike.indexer.embedders import graph_embedder

    untrained = build_efficientnet_lite0("random", device="cpu")
    cache = GraphCache(tmp_path / "models")
    cache.get(reference.spec, reference.weights_tag, lambda p: export_onnx(untrained, p))
    caplog.set_level(logging.WARNING)
    emb = GraphEmbedder(reference, Backend.ONNXRUNTIME, cache)
    got = emb.embed_pixels(pictures[:4])
    assert np.array_equal(got, reference.embed_pixels(pictures[:4]))
    assert emb.runtime == "torch" and emb.tolerance == 1.0
    [message] = _ours(caplog)
    assert message.startswith("onnxruntime vectors of efficientnet_lite0 differ from torch's (cosine ")
    assert message.endswith(f" < {MIN_COSINE} on 4 pictures); running the model on torch")
    assert [r.levelname for r in caplog.records if r.name.startswith("lookalike")] == ["WARNING"]
    key = runtime_version(Backend.ONNXRUNTIME)
    assert key.startswith("onnxruntime-1.") and emb.graph is not None
    assert emb.graph.verified(key) == {"failed": message.removesuffix("; running the model on torch")}

    caplog.clear()
    monkeypatch.setattr(graph_embedder, "open_session", lambda *a: pytest.fail("the runtime was tried again"))
    again = GraphEmbedder(reference, Backend.ONNXRUNTIME, GraphCache(tmp_path / "models"))
    assert np.array_equal(again.embed_pixels(pictures[:4]), got) and again.runtime == "torch"
    reason = message.removesuffix("; running the model on torch")
    assert _ours(caplog) == [f"{reason} (found by an earlier run); running the model on torch"]


@pytest.mark.catalog_free
def test_a_failed_export_is_not_tried_again(reference, pictures, tmp_path, caplog):
    exports: list[Path] = []

    def failing(path: Path) -> int:
        exports.append(path)
        raise RuntimeError("no ONNX form for aten::frobnicate\nmore detail")

    caplog.set_level(logging.WARNING)
    for _ in range(2):
        with pytest.raises(Exception, match="frobnicate"):
            GraphCache(tmp_path / "models").get(reference.spec, reference.weights_tag, failing)
    assert len(exports) == 1
    emb = GraphEmbedder(reference, Backend.OPENVINO, GraphCache(tmp_path / "models"))
    assert np.array_equal(emb.embed_pixels(pictures[:2]), reference.embed_pixels(pictures[:2]))
    assert emb.runtime == "torch" and len(exports) == 1
    assert _ours(caplog)[-1] == (
        "efficientnet_lite0 cannot be exported to ONNX (no ONNX form for aten::frobnicate) (found by an earlier run); "
        "running the model on torch"
    )


@pytest.mark.catalog_free
@pytest.mark.parametrize("backend", RUNTIMES)
def test_a_graph_the_runtime_cannot_load_falls_back_to_torch(backend, reference, pictures, tmp_path, caplog):
    cache = GraphCache(tmp_path / "models")

    def not_onnx(path: Path) -> int:
        path.write_bytes(b"written by another exporter, not an ONNX graph")
        return 1280

    cache.get(reference.spec, reference.weights_tag, not_onnx)
    caplog.set_level(logging.WARNING)
    emb = GraphEmbedder(reference, backend, cache)
    assert np.array_equal(emb.embed_pixels(pictures[:2]), reference.embed_pixels(pictures[:2]))
    [message] = _ours(caplog)
    assert message.startswith(f"{backend} cannot run the graph of efficientnet_lite0 (")
    assert message.endswith("); running the model on torch") and emb.runtime == "torch"


@pytest.mark.catalog_free
def test_auto_picks_openvino_and_cuda_keeps_torch():
    assert resolve_backend("auto", on_cuda=False) == Backend.OPENVINO
    assert resolve_backend(Backend.AUTO, on_cuda=True) == Backend.TORCH
    assert resolve_backend("onnxruntime", on_cuda=False) == Backend.ONNXRUNTIME
    with pytest.raises(UsageError, match=r"^unknown backend 'tensorrt'; use one of: auto, torch, onnxruntime, open"):
        resolve_backend("tensorrt", on_cuda=False)
    with pytest.raises(UsageError, match=r"^--backend openvino runs on the CPU: leave out --device cuda, or use --b"):
        resolve_backend("openvino", on_cuda=True)


@pytest.mark.catalog_free
def test_a_runtime_asked_for_by_name_runs_on_the_cpu_of_a_gpu_host(tmp_path, monkeypatch):
    """On a GPU host, --backend openvino (no --device) is the CPU, its torch reference included; not an error."""
    import torch

    from lookalike.indexer import device

    monkeypatch.setattr(device, "gpu_driver_present", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert create_embedder(device=None).device_type == "cuda"
    for backend in RUNTIMES:
        emb = create_embedder(backend=backend, models=tmp_path)
        assert isinstance(emb, GraphEmbedder) and emb.reference.device_type == "cpu"


@pytest.mark.catalog_free
def test_random_weights_stay_on_torch(tmp_path):
    emb = create_embedder("timm:resnet18", weights="random", device="cpu", backend="openvino", models=tmp_path)
    assert isinstance(emb, TorchEmbedder) and emb.runtime == "torch"


@pytest.mark.catalog_free
@pytest.mark.parametrize("spec", ["timm:resnet18", "torchvision:mobilenet_v3_small", "open_clip:RN50"])
def test_other_families_export_and_match_torch(spec, images, tmp_path):
    """Image towers of the other families run on OpenVINO too (a local checkpoint: the hub is offline here)."""
    import torch

    ckpt = tmp_path / "weights.pt"
    torch.manual_seed(0)
    torch.save(create_embedder(spec, weights="random", device="cpu").load().state_dict(), ckpt)
    ref = create_embedder(spec, weights=str(ckpt), device="cpu")
    emb = create_embedder(spec, weights=str(ckpt), device="cpu", backend="openvino", models=tmp_path / "models")
    pics = [images[n] for n in PHOTOS[:4]]
    cosines = np.sum(emb.embed_images(pics) * ref.embed_images(pics), axis=1)
    assert isinstance(emb, GraphEmbedder) and emb.fallback is None
    assert cosines.min() >= MIN_COSINE
    assert emb.supports_text == (spec.startswith("open_clip"))


@pytest.fixture(scope="module")
def small_corpus(tmp_path_factory, images) -> Path:
    """Eight real photos, three edits of each, and a short video."""
    root = tmp_path_factory.mktemp("backend_media")
    for name in PHOTOS:
        images[name].save(root / f"{name}.png")
        for edit in [e for e in EDITS if e.name in ("crop", "flip", "jpeg_quality")]:
            (root / f"{name}__{edit.name}{EXTENSIONS[edit.fmt]}").write_bytes(edited(images[name], edit))
    shutil.copy(video_dir() / "carphone_pristine.mp4", root / "carphone.mp4")
    return root


def _answers(settings, queries: list[Path]) -> list[list[tuple[str, float]]]:
    with Workspace(settings) as ws:
        return [[(h.path, h.score) for h in r.hits] for r in ws.search_files(queries, k=6)]


def _same(a: list[list[tuple[str, float]]], b: list[list[tuple[str, float]]]) -> None:
    assert [[p for p, _ in q] for q in a] == [[p for p, _ in q] for q in b]
    assert max(abs(x - y) for qa, qb in zip(a, b, strict=True) for (_, x), (_, y) in zip(qa, qb, strict=True)) < 1e-3


def test_libraries_indexed_with_two_backends_answer_alike(small_corpus, settings_factory):
    queries = [small_corpus / f"{n}__crop.jpg" for n in PHOTOS] + [small_corpus / "carphone.mp4"]
    by_torch = settings_factory(backend=Backend.TORCH, device="cpu")
    by_openvino = settings_factory(backend=Backend.OPENVINO, device="cpu")
    for s in (by_torch, by_openvino):
        with Workspace(s) as ws:
            report = ws.index([small_corpus])
        assert (report.images, report.videos, report.failed) == (32, 1, [])
    _same(_answers(by_torch, queries), _answers(by_openvino, queries))
    # searched with the other backend, each library answers as before
    _same(_answers(by_torch.with_(backend=Backend.OPENVINO), queries), _answers(by_torch, queries))
    _same(_answers(by_openvino.with_(backend=Backend.TORCH), queries), _answers(by_openvino, queries))
    with Workspace(by_openvino) as ws:
        [info] = ws.info()["collections"]
    assert info["runtime"]["runtimes"] == ["openvino-f32"]
    assert info["runtime"]["tolerance"] == MIN_COSINE


def test_runtime_recorded_with_collection_and_manifest(small_corpus, settings_factory, tmp_path):
    """A library indexed on OpenVINO and grown on torch records both runtimes, in the catalog and the manifest."""
    settings = settings_factory(backend=Backend.OPENVINO, device="cpu")
    part = tmp_path / "part"
    part.mkdir()
    for name in PHOTOS[:3]:
        shutil.copy(small_corpus / f"{name}.png", part / f"{name}.png")
    with Workspace(settings) as ws:
        ws.index([part])
    shutil.copy(small_corpus / "china.png", part / "china.png")
    with Workspace(settings.with_(backend=Backend.TORCH)) as ws:
        assert ws.index([part]).new == 1
        [info] = ws.info()["collections"]
    runtimes = info["runtime"]["runtimes"]
    assert runtimes == ["openvino-f32", "torch"]
    assert info["runtime"]["tolerance"] == MIN_COSINE
    [manifest] = (settings.home / "collections").glob("*/manifest.json")
    assert json.loads(manifest.read_text())["runtime"] == {"runtimes": runtimes, "tolerance": MIN_COSINE}


def test_a_library_from_before_runtimes_grown_on_openvino_lists_torch_too(small_corpus, settings_factory, tmp_path):
    """A collection whose runtime is NULL (written before migration 0005 recorded runtimes) holds torch's vectors."""
    from sqlalchemy import text

    from lookalike.storage.db import make_engine

    settings = settings_factory(backend=Backend.TORCH, device="cpu")
    part = tmp_path / "part"
    part.mkdir()
    shutil.copy(small_corpus / "coffee.png", part / "coffee.png")
    with Workspace(settings) as ws:
        ws.index([part])
    engine = make_engine(settings.database_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE collections SET runtime = NULL"))
    engine.dispose()
    shutil.copy(small_corpus / "rocket.png", part / "rocket.png")
    with Workspace(settings.with_(backend=Backend.OPENVINO, device="cpu")) as ws:
        assert ws.index([part]).new == 1
        [info] = ws.info()["collections"]
    assert info["runtime"] == {"runtimes": ["torch", "openvino-f32"], "tolerance": MIN_COSINE}


def test_runtime_is_noted_before_the_first_vectors_are_committed(small_corpus, settings_factory, monkeypatch):
    """A run killed after its first write leaves the runtime of the vectors it committed recorded."""
    from lookalike.indexer import pipeline
    from lookalike.storage.library import CollectionStore

    settings = settings_factory(backend=Backend.OPENVINO, device="cpu")
    monkeypatch.setattr(pipeline, "WRITE_EVERY_FILES", 4)
    write = CollectionStore.write
    writes: list[int] = []

    def killed_after_one_write(self, items):
        if writes:
            raise KeyboardInterrupt
        writes.append(len(items))
        return write(self, items)

    monkeypatch.setattr(CollectionStore, "write", killed_after_one_write)
    with Workspace(settings) as ws, pytest.raises(KeyboardInterrupt):
        ws.index([small_corpus])
    monkeypatch.setattr(CollectionStore, "write", write)
    with Workspace(settings) as ws:
        [info] = ws.info()["collections"]
    assert writes == [4] and info["images_ok"] == 4
    assert info["runtime"] == {"runtimes": ["openvino-f32"], "tolerance": MIN_COSINE}


@pytest.mark.parametrize("backend", RUNTIMES)
def test_serving_runs_each_session_on_one_thread(backend, pictures, cached, settings_factory):
    """`lookalike serve` runs torch on one thread per request; ONNX Runtime's and OpenVINO's sessions too."""
    settings = for_serving(settings_factory(backend=backend, model_cache=cached))
    assert settings.inference_threads == 1
    with Workspace(settings) as ws:
        emb = ws.embedder(settings.model, settings.weights)
    assert isinstance(emb, GraphEmbedder)
    emb.embed_pixels(pictures[:2])
    session: Any = emb._session
    if backend == Backend.ONNXRUNTIME:
        assert session._session.get_session_options().intra_op_num_threads == 1
    else:
        assert session._compiled.get_property("INFERENCE_NUM_THREADS") == 1


@pytest.mark.catalog_free
def test_third_parties_are_silenced_only_from_the_main_thread():
    """sys.stdout, loggers and warning filters are the process's: a request thread leaves them alone."""
    import sys
    import threading

    from lookalike.indexer.embedders.quiet import quiet_loggers

    seen: dict[str, Any] = {}

    def on_a_request_thread() -> None:
        with quiet_loggers("lookalike.test", output=True):
            seen.update(stdout=sys.stdout, level=logging.getLogger("lookalike.test").level)

    thread = threading.Thread(target=on_a_request_thread)
    thread.start()
    thread.join()
    assert seen == {"stdout": sys.stdout, "level": logging.NOTSET}
    with quiet_loggers("lookalike.test", output=True):
        assert sys.stdout is not seen["stdout"] and logging.getLogger("lookalike.test").level == logging.CRITICAL
    assert logging.getLogger("lookalike.test").level == logging.NOTSET


def test_cli_backend_option_and_bad_values(small_corpus, tmp_path, monkeypatch):
    runner = CliRunner()
    home = tmp_path / "home"
    db = ["--db", fresh_db_url(home)] if TEST_SERVER else []
    one = tmp_path / "one"
    one.mkdir()
    shutil.copy(small_corpus / "coffee.png", one / "coffee.png")
    result = runner.invoke(app, ["--home", str(home), *db, "--backend", "onnxruntime", "index", str(one), "--json"])
    assert result.exit_code == 0, result.stderr
    result = runner.invoke(app, ["--home", str(home), *db, "info", "--json"])
    assert json.loads(result.stdout)["collections"][0]["runtime"] == {
        "runtimes": ["onnxruntime-f32"],
        "tolerance": MIN_COSINE,
    }
    result = runner.invoke(app, ["--home", str(home), *db, "info"])
    line = "(efficientnet_lite0, efficientnet-lite0-57934424, 1280-d, onnxruntime-f32): generation=1, images_ok=1, "
    assert line in result.stdout
    result = runner.invoke(app, ["--home", str(home), "--backend", "tensorrt", "info"])
    assert result.exit_code == 2 and "'tensorrt' is not one of" in result.stderr
    monkeypatch.setenv("LOOKALIKE_BACKEND", "tensorrt")
    result = runner.invoke(app, ["--home", str(home), "info"])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: unknown backend 'tensorrt' (LOOKALIKE_BACKEND); use one of: auto, torch, onnxruntime, openvino"
    )


def test_indexing_with_a_verified_graph_imports_no_torch(small_corpus, tmp_path):
    """Start-up: with the graph cached and verified, `lookalike index` runs without importing torch or timm."""
    home, first, second = tmp_path / "home", tmp_path / "first", tmp_path / "second"
    first.mkdir()
    second.mkdir()
    shutil.copy(small_corpus / "coffee.png", first / "coffee.png")
    shutil.copy(small_corpus / "rocket.png", second / "rocket.png")
    db = ["--db", fresh_db_url(home)] if TEST_SERVER else []
    options = ["--home", str(home), *db, "--backend", "openvino"]
    assert CliRunner().invoke(app, [*options, "index", str(first)]).exit_code == 0
    code = (
        "import json, sys\n"
        "from typer.testing import CliRunner\n"
        "from lookalike.cli.main import app\n"
        f"result = CliRunner().invoke(app, {[*options, 'index', str(second), '--json']!r})\n"
        "heavy = sorted({'torch', 'timm', 'onnx'} & set(sys.modules))\n"
        "print(json.dumps({'code': result.exit_code, 'heavy': heavy, 'new': json.loads(result.stdout)['new']}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == {"code": 0, "heavy": [], "new": 1}
