"""A real output to read back: the toy model through the whole pipeline into S3 on loopback.

`results_world` (one per session, shared by the query, stats and report tests) runs the real
pipeline twice with the shipped toy checkpoint and taxonomy tags:
- `night-1`: every video of `videos/` (toy clips of 2 s and 4 s, and one broken file);
- `night-2`: two of those videos again (a manifest): they are re-annotated, so `clips_all`
  holds them twice and `clips` once, from `night-2`;
then leaves a Parquet file that no commit record names (`ghost`), which readers must not see.
Expected values come from the toy world's ground truth and the written videos, not from the
code under test.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from model.toy.world import TAXONOMY, ToyClip

BUCKET = "results"
OUTPUT = f"s3://{BUCKET}/out"
TOY_SEED = 4242  # never used in training (model/toy/TRAINING.md)


@dataclass
class ResultsWorld:
    endpoint: str
    output: str
    videos: Path
    truth: dict[str, ToyClip]  # video_uri -> ground truth
    duration_s: dict[str, float]  # video_uri -> seconds, as written
    broken: str  # video_uri of the file that is not a video
    rerun: set[str]  # video_uris annotated again by night-2
    ghost_key: str  # object key of the uncommitted Parquet file
    extra: dict[str, Any] = field(default_factory=dict)


@pytest.fixture(scope="session")
def results_world(ray_session, tmp_path_factory) -> Iterator[ResultsWorld]:
    import shutil

    import boto3
    from moto.server import ThreadedMotoServer

    from model.toy.video_io import write_toy_videos
    from pipeline.config import build_config
    from pipeline.run import run_pipeline
    from tests.conftest import _free_port

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    mp = pytest.MonkeyPatch()
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        mp.setenv(key, value)
    try:
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        root = tmp_path_factory.mktemp("results-world")
        videos = root / "videos"
        truth: dict[str, ToyClip] = {}
        duration: dict[str, float] = {}
        for sub, frames, n, seed in (("short", 48, 4, TOY_SEED), ("long", 96, 3, TOY_SEED + 1)):
            for path, clip in write_toy_videos(root / sub, seed=seed, n=n, num_frames=frames):
                target = videos / f"{sub}_{path.name}"
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(path, target)
                truth[str(target)] = clip
                duration[str(target)] = frames / 24
        broken = videos / "broken.mp4"
        broken.write_bytes(b"this is not a video")
        rerun = sorted(truth)[:2]
        manifest = root / "rerun.txt"
        manifest.write_text("".join(f"{uri}\n" for uri in rerun))

        def config(input_uri: str, run_id: str):
            return build_config(
                {
                    "input": input_uri,
                    "output": OUTPUT,
                    "run_id": run_id,
                    "storage": {"endpoint_url": endpoint},
                    "clips": {"mode": "whole"},
                    "model": {"source": "toy", "batch_size": 4},
                    "prompts": {"tag_mode": "taxonomy", "taxonomy": list(TAXONOMY)},
                    "commit": {"grace_s": 0},
                }
            )

        first = run_pipeline(config(str(videos), "night-1"))
        second = run_pipeline(config(str(manifest), "night-2"))
        # a Parquet file no commit record names: a writer that died before committing it
        committed = first.files[0].removeprefix(f"s3://{BUCKET}/")
        ghost_key = "out/clips/run_date=2000-01-01/run_id=ghost/part-ghost.parquet"
        client.copy_object(
            Bucket=BUCKET, Key=ghost_key, CopySource={"Bucket": BUCKET, "Key": committed}
        )
        yield ResultsWorld(
            endpoint=endpoint,
            output=OUTPUT,
            videos=videos,
            truth=truth,
            duration_s=duration,
            broken=str(broken),
            rerun=set(rerun),
            ghost_key=ghost_key,
            extra={"summaries": (first, second), "root": root},
        )
    finally:
        mp.undo()
        server.stop()


def clipnote_env(world: ResultsWorld) -> dict[str, str]:
    """Environment for `python -m jobs.cli` subprocesses reading the world."""
    root = Path(__file__).resolve().parents[2]
    return {
        **os.environ,
        "PYTHONPATH": str(root),
        "COLUMNS": "250",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


def truth_json(world: ResultsWorld) -> str:
    return json.dumps({uri: list(clip.tags) for uri, clip in world.truth.items()})
