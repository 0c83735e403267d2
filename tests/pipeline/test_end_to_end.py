"""The whole pipeline against a real S3 API (moto server on loopback) and a real local Ray.

Videos (plain objects, members of a `.tar` shard, a JSONL manifest with a missing entry, and
bad files) go into an input bucket; `run_pipeline` writes Parquet + commit records into an
output bucket; the test reads them back the way users do and checks what they would see.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import tempfile
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest
from PIL import Image

from model.toy.video_io import TRUTH_FILE, write_mp4, write_toy_videos
from pipeline.clips.sampling import SamplingConfig
from pipeline.clips.windows import ClipConfig
from pipeline.config import build_config
from pipeline.core.status import STATUS_DECODE_ERROR, STATUS_OK
from pipeline.core.storage import StorageOptions
from pipeline.input.listing import list_videos
from pipeline.output.committed import committed_runs, read_committed
from pipeline.output.part_writer import PartTarget, write_part
from pipeline.output.schema import CLIPS_SCHEMA, rows_to_table
from pipeline.run import run_pipeline

pytestmark = pytest.mark.slow

IN_BUCKET = "in-bucket"
OUT_BUCKET = "out-bucket"
OUTPUT = f"s3://{OUT_BUCKET}/runs"
VIDEOS = f"s3://{IN_BUCKET}/videos"
MANIFEST = f"s3://{IN_BUCKET}/manifests/some.jsonl"
SHARD = f"{VIDEOS}/shards/shard-000.tar"
TOY_SHARD = f"s3://{IN_BUCKET}/toy/shard-000.tar"  # fresh toy-world clips for the toy model
TOY_SEED = 4242  # never used in training (model/toy/TRAINING.md)
CLIPS = ClipConfig(length_s=1.0, stride_s=1.0, min_length_s=1.0)
SAMPLING = SamplingConfig(num_frames=4)
TOY_CHECKPOINT = Path(__file__).resolve().parents[2] / "model" / "toy" / "checkpoint"

# uri -> (frames, fps, width, height) of every good video, as written below
GOOD = {
    f"{VIDEOS}/plain/clip_00000.mp4": (48, 24.0, 128, 128),
    f"{VIDEOS}/plain/clip_00001.mp4": (48, 24.0, 128, 128),
    f"{VIDEOS}/plain/short.mp4": (3, 24.0, 32, 32),  # 0.125 s: shorter than one clip
    f"{VIDEOS}/plain/odd.mp4": (30, 15.0, 97, 61),  # odd size, mpeg4
    f"{SHARD}#good.mp4": (48, 24.0, 128, 128),
    f"{SHARD}#../../x.mp4": (48, 24.0, 128, 128),  # a hostile member name, a real video
}
# uri -> words its error must contain
BAD = {
    f"{VIDEOS}/bad/empty.mp4": "empty file",
    f"{VIDEOS}/bad/noise.mp4": "not a readable video",
    f"{VIDEOS}/bad/truncated.mp4": "not a readable video",
}
MISSING = f"{VIDEOS}/plain/never-uploaded.mp4"
MANIFEST_URIS = [
    f"{VIDEOS}/plain/clip_00000.mp4",
    f"{VIDEOS}/plain/short.mp4",
    f"{SHARD}#good.mp4",
    MISSING,
]


# Clips and sampled frames of each good video, worked out by hand: 1 s windows, 4 frames each,
# frame i shown at i / fps, each frame the one nearest the centre of its quarter of the clip.
_TWO_SECONDS_AT_24 = [(0.0, 1.0, [3, 9, 15, 21]), (1.0, 2.0, [27, 33, 39, 45])]
EXPECTED_CLIPS = {
    f"{VIDEOS}/plain/clip_00000.mp4": _TWO_SECONDS_AT_24,
    f"{VIDEOS}/plain/clip_00001.mp4": _TWO_SECONDS_AT_24,
    # 0.125 s, shorter than min_length_s: one clip of all of it; 3 frames for 4 slots
    f"{VIDEOS}/plain/short.mp4": [(0.0, 0.125, [0, 1, 2, 2])],
    # 15 fps: targets 0.125/0.375/0.625/0.875 s -> frames 2, 6, 9, 13
    f"{VIDEOS}/plain/odd.mp4": [(0.0, 1.0, [2, 6, 9, 13]), (1.0, 2.0, [17, 21, 24, 28])],
    f"{SHARD}#good.mp4": _TWO_SECONDS_AT_24,
    f"{SHARD}#../../x.mp4": _TWO_SECONDS_AT_24,
}


def _expected_clips(uri: str) -> list[tuple[float, float, list[int]]]:
    return EXPECTED_CLIPS[uri]


def _odd_mp4(path: Path) -> None:
    levels = (np.arange(30) * 8).astype(np.uint8)
    frames = np.broadcast_to(levels[:, None, None, None], (30, 61, 97, 3)).copy()
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("mpeg4", rate=Fraction(15))
        stream.width, stream.height, stream.pix_fmt = 97, 61, "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))


def _tar(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _make_bucket(client: Any, name: str) -> None:
    existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    if name not in existing:
        client.create_bucket(Bucket=name)


def _keys(client: Any, bucket: str) -> list[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return [obj["Key"] for page in pages for obj in page.get("Contents", [])]


def _x_files(roots: list[Path], since: float) -> list[Path]:
    """Files named x.mp4 created since `since` under (or next to) any of `roots`."""
    found = []
    seen: set[Path] = set()
    for root in roots:
        for base in [root, *list(root.parents)[:3]]:
            if base in seen:
                continue
            seen.add(base)
            candidate = base / "x.mp4"
            if candidate.exists() and candidate.stat().st_mtime >= since:
                found.append(candidate)
    for dirpath, _dirs, files in os.walk(tempfile.gettempdir()):
        if "x.mp4" in files:
            path = Path(dirpath) / "x.mp4"
            if path.stat().st_mtime >= since:
                found.append(path)
    return found


def _s3_pyarrow(endpoint: str) -> pafs.S3FileSystem:
    scheme, _, host = endpoint.partition("://")
    return pafs.S3FileSystem(
        access_key="testing", secret_key="testing", region="us-east-1",
        scheme=scheme, endpoint_override=host,
    )  # fmt: skip


@pytest.fixture(scope="module")
def world(s3_endpoint, ray_session, tmp_path_factory) -> dict[str, Any]:
    """Upload the inputs, run the pipeline three times, and keep what users would look at."""
    import boto3

    from model import save_checkpoint
    from tests.helpers import build_tiny_model

    started = time.time()
    client = boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1")
    _make_bucket(client, IN_BUCKET)
    _make_bucket(client, OUT_BUCKET)
    local = tmp_path_factory.mktemp("e2e")
    checkpoint = save_checkpoint(build_tiny_model(seed=7), local / "tiny-ckpt")

    toy = [p.read_bytes() for p, _ in write_toy_videos(local / "toy", seed=5, n=4)]
    ramp = np.broadcast_to((np.arange(3) * 40).astype(np.uint8)[:, None, None, None],
                           (3, 32, 32, 3)).copy()  # fmt: skip
    write_mp4(ramp, local / "short.mp4", fps=24)
    _odd_mp4(local / "odd.mp4")
    objects = {
        "videos/plain/clip_00000.mp4": toy[0],
        "videos/plain/clip_00001.mp4": toy[1],
        "videos/plain/short.mp4": (local / "short.mp4").read_bytes(),
        "videos/plain/odd.mp4": (local / "odd.mp4").read_bytes(),
        "videos/bad/empty.mp4": b"",
        "videos/bad/noise.mp4": np.random.default_rng(0).bytes(20_000),
        "videos/bad/truncated.mp4": toy[3][: len(toy[3]) // 2],
        "videos/shards/shard-000.tar": _tar(
            {"good.mp4": toy[2], "../../x.mp4": toy[3], "readme.txt": b"not a video"}
        ),
        "manifests/some.jsonl": "".join(
            json.dumps({"uri": "../videos/plain/short.mp4" if u.endswith("short.mp4") else u})
            + "\n"
            for u in MANIFEST_URIS
        ).encode(),
    }
    toy_dir = local / "toy-fresh"
    toy_truth = {name.name: clip for name, clip in write_toy_videos(toy_dir, seed=TOY_SEED, n=4)}
    objects["toy/shard-000.tar"] = _tar({n: (toy_dir / n).read_bytes() for n in toy_truth})
    for key, data in objects.items():
        client.put_object(Bucket=IN_BUCKET, Key=key, Body=data)

    def config(input_uri: str, run_id: str):
        return build_config(
            {
                "input": input_uri,
                "output": OUTPUT,
                "run_id": run_id,
                "storage": {"endpoint_url": s3_endpoint},
                "clips": {"mode": "window", "length_s": 1.0, "stride_s": 1.0},
                "sampling": {"num_frames": 4},
                "model": {
                    "source": str(checkpoint),
                    "max_new_tokens": 6,
                    "tag_max_new_tokens": 4,
                    "batch_size": 4,
                },
                "output_options": {"rows_per_file": 4},
                "commit": {"chunk_videos": 2, "grace_s": 0},
                "resources": {"gpus_per_actor": 0},  # a real checkpoint on CPUs: asked
            }
        )

    options = StorageOptions(endpoint_url=s3_endpoint)
    prefix_summary = run_pipeline(config(VIDEOS, "prefix-run"))
    manifest_summary = run_pipeline(config(MANIFEST, "manifest-run"))
    first_manifest_rows = (
        read_committed(OUTPUT, options, latest=False).filter(_run_is("manifest-run")).to_pylist()
    )
    # a copy of that run's file under an older run date, committed by a chunk of an attempt
    # that crashed there (as a run of the same id made on another day would have left);
    # re-running the id must withdraw it too
    first_key = manifest_summary.files[0].removeprefix(f"s3://{OUT_BUCKET}/")
    old_key = f"runs/clips/run_date=2000-01-01/run_id=manifest-run/{first_key.rsplit('/', 1)[1]}"
    client.copy_object(
        Bucket=OUT_BUCKET, Key=old_key, CopySource={"Bucket": OUT_BUCKET, "Key": first_key}
    )
    old_chunk = {"run_id": "manifest-run", "attempt": "20000101T000000-000000", "seq": 1,
                 "run_date": "2000-01-01", "committed_at": "2000-01-01T00:00:00+00:00",
                 "files": [f"s3://{OUT_BUCKET}/{old_key}"], "rows": 1, "counts": {}}  # fmt: skip
    client.put_object(
        Bucket=OUT_BUCKET,
        Key="runs/_runs/manifest-run/20000101T000000-000000/chunk-000001.json",
        Body=json.dumps(old_chunk).encode(),
    )
    rerun_summary = run_pipeline(config(MANIFEST, "manifest-run"))
    toy_config = {
        "input": TOY_SHARD,
        "output": OUTPUT,
        "run_id": "toy-run",
        "storage": {"endpoint_url": s3_endpoint},
        "clips": {"mode": "whole"},
        "model": {"source": "toy"},
    }
    toy_summary = run_pipeline(build_config(toy_config))
    return {
        "committed": read_committed(OUTPUT, options, latest=False),
        "latest": read_committed(OUTPUT, options),
        "endpoint": s3_endpoint,
        "client": client,
        "options": options,
        "started": started,
        "local": local,
        "prefix": prefix_summary,
        "manifest": manifest_summary,
        "rerun": rerun_summary,
        "toy": toy_summary,
        "toy_truth": toy_truth,
        "first_manifest_rows": first_manifest_rows,
        "prefix_refs": list_videos(VIDEOS, options),
        "manifest_refs": list_videos(MANIFEST, options),
    }


def _run_is(run_id: str):
    import pyarrow.compute as pc

    return pc.field("run_id") == run_id


def _rows(world, run_id: str) -> list[dict[str, Any]]:
    """Committed rows of one run, as read back after all runs finished."""
    return [r for r in world["committed"].to_pylist() if r["run_id"] == run_id]


def test_committed_output_has_exactly_the_clips_schema(world):
    table = world["committed"]
    assert table.schema == CLIPS_SCHEMA
    assert table.num_rows > 0


def test_summary_counts_and_commit_record(world):
    summary = world["prefix"]
    ok_clips = sum(len(_expected_clips(u)) for u in GOOD)
    assert summary.videos == len(GOOD) + len(BAD)
    assert summary.counts == {STATUS_OK: ok_clips, STATUS_DECODE_ERROR: len(BAD)}
    assert summary.commit_record == f"{OUTPUT}/_runs/prefix-run.json"
    (record,) = [r for r in committed_runs(OUTPUT, world["options"]) if r.run_id == "prefix-run"]
    assert record.rows == ok_clips + len(BAD)
    assert record.counts == summary.counts
    assert list(record.files) == summary.files and summary.files
    assert all(f.startswith(f"{OUTPUT}/clips/run_date=") for f in record.files)
    assert all("/run_id=prefix-run/" in f for f in record.files)


def test_every_listed_video_appears(world):
    rows = _rows(world, "prefix-run")
    refs = world["prefix_refs"]
    assert {r.uri for r in refs} == set(GOOD) | set(BAD)
    assert {r["video_uri"] for r in rows} == set(GOOD) | set(BAD)
    ids = {r.uri: r.video_id for r in refs}
    assert all(row["video_id"] == ids[row["video_uri"]] for row in rows)


def test_one_row_per_planned_clip_with_frames_inside_it(world):
    rows = _rows(world, "prefix-run")
    by_video: dict[str, list[dict]] = {}
    for row in rows:
        by_video.setdefault(row["video_uri"], []).append(row)
    for uri, (frames, fps, width, height) in GOOD.items():
        got = sorted(by_video[uri], key=lambda r: r["clip_index"])
        expected = _expected_clips(uri)
        assert [r["clip_index"] for r in got] == list(range(len(expected))), uri
        for row, (start, end, indices) in zip(got, expected, strict=True):
            assert row["status"] == STATUS_OK and row["error"] is None, row["error"]
            assert (row["start_s"], row["end_s"]) == (start, end)
            assert row["frame_indices"] == indices
            assert row["frame_times_s"] == pytest.approx([i / fps for i in indices], abs=1e-4)
            assert (row["width"], row["height"]) == (width, height)
            assert row["video_fps"] == pytest.approx(fps)
            assert row["video_duration_s"] == pytest.approx(frames / fps)
            assert row["clip_id"] == f"{row['video_id']}:{row['clip_index']}"
            assert isinstance(row["caption"], str) and row["caption"].strip()
            assert row["model_id"] and row["prompt_id"] and row["fingerprint"]
            assert row["generated_tokens"] >= 1
            assert row["created_at"] is not None
            image = Image.open(io.BytesIO(row["thumbnail"]))
            assert image.format == "JPEG"
    fingerprints = [r["fingerprint"] for r in rows]
    assert len(set(fingerprints)) == len(fingerprints)


def test_bad_inputs_are_error_rows_with_the_reason(world):
    rows = _rows(world, "prefix-run")
    for uri, reason in BAD.items():
        (row,) = [r for r in rows if r["video_uri"] == uri]
        assert row["status"] == STATUS_DECODE_ERROR
        assert reason in row["error"]
        assert row["caption"] is None and row["thumbnail"] is None
        assert row["clip_index"] == -1 and row["frame_indices"] == []
        assert row["clip_id"] == f"{row['video_id']}:-1"


def test_manifest_run_with_a_missing_object(world):
    rows = _rows(world, "manifest-run")
    assert {r.uri for r in world["manifest_refs"]} == set(MANIFEST_URIS)
    assert {r["video_uri"] for r in rows} == set(MANIFEST_URIS)
    (missing,) = [r for r in rows if r["video_uri"] == MISSING]
    assert missing["status"] == STATUS_DECODE_ERROR
    assert "object not found" in missing["error"] and MISSING in missing["error"]
    ok = [r for r in rows if r["status"] == STATUS_OK]
    assert len(ok) == sum(len(_expected_clips(u)) for u in MANIFEST_URIS if u != MISSING)
    assert world["manifest"].counts == {STATUS_OK: len(ok), STATUS_DECODE_ERROR: 1}


def test_rerun_with_the_same_run_id_does_not_duplicate_rows(world):
    first = world["first_manifest_rows"]
    again = _rows(world, "manifest-run")
    assert len(again) == len(first)
    assert sorted(r["clip_id"] for r in again) == sorted(r["clip_id"] for r in first)
    assert len({r["clip_id"] for r in again}) == len(again)
    # really a new run: newer rows, same fingerprints (same inputs, model, prompts)
    assert min(r["created_at"] for r in again) > max(r["created_at"] for r in first)
    assert {r["fingerprint"] for r in again} == {r["fingerprint"] for r in first}
    records = [r for r in committed_runs(OUTPUT, world["options"]) if r.run_id == "manifest-run"]
    assert len(records) == 1 and list(records[0].files) == world["rerun"].files
    # the first attempt's files are gone from the bucket
    keys = _keys(world["client"], OUT_BUCKET)
    run_files = sorted(f"s3://{OUT_BUCKET}/{k}" for k in keys if "/run_id=manifest-run/" in k)
    assert run_files == sorted(world["rerun"].files)
    assert not any("run_date=2000-01-01" in k for k in keys)


def test_parquet_globbed_straight_from_s3_has_no_duplicates(world):
    """Users also point DuckDB/pyarrow at `clips/` directly: every clip appears once."""
    import pyarrow.dataset as pads

    fs = _s3_pyarrow(world["endpoint"])
    dataset = pads.dataset(
        f"{OUT_BUCKET}/runs/clips", filesystem=fs, format="parquet", partitioning="hive"
    )
    table = dataset.to_table(
        filter=pads.field("run_id").isin(["prefix-run", "manifest-run", "toy-run"])
    )
    clip_ids = [
        (r["run_id"], r["clip_id"]) for r in table.select(["run_id", "clip_id"]).to_pylist()
    ]
    assert len(clip_ids) == len(set(clip_ids)) == world["committed"].num_rows


def test_direct_pyarrow_read_from_s3(world):
    fs = _s3_pyarrow(world["endpoint"])
    with fs.open_input_stream(f"{OUT_BUCKET}/runs/_runs/prefix-run.json") as fh:
        record = json.loads(fh.read())
    tables = [pq.read_table(uri.removeprefix("s3://"), filesystem=fs) for uri in record["files"]]
    for table in tables:
        assert table.schema.equals(CLIPS_SCHEMA)
    assert sum(t.num_rows for t in tables) == record["rows"]
    committed = world["committed"]
    n_prefix = sum(1 for r in committed.column("run_id").to_pylist() if r == "prefix-run")
    assert n_prefix == record["rows"]


def test_tar_member_names_are_data_not_paths(world):
    rows = _rows(world, "prefix-run")
    hostile = [r for r in rows if r["video_uri"] == f"{SHARD}#../../x.mp4"]
    assert hostile and all(r["status"] == STATUS_OK for r in hostile)
    # nothing named x.mp4 on local disk near the test, the workers or the temp dirs
    import ray

    roots = [Path.cwd(), world["local"], Path(tempfile.gettempdir())]
    session = ray._private.worker._global_node.get_session_dir_path()
    roots.append(Path(session))
    assert _x_files(roots, world["started"] - 1) == []
    # and no object named x.mp4 anywhere in the buckets; output keys stay under the output root
    for bucket in (IN_BUCKET, OUT_BUCKET):
        assert not [k for k in _keys(world["client"], bucket) if k.endswith("x.mp4")]
    for key in _keys(world["client"], OUT_BUCKET):
        assert key.startswith("runs/_runs/") or key.startswith("runs/clips/run_date="), key
        assert ".." not in key


def test_uncommitted_files_are_ignored_by_readers(world):
    options = world["options"]
    before = read_committed(OUTPUT, options, latest=False)
    # a run that died after writing a file and before its commit record
    ghost = [dict(r, run_id="ghost-run") for r in before.slice(0, 3).to_pylist()]
    write_part(rows_to_table(ghost), PartTarget(OUTPUT, "ghost-run", "2026-01-01", "a", options))
    keys = _keys(world["client"], OUT_BUCKET)
    assert any("/run_id=ghost-run/" in k and k.endswith(".parquet") for k in keys)
    after = read_committed(OUTPUT, options, latest=False)
    assert after.num_rows == before.num_rows
    assert "ghost-run" not in set(after.column("run_id").to_pylist())
    assert "ghost-run" not in {r.run_id for r in committed_runs(OUTPUT, options)}


@pytest.mark.skipif(
    not (TOY_CHECKPOINT / "config.json").exists(), reason="model/toy/checkpoint not trained yet"
)
def test_toy_checkpoint_reads_the_videos_through_the_pipeline(ray_session, tmp_path):
    videos = tmp_path / "videos"
    write_toy_videos(videos, seed=4242, n=4)
    truth = {
        json.loads(line)["file"]: json.loads(line)
        for line in (videos / TRUTH_FILE).read_text().splitlines()
    }
    config = build_config(
        {
            "input": str(videos),
            "output": str(tmp_path / "out"),
            "run_id": "toy",
            "clips": {"mode": "whole"},
            "model": {"source": "toy"},
        }
    )
    summary = run_pipeline(config)
    assert summary.counts == {STATUS_OK: 4}
    rows = read_committed(str(tmp_path / "out")).to_pylist()
    assert len(rows) == 4
    for row in rows:
        assert len(row["frame_indices"]) == 8  # the checkpoint's trained frame count
    for row in rows:
        expected = truth[Path(row["video_uri"]).name]
        assert (row["caption"], row["tags"]) == (expected["caption"], expected["tags"])


def test_toy_clips_from_a_tar_shard_on_s3_get_their_true_captions_and_tags(world):
    """The shipped toy checkpoint, fed fresh toy-world MP4s through S3 + tar + decode +
    sampling, writes the ground-truth caption and tags of every clip."""
    assert world["toy"].counts == {STATUS_OK: len(world["toy_truth"])}
    rows = _rows(world, "toy-run")
    by_member = {r["video_uri"].split("#", 1)[1]: r for r in rows}
    assert set(by_member) == set(world["toy_truth"])
    for member, clip in world["toy_truth"].items():
        row = by_member[member]
        assert len(row["frame_indices"]) == 8  # the checkpoint's trained frame count
        assert (row["caption"], row["tags"]) == (clip.caption, list(clip.tags)), member


def test_latest_view_has_each_clip_once_and_the_newest_run_wins(world):
    latest = world["latest"].to_pylist()
    keys = [(r["video_uri"], r["clip_index"]) for r in latest]
    assert len(keys) == len(set(keys))
    everything = (
        set(GOOD) | set(BAD) | {MISSING} | {r["video_uri"] for r in _rows(world, "toy-run")}
    )
    assert {r["video_uri"] for r in latest} == everything
    # clip_00000 was captioned by prefix-run, then by manifest-run (twice): the re-run wins
    rows = [r for r in latest if r["video_uri"] == f"{VIDEOS}/plain/clip_00000.mp4"]
    assert rows and {r["run_id"] for r in rows} == {"manifest-run"}
    rerun_ids = {r["clip_id"] for r in _rows(world, "manifest-run")}
    assert {r["clip_id"] for r in rows} <= rerun_ids
