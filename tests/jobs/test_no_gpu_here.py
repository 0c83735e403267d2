"""A real checkpoint on a machine without a GPU: one line at once, not a run that waits for ever
for a GPU that a local Ray will never have."""

from __future__ import annotations

import pytest

from model.toy.video_io import write_toy_videos
from pipeline.annotate.device import NoGpuHere, refuse_endless_wait
from tests.jobs.cli_process import clipnote_here


def test_a_gpu_wanted_where_none_can_come_is_refused_and_elsewhere_waited_for():
    with pytest.raises(NoGpuHere, match=r"resources\.gpus_per_actor: 0"):
        refuse_endless_wait(1.0, 0.0, can_gain_gpus=False, source="s3://m/ckpt")
    refuse_endless_wait(1.0, 0.0, can_gain_gpus=True, source="s3://m/ckpt")  # a cluster
    refuse_endless_wait(1.0, 8.0, can_gain_gpus=False, source="s3://m/ckpt")  # GPUs are here
    refuse_endless_wait(0.0, 0.0, can_gain_gpus=False, source="toy")  # the CPU, as asked


def test_a_real_checkpoint_on_this_gpu_less_machine_says_so_in_one_line(
    tmp_path, tiny_checkpoint, ray_session
):
    """Through the CLI in this interpreter, whose local Ray (the session's, no GPU) is the one
    the run joins: the same check a fresh `clipnote run` makes on the Ray it starts."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    write_toy_videos(tmp_path / "in", seed=1, n=1, num_frames=24, size=64)
    done = clipnote_here(
        "run", "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"),
        "--model", str(tiny_checkpoint), cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr[-2000:]
    (line,) = [x for x in done.stderr.splitlines() if x.startswith("clipnote:")]
    assert "runs on a GPU (1 per annotate actor)" in line and "wait for ever" in line
    assert "resources.gpus_per_actor: 0" in line
