"""Faults during real nightly runs; afterwards the reading path gives one clean run's clips.

Driver SIGKILL at random points (moto and SeaweedFS), S3 answering SlowDown / resetting /
stalling through a loopback proxy, and a worker node removed from a two-node Ray cluster.
The scenarios live in `benchmarks/reliability.py`, which runs more trials of each and writes
RELIABILITY.md; `CLIPNOTE_FAULT_TRIALS` sets the kill trials per store here (default 2).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.reliability import (
    Store,
    clean_run,
    kill_trial,
    make_videos,
    proxy_trial,
    put_videos,
)

pytestmark = pytest.mark.slow

TRIALS = int(os.environ.get("CLIPNOTE_FAULT_TRIALS", "2"))
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, bytes]:
    return make_videos(tmp_path_factory.mktemp("fault-videos"), n=4)


def _kill_trials(store: Store, videos, tmp_path: Path, seed: int) -> None:
    input_uri = put_videos(store, videos)
    reference = clean_run(input_uri, store.uri("reference"), store.endpoint)
    assert len(reference) == 8 and all(r[2] == "ok" for r in reference)
    rng = random.Random(seed)
    outcomes = [
        kill_trial(store, input_uri, store.uri(f"kill-{i}"), reference, rng, tmp_path)
        for i in range(TRIALS)
    ]
    for outcome in outcomes:
        assert outcome.clean, outcome
    assert any(o.detail["killed"] for o in outcomes), outcomes


def test_driver_sigkill_then_rerun_on_moto(ray_session, s3_endpoint, s3_client, videos, tmp_path):
    s3_client.create_bucket(Bucket="kills")
    _kill_trials(Store("moto", "s3://kills", s3_endpoint), videos, tmp_path, seed=1)


def test_driver_sigkill_then_rerun_on_seaweedfs(ray_session, videos, tmp_path):
    from tests.seaweedfs import seaweedfs

    identity = {
        "name": "testing",
        "credentials": [{"accessKey": "testing", "secretKey": "testing"}],
        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
    }
    with seaweedfs(tmp_path / "weed", [identity]) as server:
        store = Store("seaweedfs", "s3://kills", server.endpoint)
        _kill_trials(store, videos, tmp_path, seed=2)


def test_s3_throttling_resets_and_stalls_lose_nothing(ray_session, s3_endpoint, s3_client,
                                                      videos):  # fmt: skip
    s3_client.create_bucket(Bucket="faulty")
    store = Store("moto", "s3://faulty", s3_endpoint)
    reference = clean_run(put_videos(store, videos), store.uri("reference"), s3_endpoint)
    outcome = proxy_trial(s3_endpoint, "faulty", videos, reference, rate=0.25, seed=7)
    assert outcome.clean, outcome
    faults = sum(outcome.detail[k] for k in ("slowdown", "reset_before", "stall", "reset_after"))
    assert faults >= 0.1 * outcome.detail["requests"] and faults > 10, outcome.detail


def test_worker_node_removed_mid_run(tmp_path):
    """In its own process: a `ray.cluster_utils.Cluster` cannot share the session's Ray."""
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.reliability", "--stores", "", "--kill-trials", "0",
         "--proxy-trials", "0", "--node-trials", "1", "--out", str(tmp_path / "R.md")],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    (line,) = [json.loads(x) for x in done.stdout.splitlines() if x.startswith("{")]
    assert line["scenario"] == "worker node removed"
    assert line["expected"] == line["found"] > 0, line
    assert (line["duplicated"], line["lost"], line["extra"]) == (0, 0, 0), line
