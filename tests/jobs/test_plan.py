"""`clipnote plan`: the sizing arithmetic, and a sample's prediction against a full run."""

from __future__ import annotations

import math
import time

import pytest

from jobs.plan import (
    MemoryModel,
    SampleMeasure,
    fit_batch,
    make_plan,
    memory_model,
    predict,
    sample_refs,
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
    # 8 GPU nodes bring 8 x 7 spare CPUs = 56: no decode node needed
    assert (plan.gpu_nodes, plan.decode_nodes) == (8, 0)
    heavy = predict(_measure(decode_s_per_clip=2.0), total_videos=100, gpus=8)
    # 2.0 / 0.1 x 1.25 = 25 CPUs per GPU: 200 CPUs, 56 on GPU nodes, 144 on 32-CPU nodes
    assert heavy.decode_cpus == 200 and heavy.decode_nodes == math.ceil(144 / 32)


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


@pytest.mark.slow
def test_sample_predicts_a_full_run_within_2x(local_ray, tmp_path):
    """On this machine: plan from 3 of 16 videos, then the full run; wall times within 2x."""
    from model.toy.video_io import write_toy_videos
    from pipeline.config import build_config
    from pipeline.run import run_pipeline

    write_toy_videos(tmp_path / "videos", seed=4242, n=16)
    config = build_config(
        {
            "input": str(tmp_path / "videos"),
            "output": str(tmp_path / "out"),
            "run_id": "full",
            "clips": {"mode": "window", "length_s": 0.5, "stride_s": 0.5},
            "model": {"source": "toy", "batch_size": 8},
            "commit": {"grace_s": 0},
        }
    )
    measure, _, extra = make_plan(config, sample=3, workdir=tmp_path)
    assert measure.videos == 3 and measure.errors == 0
    assert measure.clips_per_video == pytest.approx(4.0)
    assert measure.decode_s_per_clip > 0 and measure.annotate_s_per_clip > 0
    assert measure.tokens_per_clip > 0
    local = extra["this_machine"]
    assert local["total_clips"] == 64 and extra["listed"] == 16
    assert not (tmp_path / "out").exists()  # the sample never writes the run's output
    started = time.perf_counter()
    summary = run_pipeline(config)
    actual = time.perf_counter() - started
    assert summary.clips == 64
    ratio = local["wall_s"] / actual
    print(f"plan predicted {local['wall_s']:.1f} s, full run took {actual:.1f} s ({ratio:.2f}x)")
    assert 0.5 <= ratio <= 2.0, (local, actual)
