"""Ctrl-C during `lookalike index`: one line saying what is kept, exit code 130, no traceback, and the next run
indexes the rest."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from benchmarks.corpus import package_images

pytestmark = pytest.mark.catalog_free  # its own SQLite library: the PostgreSQL run leaves it out

PHOTOS = 600
CLI = (sys.executable, "-m", "lookalike.cli.main")


def _photos(root: Path) -> None:
    """Distinct JPEG tiles cut from the package photos."""
    rng = np.random.default_rng(7)
    pics = list(package_images().values())
    root.mkdir()
    for i in range(PHOTOS):
        im = pics[i % len(pics)]
        side = int(rng.integers(96, min(240, im.width, im.height)))
        x, y = int(rng.integers(0, im.width - side + 1)), int(rng.integers(0, im.height - side + 1))
        im.crop((x, y, x + side, y + side)).convert("RGB").save(root / f"tile{i:04d}.jpg", quality=90)


def _indexed(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return int(conn.execute("SELECT count(*) FROM media").fetchone()[0])
    except sqlite3.Error:  # not created yet
        return 0


def test_ctrl_c_keeps_what_was_indexed_and_says_so(tmp_path, model_cache):
    photos = tmp_path / "photos"
    _photos(photos)
    home = tmp_path / "home"
    env = {**os.environ, "LOOKALIKE_MODEL_CACHE": str(model_cache)}
    command = [*CLI, "--home", str(home), "--backend", "torch", "index", str(photos), "--json"]
    run = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        start_new_session=True,
        # as from a terminal: a suite started in the background (`make test &`) hands its children SIGINT ignored
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 120
    while _indexed(home / "lookalike.db") == 0 and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    assert run.poll() is None, "the run ended before it could be interrupted"
    os.killpg(run.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole process group
    out, errors = run.communicate(timeout=60)
    stderr = errors.decode()
    assert run.returncode == 130 and out == b""
    assert stderr.strip().splitlines()[-1] == (
        "interrupted: the files indexed so far are kept; run the same command again for the rest"
    )
    assert "Traceback" not in stderr
    kept = _indexed(home / "lookalike.db")
    assert 0 < kept < PHOTOS
    again = subprocess.run(command, capture_output=True, env=env, check=True, timeout=600)
    summary = json.loads(again.stdout)
    assert summary["unchanged"] == kept and summary["new"] == PHOTOS - kept and summary["failed"] == []
