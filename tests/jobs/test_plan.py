"""`clipnote plan`: the sizing arithmetic, and a sample's prediction against a full run."""

from __future__ import annotations

import math

import pytest

from jobs.plan import (
    GPU_NODE_CPUS,
    GPU_NODE_RAY_CPUS,
    MemoryModel,
    SampleMeasure,
    fit_batch,
    format_plan,
    memory_model,
    predict,
    sample_refs,
    sample_stream,
    throughput,
)


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


def test_batch_fits_memory():
    mm = MemoryModel(weights_bytes=10 * 10**9, per_clip_bytes=100 * 10**6)
    # 80 GB x 0.85 = 68 GB, less 10 GB of weights = 58 GB / 100 MB = 580
    assert fit_batch(mm, 80) == 580
    assert fit_batch(mm, 10) == 0  # the weights alone do not fit
    assert fit_batch(MemoryModel(0, 1000), 80) == 1024  # capped


def test_memory_per_clip_grows_with_frames_and_tokens():
    from jobs.plan import checkpoint_config_and_size

    config, weights = checkpoint_config_and_size("model/toy/checkpoint", None)
    assert 1_000_000 < weights < 20_000_000  # the toy's safetensors
    small = memory_model(config, 8, 80, 32).per_clip_bytes
    assert memory_model(config, 16, 80, 32).per_clip_bytes > small
    assert memory_model(config, 8, 80, 256).per_clip_bytes > small


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
