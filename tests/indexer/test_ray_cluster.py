"""The Ray engine on a two-node cluster on this machine (``ray.cluster_utils.Cluster``): the library equals the local
engine's, and a driver killed at ten random points (five during start-up, five between commits) resumes to the
library an uninterrupted run builds."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.exc import OperationalError

from lookalike.storage.orm import Media
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


def _cli_index(home: Path, db: str, media: Path, address: str, kill_at: int = 0) -> subprocess.Popen[bytes]:
    """The CLI's index run (``tests/indexer/killed_driver.py``: a commit per file; with ``kill_at``, the driver
    SIGKILLs itself just before that commit)."""
    args = ["--home", str(home), "--db", db, "index", str(media), "--workers", "1", "--batch-size", "2"]
    return subprocess.Popen(
        [sys.executable, "-m", "tests.indexer.killed_driver", *args, "--ray", address],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, **worker_env(), "LOOKALIKE_TEST_KILL_AT": str(kill_at)},
    )


def _stored(db: str) -> int:
    """Files the catalog holds (0 before the first run made it)."""
    engine = create_engine(db)
    try:
        with engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(Media)).scalar_one())
    except OperationalError:  # not created yet
        return 0
    finally:
        engine.dispose()


def test_a_driver_killed_at_random_points_resumes_to_the_uninterrupted_library(
    two_nodes, ray_media, reference, tmp_path
):
    rng = np.random.default_rng(SEED)
    home = tmp_path / "home"
    db = fresh_db_url(home)
    total = len(reference[1])
    kills = []  # (when, stored before the run, stored after the kill, commits it was to make first)
    for kill in range(DRIVER_KILLS):
        before = _stored(db)
        if kill % 2 == 0:  # from outside, during start-up: joining the cluster, planning, actors starting
            proc = _cli_index(home, db, ray_media, two_nodes.address)
            time.sleep(float(rng.uniform(1.0, 4.0)))
            assert proc.poll() is None, f"run {kill} ended before its kill: {proc.stderr.read().decode()}"
            os.kill(proc.pid, signal.SIGKILL)
            kills.append(("start-up", before, 0))
        else:  # between two commits: after 0, 1 or 2 files of this run were committed
            committed = int(rng.integers(0, 3))
            proc = _cli_index(home, db, ray_media, two_nodes.address, kill_at=committed + 1)
            kills.append(("commits", before, committed))
        proc.wait()
        assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()
        engine = create_engine(db)  # consistent after every kill: no file twice, no vectors without their file
        kills[-1] += (len(library_state(engine)),)
        engine.dispose()
    proc = _cli_index(home, db, ray_media, two_nodes.address)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr.decode()
    # each kill between commits left exactly the files committed before it, and files still to come
    assert all(after == before + n < total for when, before, n, after in kills if when == "commits"), (kills, total)
    engine = create_engine(db)
    assert_same_library(library_state(engine), reference[1])
    engine.dispose()
