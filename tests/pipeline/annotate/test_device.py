"""No silent CPU: a real checkpoint asks for a GPU, an actor given one uses CUDA or refuses to
start in one line, and the run record and summary say which device and dtype the actors used."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from model.toy.video_io import write_toy_videos
from pipeline.annotate.device import GpuUnusable, actor_device, actor_gpus
from pipeline.annotate.prompts import PromptSettings
from pipeline.annotate.stage import AnnotateStage
from pipeline.config import build_config
from pipeline.core.errors import EnvironmentFailure
from pipeline.core.stage import Resources
from pipeline.run import run_pipeline
from tests.pipeline.annotate.toy import toy_settings


def _no_gpus() -> bool:
    return False


def test_a_real_checkpoint_asks_for_a_gpu_even_before_any_gpu_node_is_up():
    assert actor_gpus(None, "s3://models/tinyllava-video", _no_gpus) == 1.0
    assert actor_gpus(0, "s3://models/tinyllava-video", _no_gpus) == 0.0  # explicit: CPU
    assert actor_gpus(None, "toy", _no_gpus) == 0.0
    assert actor_gpus(None, "toy", lambda: True) == 1.0


def test_auto_dtype_is_bf16_on_a_gpu_and_fp32_on_a_cpu():
    assert actor_device(1.0, "auto") == actor_device(0.5, "bfloat16")
    assert (actor_device(1.0, "auto").device, actor_device(1.0, "auto").dtype) == (
        "cuda",
        "bfloat16",
    )
    assert (actor_device(0.0, "auto").device, actor_device(0.0, "auto").dtype) == (
        "cpu",
        "float32",
    )
    assert actor_device(1.0, "float16").dtype == "float16"


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_an_actor_given_a_gpu_without_cuda_fails_at_start_in_one_line():
    settings = toy_settings("device-test", PromptSettings(tag_mode="none"))
    stage = AnnotateStage(settings, batch_size=2, workers=1, resources=Resources(cpus=1, gpus=1))
    with pytest.raises(GpuUnusable) as caught:
        stage.ready()
    message = str(caught.value)
    assert isinstance(caught.value, EnvironmentFailure)
    assert "\n" not in message
    assert message.startswith("annotate actor was given a GPU but CUDA is unusable")
    assert "resources.gpus_per_actor: 0" in message


def test_the_run_record_and_summary_name_the_actors_device_and_dtype(ray_session, tmp_path):
    videos = tmp_path / "videos"
    write_toy_videos(videos, seed=77, n=1)
    config = build_config(
        {
            "input": str(videos),
            "output": str(tmp_path / "out"),
            "run_id": "device",
            "clips": {"mode": "whole"},
            "model": {"source": "toy", "max_new_tokens": 4, "tag_max_new_tokens": 4},
            "resources": {"gpus_per_actor": 0},
        }
    )
    summary = run_pipeline(config)
    record = json.loads(Path(tmp_path / "out" / "_runs" / "device.json").read_text())
    assert (record["device"], record["dtype"]) == ("cpu", "float32")
    assert (summary.device, summary.dtype) == ("cpu", "float32")
