"""JPEGs decoded on the model's device (nvJPEG on CUDA): the same pictures, records and error codes as the CPU
decoders. Everything runs here on the CPU, the device path's fallback; the last test repeats the comparison on CUDA."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps

from lookalike.config import Settings
from lookalike.indexer.decode import load_image, peek_jpeg
from lookalike.indexer.describe import MediaDescriptor, content_box, trim_uniform_borders
from lookalike.indexer.device_jpeg import (
    DeviceImages,
    DeviceJpegDecoder,
    content_box_on_device,
    draft_factor,
    drafted,
    model_input,
    upright,
)
from lookalike.indexer.embed import embed_jobs
from lookalike.indexer.embedders.registry import create_embedder
from lookalike.indexer.file_decoding import DecodeLimits, ImageItem, Task, decode_all
from lookalike.indexer.plan import Job
from lookalike.indexer.preprocess import Preprocess
from lookalike.types import MediaKind, MediaStatus

pytestmark = pytest.mark.catalog_free  # opens no catalog: the PostgreSQL run leaves it out

_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


def _exif(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory, images: dict) -> dict[str, Path]:
    """Real photos as the JPEGs cameras and editors write, and files the device must leave to the CPU."""
    root = tmp_path_factory.mktemp("device_jpeg")
    out: dict[str, Path] = {}

    def jpeg(name: str, im: Image.Image, **kw) -> None:
        out[name] = root / f"{name}.jpg"
        im.save(out[name], "JPEG", quality=90, **kw)

    for name in ("chelsea", "coffee", "astronaut", "rocket"):
        jpeg(name, images[name].convert("RGB"))
    big = images["coffee"].convert("RGB").resize((1800, 1200), Image.Resampling.BICUBIC)  # drafted by 4
    jpeg("coffee_big", big, progressive=True)
    photo = images["chelsea"].convert("RGB")
    undo = {6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}  # the others undo themselves
    for o, turn in _TRANSPOSE.items():  # stored turned, with the tag that turns it back
        jpeg(f"chelsea_exif{o}", photo.transpose(undo.get(o, turn)), exif=_exif(o))
    mat = Image.new("RGB", (photo.width + 160, photo.height + 90), (200, 40, 60))
    mat.paste(photo, (80, 45))
    jpeg("chelsea_mat", mat)
    jpeg("astronaut_grey", images["astronaut"].convert("L"))
    jpeg("rocket_cmyk", images["rocket"].convert("CMYK"))  # not RGB or grey: the CPU decodes it
    data = out["coffee"].read_bytes()
    (root / "cut.jpg").write_bytes(data[: len(data) // 3])
    out["cut"] = root / "cut.jpg"
    garbled = bytearray(out["chelsea"].read_bytes())  # a Huffman table overwritten: whole, but undecodable
    garbled[garbled.index(b"\xff\xc4") + 9] = 0xFF
    out["garbled"] = root / "garbled.jpg"
    out["garbled"].write_bytes(bytes(garbled))
    out["coffee_png"] = root / "coffee_png.png"
    images["coffee"].save(out["coffee_png"])
    return out


def _jobs(photos: dict[str, Path]) -> list[Job]:
    return [Job(i, p, p.name, MediaKind.IMAGE, 0, 0, None) for i, p in enumerate(photos.values())]


@pytest.mark.parametrize("orientation", range(1, 9))
def test_upright_turns_as_pillow_exif_transpose(images, orientation):
    im = images["astronaut"].convert("RGB").resize((64, 40))
    tagged = im.copy()
    tagged.getexif()[0x0112] = orientation
    want = np.asarray(ImageOps.exif_transpose(tagged)).transpose(2, 0, 1)
    got = upright(torch.from_numpy(np.asarray(im).transpose(2, 0, 1).copy()), orientation).numpy()
    assert np.array_equal(got, want)


def test_draft_factor_is_pillows(photos):
    for name in ("chelsea", "coffee_big", "astronaut"):
        path = photos[name]
        full = Image.open(path).size
        drafted_cpu, _ = load_image(path, draft=256)
        factor = draft_factor(*full, 256)
        assert drafted_cpu.size == (-(-full[0] // factor), -(-full[1] // factor))
    assert draft_factor(1800, 1200, 256) == 4


def test_model_input_resamples_as_pillow(images):
    pre = Preprocess()
    for name in ("coffee", "astronaut", "grass", "rocket"):
        im = images[name].convert("RGB")
        for size in (im.size, (1000, 333), (333, 1000), (240, 240)):
            x = im.resize(size)
            want = pre(x).astype(int)
            got = model_input(torch.from_numpy(np.asarray(x).transpose(2, 0, 1).copy()), pre).numpy().astype(int)
            assert np.abs(got - want).mean() < 0.25, (name, size)
            assert np.abs(got - want).max() <= 3, (name, size)


def _decoded(path: Path) -> torch.Tensor:
    from torchvision.io import ImageReadMode, decode_jpeg

    full = decode_jpeg(torch.frombuffer(bytearray(path.read_bytes()), dtype=torch.uint8), mode=ImageReadMode.RGB)
    return drafted(full, draft_factor(full.shape[2], full.shape[1], 256))


def test_stopping_early_stops_the_decode_workers_at_once(photos, tmp_path):
    """The supervised pool is read in the consumer's thread: closing the stream does not wait for a hung decoder."""
    import shutil

    from lookalike.indexer.decode_pool import DecodePool
    from tests.indexer.hostile_decoders import decode_or_misbehave

    pre = Preprocess()
    hang = tmp_path / "hang.jpg"
    shutil.copy(photos["coffee"], hang)
    paths = [photos["coffee_png"], hang, photos["chelsea"]]
    limits = DecodeLimits(64_000_000, 512 << 20, 32, MediaDescriptor(), encoded_jpeg=True)
    tasks = [Task(i, p, MediaKind.IMAGE) for i, p in enumerate(paths)]
    pool = DecodePool(tasks, pre, limits, workers=1, timeout=60, decode=decode_or_misbehave)
    stream = DeviceJpegDecoder(pre, MediaDescriptor(), torch.device("cpu"), 4, _cpu_fallback(pre))(pool)
    first = next(stream)
    assert isinstance(first, ImageItem) and first.job == 0
    began = time.monotonic()
    stream.close()
    assert time.monotonic() - began < 10  # the hung worker is killed, not waited for (60 s)


def test_drafted_pictures_match_the_cpu_decoders(photos):
    """The full decode reduced in blocks is the picture libjpeg's DCT scaling gives (within JPEG rounding)."""
    from torchvision.io import ImageReadMode, decode_jpeg

    path = photos["coffee_big"]
    cpu, _ = load_image(path, draft=256)
    full = decode_jpeg(torch.frombuffer(bytearray(path.read_bytes()), dtype=torch.uint8), mode=ImageReadMode.RGB)
    got = drafted(full, draft_factor(full.shape[2], full.shape[1], 256)).numpy().astype(int)
    assert got.shape == (3, cpu.height, cpu.width)
    assert np.abs(got - np.asarray(cpu).transpose(2, 0, 1).astype(int)).mean() < 1.0


def _cpu_fallback(pre: Preprocess, asked: list | None = None):
    cpu = DecodeLimits(64_000_000, 512 << 20, 32, MediaDescriptor())

    def fallback(tasks: list[Task]):
        if asked is not None:
            asked.extend(t.path.stem for t in tasks)
        return decode_all(tasks, pre, cpu)

    return fallback


def test_only_still_rgb_or_grey_jpegs_go_to_the_device(photos):
    pre = Preprocess()
    limits = DecodeLimits(64_000_000, 512 << 20, 32, MediaDescriptor(), encoded_jpeg=True)
    tasks = [Task(j.index, j.path, j.kind) for j in _jobs(photos)]
    refused: list[str] = []
    decoder = DeviceJpegDecoder(pre, MediaDescriptor(), torch.device("cpu"), 5, _cpu_fallback(pre, refused))
    names = {j.index: j.path.stem for j in _jobs(photos)}
    on_device, on_cpu, failed = set(), set(), {}
    for m in decoder(decode_all(tasks, pre, limits)):
        if isinstance(m, DeviceImages):
            assert m.pixels.dtype == torch.uint8 and m.pixels.shape[1:] == (3, 224, 224)
            assert len(m.jobs) <= 5
            on_device |= {names[j] for j in m.jobs}
        elif isinstance(m, ImageItem):
            on_cpu.add(names[m.job])
        else:
            failed[names[m.job]] = m.code
    assert on_cpu == {"rocket_cmyk", "coffee_png"}  # nvJPEG takes no CMYK
    # no end-of-image marker: Pillow's decode names it; a table the device's decoder refuses: the CPU's names it
    assert failed == {"cut": "truncated", "garbled": "corrupt"}
    assert refused == ["garbled"]
    assert on_device == set(names.values()) - on_cpu - set(failed)
    assert peek_jpeg(photos["coffee_png"]) is None and peek_jpeg(photos["rocket_cmyk"]) is None


def test_device_decoded_jpegs_embed_as_cpu_decoded_ones(photos):
    """Same records (status, error code, upright size, EXIF) and vectors within 0.995 (measured here: >= 0.998)."""
    embedder = create_embedder(device="cpu")
    settings = Settings(workers=0)
    jobs = _jobs(photos)
    cpu = {e.job.path.stem: e for e in embed_jobs(jobs, embedder, settings, device_jpeg=False)}
    dev = {e.job.path.stem: e for e in embed_jobs(jobs, embedder, settings, device_jpeg=True)}
    assert cpu.keys() == dev.keys() == {j.path.stem for j in jobs}
    for name, a in cpu.items():
        b = dev[name]
        assert (a.record.status, a.record.error_code, a.record.width, a.record.height, a.record.n_frames) == (
            b.record.status,
            b.record.error_code,
            b.record.width,
            b.record.height,
            b.record.n_frames,
        ), name
        assert (a.record.taken_at, a.record.camera, a.record.exif_fields) == (
            b.record.taken_at,
            b.record.camera,
            b.record.exif_fields,
        )
        if a.record.status == MediaStatus.OK:
            assert float(a.vectors[0].embedding @ b.vectors[0].embedding) >= 0.995, name
    assert dev["cut"].record.error_code == "truncated"
    assert (dev["chelsea_exif6"].record.width, dev["chelsea_exif6"].record.height) == Image.open(photos["chelsea"]).size
    turned = [dev[f"chelsea_exif{o}"].vectors[0].embedding for o in range(2, 9)]
    assert min(float(v @ dev["chelsea"].vectors[0].embedding) for v in turned) >= 0.995  # all stand upright


def test_uniform_borders_are_trimmed_on_the_device_as_on_the_cpu(photos):
    pre = Preprocess()
    cpu, _ = load_image(photos["chelsea_mat"], draft=pre.resize)
    want = pre(trim_uniform_borders(cpu)).astype(int)
    limits = DecodeLimits(64_000_000, 512 << 20, 32, MediaDescriptor(), encoded_jpeg=True)
    decoder = DeviceJpegDecoder(pre, MediaDescriptor(), torch.device("cpu"), 1, _cpu_fallback(pre))
    (out,) = list(decoder(decode_all([Task(0, photos["chelsea_mat"], MediaKind.IMAGE)], pre, limits)))
    assert isinstance(out, DeviceImages)
    assert content_box_on_device(upright(_decoded(photos["chelsea_mat"]), 1)) == content_box(cpu)
    assert np.abs(out.pixels[0].numpy().astype(int) - want).mean() < 0.5


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_nvjpeg_decoded_jpegs_embed_as_cpu_decoded_ones(photos):
    """On CUDA with ``gpu_jpeg`` JPEGs are decoded by nvJPEG; records match the CPU's, vectors (fp16) within 0.995
    (the test's photos have no grainy, nearly plain background, whose border box can part between the paths)."""
    jobs = _jobs(photos)
    cpu = {e.job.path.stem: e for e in embed_jobs(jobs, create_embedder(device="cpu"), Settings(workers=0))}
    on_gpu = Settings(workers=0, gpu_jpeg=True)
    gpu = {e.job.path.stem: e for e in embed_jobs(jobs, create_embedder(device="cuda"), on_gpu)}
    assert cpu.keys() == gpu.keys()
    for name, a in cpu.items():
        b = gpu[name]
        assert (a.record.status, a.record.error_code, a.record.width, a.record.height) == (
            b.record.status,
            b.record.error_code,
            b.record.width,
            b.record.height,
        ), name
        if a.record.status == MediaStatus.OK:
            assert float(a.vectors[0].embedding @ b.vectors[0].embedding) >= 0.995, name


@pytest.mark.parametrize(("value", "on"), [("1", True), ("yes", True), ("off", False), ("0", False), ("FALSE", False)])
def test_the_gpu_jpeg_switch_reads_yes_or_no(monkeypatch, value, on):
    monkeypatch.setenv("LOOKALIKE_GPU_JPEG", value)
    assert Settings.from_env().gpu_jpeg is on


def test_a_misspelt_gpu_jpeg_switch_is_an_error_not_a_yes(monkeypatch):
    from lookalike.errors import UsageError

    monkeypatch.setenv("LOOKALIKE_GPU_JPEG", "disable")
    with pytest.raises(UsageError, match="LOOKALIKE_GPU_JPEG='disable': use 1 or 0"):
        Settings.from_env()


def test_jpegs_are_decoded_on_the_cpu_unless_the_gpu_decoder_is_asked_for(monkeypatch):
    """nvJPEG is opt-in: on an H200 host the CPU decode workers were faster, and they give the CPU's exact pixels."""
    monkeypatch.delenv("LOOKALIKE_GPU_JPEG", raising=False)
    assert Settings().gpu_jpeg is False and Settings.from_env().gpu_jpeg is False
    monkeypatch.setenv("LOOKALIKE_GPU_JPEG", "1")
    assert Settings.from_env().gpu_jpeg is True
