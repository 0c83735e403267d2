"""`clipnote plan`: the sizing arithmetic, and a sample's prediction against a full run."""

from __future__ import annotations

import math

import pytest

from jobs.plan import (
    GPU_NODE_CPUS,
    GPU_NODE_RAY_CPUS,
    SampleMeasure,
    format_plan,
    not_sized_note,
    plan_config,
    predict,
    sample_refs,
    sample_stream,
    size_batch,
    sizing_note,
    throughput,
)
from pipeline.annotate.memory import BatchSizing


def _measure(**kw) -> SampleMeasure:
    base = dict(
        videos=4, clips=8, ok=8, errors=0, decode_s_per_clip=0.5, annotate_s_per_clip=0.1,
        tokens_per_clip=20.0, clips_per_video=2.0, wall_s=30.0, actors=1, decode_cpus=1.0,
    )  # fmt: skip
    base.update(kw)
    return SampleMeasure(**base)


def test_throughput_is_the_slower_stage():
    m = _measure()
    assert throughput(m, gpus=1, decode_cpus=1) == (pytest.approx(2.0), "decode")
    assert throughput(m, gpus=1, decode_cpus=10) == (pytest.approx(10.0), "annotate")
    assert throughput(m, gpus=4, decode_cpus=10) == (pytest.approx(20.0), "decode")


def test_predict_sizes_cpus_per_gpu_wall_and_nodes():
    m = _measure()  # sample: 8 clips at 2 clips/s = 4 s of work in 30 s: 26 s start-up
    plan = predict(m, total_videos=10_000, gpus=8)
    # 0.5 / 0.1 = 5 CPUs per GPU to match, 25% headroom -> 7 (rounded up)
    assert plan.decode_cpus_per_gpu == math.ceil(1.25 * 5) == 7
    assert plan.decode_cpus == 56 and plan.total_clips == 20_000
    assert plan.bottleneck == "annotate" and plan.clips_per_s == pytest.approx(80.0)
    assert plan.overhead_s == pytest.approx(26.0)
    assert plan.wall_s == pytest.approx(26.0 + 20_000 / 80.0)
    assert plan.gpu_hours == pytest.approx(plan.wall_s * 8 / 3600)
    # 8 GPU nodes advertise 6 of their 8 CPUs, the actor holds 1: 8 x 5 = 40 decode CPUs, so
    # the other 16 of the 56 need one 32-CPU decode node
    assert (plan.gpu_nodes, plan.decode_nodes) == (8, 1)
    heavy = predict(_measure(decode_s_per_clip=2.0), total_videos=100, gpus=8)
    # 2.0 / 0.1 x 1.25 = 25 CPUs per GPU: 200 CPUs, 40 on GPU nodes, 160 on 32-CPU nodes
    assert heavy.decode_cpus == 200 and heavy.decode_nodes == 160 // 32


def test_fewer_decode_cpus_than_needed_make_decode_the_bottleneck():
    plan = predict(_measure(), total_videos=100, gpus=2, decode_cpus=4)
    assert plan.bottleneck == "decode" and plan.clips_per_s == pytest.approx(8.0)


def test_the_batch_is_sized_by_tracing_the_runs_own_forward_at_its_gpu_dtype():
    """The toy checkpoint for a 0.03 GB GPU (85% usable: 25.5 MB): weights at bf16, the dtype
    an actor given a GPU loads them in (4,351,360 bytes, not the file's 4,368,928 of fp16 nor
    fp32's 8.7 MB), then batches traced until the largest that fits is one of them."""
    from pipeline.config import build_config

    config = build_config({"input": "in", "output": "out", "model": {"source": "toy"}})
    sizing = size_batch(config, 0.03, checkpoint_frames=8)
    assert (sizing.dtype, sizing.frames, sizing.gpu_bytes) == ("bfloat16", 8, 25_500_000)
    assert sizing.weights_bytes == 4_351_360
    assert sizing.batch in sizing.measured and sizing.batch > 1
    assert sizing.weights_bytes + sizing.measured[sizing.batch] <= 25_500_000


def test_the_batch_line_says_what_it_was_sized_from_or_that_nothing_was():
    sizing = BatchSizing(
        batch=90, gpu_bytes=68 * 10**9, weights_bytes=7_260_000_000, dtype="bfloat16",
        frames=16, measured={1: 310_000_000, 8: 2_480_000_000, 90: 25_000_000_000},
    )  # fmt: skip
    assert sizing_note(sizing, 80, found=False) == (
        "80 GB GPU (given), 85% of it used: weights 7.26 GB in bfloat16, a batch of 90 measured "
        "at 25.00 GB more, ~275 MB per clip (traced at 1, 8, 90 clips of 16 frames)"
    )  # (25.00 - 2.48) GB / 82 clips = 274.6 MB
    none_fit = BatchSizing(0, 8 * 10**9, 7_260_000_000, "bfloat16", 16, {1: 900_000_000})
    assert sizing_note(none_fit, 10, found=True) == (
        "10 GB GPU (found), 85% of it used: weights 7.26 GB in bfloat16: one clip of 16 frames "
        "needs 0.90 GB more, which does not fit"
    )
    assert "no GPU in this cluster and none given" in not_sized_note(cluster_has_gpus=False)
    m = _measure()
    unsized = predict(m, 100, 1, batch_note=not_sized_note(False))
    lines = format_plan(m, unsized, {"clips_per_s": 1.0, "wall_s": 1}).splitlines()
    assert [line for line in lines if line.startswith("batch size")] == [
        "batch size: not sized: no GPU in this cluster and none given: --gpu-memory-gb N sizes "
        "it for a GPU of N GB"
    ]


def test_plan_needs_no_output_and_leaves_nothing_in_one_it_is_given(tmp_path):
    """`clipnote plan --input vids`: a config without an output is a plan's config; given one,
    plan neither probes it nor creates `_runs/` there (a run's preflight does)."""
    from pipeline.preflight import preflight

    (tmp_path / "vids").mkdir()
    (tmp_path / "vids" / "a.mp4").write_bytes(b"not read by the checks")
    config = plan_config(None, str(tmp_path / "vids"))
    assert config.input == str(tmp_path / "vids")
    (tmp_path / "out").mkdir()
    plan_config(None, str(tmp_path / "vids"), str(tmp_path / "out"))
    assert list((tmp_path / "out").iterdir()) == []
    preflight(config.model_copy(update={"output": str(tmp_path / "out")}))
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["_runs"]  # what a run leaves


def test_sample_spreads_over_the_listing():
    refs = list(range(100))
    assert sample_refs(refs, 4) == [0, 25, 50, 75]
    assert sample_refs(refs[:3], 8) == [0, 1, 2]


def test_a_streamed_listing_is_sampled_evenly():
    chosen, count = sample_stream(iter(range(1000)), 4)
    assert count == 1000 and chosen == [0, 256, 512, 768]  # every 128th kept, then every 2nd
    assert sample_stream(iter(range(3)), 8) == ([0, 1, 2], 3)
    assert sample_stream(iter([]), 4) == ([], 0)
    chosen, _ = sample_stream(iter(range(10_000)), 5)
    assert chosen == [0, 2048, 4096, 6144, 8192]  # every 2048th of 0..9999: 5 of them


@pytest.mark.slow
@pytest.mark.trials  # two wall times compared: run alone, not beside another worker's load
def test_sample_predicts_a_full_run_within_2x(tmp_path):
    """As a user does it, on this machine: `clipnote plan` measures 3 of 16 videos, then
    `clipnote run` does all 16, each in a fresh process with its own local Ray; the predicted
    wall time of the run is within 2x of the run's own (its run record's seconds)."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    from model.toy.video_io import write_toy_videos

    write_toy_videos(tmp_path / "videos", seed=4242, n=16)
    config = tmp_path / "run.yaml"
    config.write_text(
        f"input: {tmp_path / 'videos'}\n"
        f"output: {tmp_path / 'out'}\n"
        "run_id: full\n"
        "clips: {mode: window, length_s: 0.5, stride_s: 0.5}\n"
        "model: {source: toy, batch_size: 8}\n"
    )
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root), "RAY_ADDRESS": "",
           "RAY_DATA_DISABLE_PROGRESS_BARS": "1"}  # fmt: skip

    def clipnote(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "jobs.cli", *args], env=env, cwd=tmp_path,
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    planned = json.loads(clipnote("plan", str(config), "--sample", "3", "--json").splitlines()[-1])
    measure, local = planned["sample"], planned["this_machine"]
    assert measure["videos"] == 3 and measure["errors"] == 0
    assert measure["clips_per_video"] == pytest.approx(4.0)
    assert measure["decode_s_per_clip"] > 0 and measure["annotate_s_per_clip"] > 0
    assert measure["tokens_per_clip"] > 0
    assert local["total_clips"] == 64 and planned["listed"] == 16
    # the sample never writes into the run's output (preflight may have created the folder)
    assert not [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    clipnote("run", str(config))
    record = json.loads((tmp_path / "out" / "_runs" / "full.json").read_text())
    assert record["rows"] == 64
    ratio = local["wall_s"] / record["seconds"]
    print(f"plan predicted {local['wall_s']:.1f} s, the run took {record['seconds']:.1f} s")
    assert 0.5 <= ratio <= 2.0, (local, record["seconds"])


def test_gpu_nodes_advertise_fewer_cpus_than_they_have_and_plan_says_how_many():
    """cluster.yaml's GPU node type keeps cores out of Ray's hands for the annotate actor, and
    `plan` prints the split it sizes with (the same numbers)."""
    import yaml

    from tests.test_cluster_yaml import CLUSTER_YAML

    types = yaml.safe_load(CLUSTER_YAML.read_text())["available_node_types"]
    gpu = next(node for node in types.values() if node["resources"].get("GPU"))
    assert gpu["node_config"]["InstanceType"] == "g6e.2xlarge"  # 8 vCPUs, as GPU_NODE_CPUS
    assert gpu["resources"]["CPU"] == GPU_NODE_RAY_CPUS == 6 < GPU_NODE_CPUS == 8
    m = _measure()
    text = format_plan(m, predict(m, total_videos=100, gpus=2), {"clips_per_s": 1.0, "wall_s": 1})
    assert "1 GPU, 8 CPUs each, 6 advertised to Ray: 2 kept for the annotate actor, 5 decode" in (
        text
    )
