"""The Ray engine on a two-node cluster on this machine (``ray.cluster_utils.Cluster``): the library equals the local
engine's, and a driver killed at random points ten times resumes to the library an uninterrupted run builds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import create_engine

from tests.conftest import fresh_db_url
from tests.indexer.ray_support import (
    assert_loopback_nodes,
    assert_same_library,
    index_with,
    library_state,
    needs_ray_namespace,
    ray_settings,
    worker_env,
)

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'lookalike[ray]')")
pytestmark = needs_ray_namespace()

DRIVER_KILLS = 10
SEED = 20261126


@pytest.fixture(scope="module")
def two_nodes():
    from ray.cluster_utils import Cluster

    os.environ.update(worker_env())
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    cluster.add_node(num_cpus=1)
    ray.init(address=cluster.address, logging_level="WARNING")
    cluster.wait_for_nodes()
    assert len([n for n in ray.nodes() if n["Alive"]]) == 2
    assert_loopback_nodes(ray)
    yield cluster
    ray.shutdown()
    cluster.shutdown()


def test_a_two_node_cluster_builds_the_local_engines_library(two_nodes, ray_media, reference, tmp_path, model_cache):
    report, state, answers = index_with(ray_settings(tmp_path, model_cache, ray=two_nodes.address), ray_media)
    want_report, want_state, want_answers = reference
    assert sorted((f.path, f.code) for f in report.failed) == sorted((f.path, f.code) for f in want_report.failed)
    assert_same_library(state, want_state)
    assert answers == want_answers


def _cli_index(home: Path, db: str, media: Path, address: str) -> subprocess.Popen[bytes]:
    args = ["--home", str(home), "--db", db, "index", str(media), "--workers", "1", "--batch-size", "8"]
    return subprocess.Popen(
        [sys.executable, "-m", "lookalike.cli.main", *args, "--ray", address],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, **worker_env()},
    )


def test_a_driver_killed_at_random_points_resumes_to_the_uninterrupted_library(
    two_nodes, ray_media, reference, tmp_path
):
    rng = np.random.default_rng(SEED)
    home = tmp_path / "home"
    db = fresh_db_url(home)
    landed, stored = 0, []
    for _ in range(DRIVER_KILLS):
        proc = _cli_index(home, db, ray_media, two_nodes.address)
        time.sleep(float(rng.uniform(1.0, 9.0)))  # start-up, joining, actors starting, batches committed
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            landed += 1
        proc.wait()
        if home.joinpath("lookalike.db").exists() or not db.startswith("sqlite"):
            engine = create_engine(db)
            # consistent after every kill: no file twice, no vectors without their file
            stored.append(len(library_state(engine)))
            engine.dispose()
    proc = _cli_index(home, db, ray_media, two_nodes.address)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr.decode()
    assert landed >= DRIVER_KILLS - 1, f"only {landed} kills landed before an index run ended"
    # KNOWN GAP: on this 2-core machine every kill of this schedule lands before the first commit (stored stays
    # [0, ...]): it covers kills during start-up, joining and actor start, not between commits. A schedule that
    # waits for a commit before killing is still to be written (issue 13).
    engine = create_engine(db)
    assert_same_library(library_state(engine), reference[1])
    engine.dispose()
