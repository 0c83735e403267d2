"""Every example config in jobs/configs runs end to end, as shipped, with the toy model.

Local configs run in a scratch working directory holding `clipnote-demo/videos` (the relative
input they name), so their relative paths are used as a user would use them. `s3-window.yaml`
runs against a moto server on loopback holding its own bucket (`my-bucket`: the server is this
module's alone) with the toy checkpoint uploaded where the config's `model.source` points;
only the endpoint and the GPU resources (none here) are overridden. Ground truth comes from the
toy world, never from the pipeline.

Catches: an example that no longer validates or runs (renamed field, a model source it cannot
load, GPU actors that never schedule on a CPU machine), relative paths resolved against the
wrong directory, and output that readers cannot read back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from model.toy.video_io import write_toy_videos
from pipeline.annotate.checkpoint_info import toy_checkpoint_dir
from pipeline.config import load_config
from pipeline.output.reading import read_latest
from pipeline.run import run_pipeline

CONFIGS = Path(__file__).resolve().parents[2] / "jobs" / "configs"
SEED = 6161  # not a training seed
N_VIDEOS = 3
CPU_ONLY = {"resources": {"annotate_actors": 1, "gpus_per_actor": 0, "decode_cpus": 1}}


def test_every_example_has_a_run_below() -> None:
    """A new example config must be added to the runs below (else it would go untested)."""
    assert {p.name for p in CONFIGS.glob("*.yaml")} == {
        "toy-local.yaml",
        "taxonomy.yaml",
        "s3-window.yaml",
    }


@pytest.fixture()
def demo_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """A working directory laid out as after `clipnote demo`: clipnote-demo/videos/*.mp4."""
    videos = tmp_path / "clipnote-demo" / "videos"
    written = write_toy_videos(videos, seed=SEED, n=N_VIDEOS, num_frames=48)
    monkeypatch.chdir(tmp_path)
    return {str(path.resolve()): clip for path, clip in written}


def _rows_by_video(output: str, options=None) -> dict[str, list[dict[str, Any]]]:
    rows = read_latest(output, options).to_pylist()
    by_video: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_video.setdefault(row["video_uri"], []).append(row)
    return by_video


def test_toy_local_runs_as_shipped(ray_session, demo_cwd, tmp_path) -> None:
    config = load_config(CONFIGS / "toy-local.yaml")
    assert config.output == str(tmp_path / "clipnote-output")  # relative, resolved here
    summary = run_pipeline(config)
    assert summary.counts == {"ok": N_VIDEOS}
    by_video = _rows_by_video(config.output)
    assert set(by_video) == set(demo_cwd)
    for uri, clip in demo_cwd.items():
        (row,) = by_video[uri]  # clips.mode: whole -> one clip per video
        assert row["status"] == "ok" and row["error"] is None
        assert row["caption"] == clip.caption
        assert set(row["tags"]) == set(clip.tags)
        assert len(row["frame_indices"]) == 8  # num_frames unset: the toy checkpoint's 8
        assert row["tag_scores"] == []


def test_taxonomy_runs_as_shipped(ray_session, demo_cwd, tmp_path) -> None:
    raw = yaml.safe_load((CONFIGS / "taxonomy.yaml").read_text())
    config = load_config(CONFIGS / "taxonomy.yaml")
    assert config.output == str(tmp_path / "clipnote-output-taxonomy")
    summary = run_pipeline(config)
    assert summary.counts == {"ok": N_VIDEOS}
    by_video = _rows_by_video(config.output)
    assert set(by_video) == set(demo_cwd)
    threshold = raw["prompts"]["taxonomy_threshold"]
    for uri, clip in demo_cwd.items():
        (row,) = by_video[uri]
        assert row["status"] == "ok"
        assert [s["tag"] for s in row["tag_scores"]] == raw["prompts"]["taxonomy"]
        above = {s["tag"] for s in row["tag_scores"] if s["score"] >= threshold}
        assert set(row["tags"]) == above
        # the clip's colour and shape are in this taxonomy; the truth outranks the rest
        colour, shape, _motion = clip.tags
        scores = {s["tag"]: s["score"] for s in row["tag_scores"]}
        assert max(("red", "green", "blue", "yellow"), key=scores.__getitem__) == colour
        assert max(("circle", "cross", "triangle"), key=scores.__getitem__) == shape


def _upload(client: Any, bucket: str, prefix: str, root: Path, pattern: str = "*") -> None:
    for path in sorted(root.glob(pattern)):
        if path.is_file():
            client.upload_file(str(path), bucket, f"{prefix}/{path.name}")


def test_s3_window_runs_against_an_s3_server(ray_session, s3_client, s3_endpoint, tmp_path):
    raw = yaml.safe_load((CONFIGS / "s3-window.yaml").read_text())
    bucket = raw["input"].removeprefix("s3://").split("/", 1)[0]
    videos_prefix = raw["input"].removeprefix(f"s3://{bucket}/").rstrip("/")
    model_prefix = raw["model"]["source"].removeprefix(f"s3://{bucket}/").rstrip("/")
    s3_client.create_bucket(Bucket=bucket)
    # 3 s videos: one 10 s window each, longer than min_length_s (2 s), cut at the video's end
    written = write_toy_videos(tmp_path / "v", seed=SEED, n=N_VIDEOS, num_frames=72)
    _upload(s3_client, bucket, videos_prefix, tmp_path / "v", "*.mp4")
    _upload(s3_client, bucket, model_prefix, toy_checkpoint_dir())

    config = load_config(
        CONFIGS / "s3-window.yaml", {"storage": {"endpoint_url": s3_endpoint}, **CPU_ONLY}
    )
    summary = run_pipeline(config)
    assert summary.counts == {"ok": N_VIDEOS}
    by_video = _rows_by_video(config.output, config.storage.options())
    expected = {f"s3://{bucket}/{videos_prefix}/{path.name}" for path, _ in written}
    assert set(by_video) == expected
    for rows in by_video.values():
        (row,) = rows
        assert row["status"] == "ok" and row["caption"]
        assert (row["start_s"], row["end_s"]) == pytest.approx((0.0, 3.0), abs=1 / 24)
        assert len(row["frame_indices"]) == raw["sampling"]["num_frames"] == 16
        assert row["tags"]  # tag_mode: generate
        assert row["model_id"] is not None and row["fingerprint"]


def test_toy_local_with_tags_switched_off(ray_session, demo_cwd, tmp_path) -> None:
    """`--set prompts.tag_mode=none` on the shipped example, through the whole pipeline:
    captions as before, no tags and no tag scores, tokens within the caption's own limit."""
    config = load_config(
        CONFIGS / "toy-local.yaml",
        {"prompts": {"tag_mode": "none"}, "output": str(tmp_path / "no-tags")},
    )
    assert run_pipeline(config).counts == {"ok": N_VIDEOS}
    by_video = _rows_by_video(config.output)
    for uri, clip in demo_cwd.items():
        (row,) = by_video[uri]
        assert row["caption"] == clip.caption
        assert row["tags"] == [] and row["tag_scores"] == []
        assert len(clip.caption.split()) <= row["generated_tokens"] <= 32  # max_new_tokens
