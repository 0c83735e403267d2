"""Annotation as a stage: importing it costs no torch; set up once, it turns a hand-built
batch into one output row per row, with the shipped toy checkpoint (no Ray)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from model.toy.world import make_clips, render_clip
from pipeline.annotate.prompts import PromptSettings
from pipeline.annotate.stage import AnnotateStage
from pipeline.core.stage import Resources
from tests.pipeline.annotate.toy import toy_settings


def test_naming_the_stage_does_not_import_torch():
    code = "import sys, pipeline.annotate.stage; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.strip() == "False", done.stderr[-2000:]


@pytest.mark.slow  # the real toy model
def test_a_batch_gets_one_output_row_per_row_in_order():
    settings = toy_settings(
        "stage-test", PromptSettings(tag_mode="generate"), dtype="float32", device="cpu",
        max_new_tokens=8, tag_max_new_tokens=4,
    )  # fmt: skip
    stage = AnnotateStage(settings, batch_size=2, workers=1, resources=Resources(cpus=1))
    (clip,) = make_clips(5151, 1)
    frames = render_clip(clip.spec, 8, 64)
    base = {"video_uri": "file:///v.mp4", "video_size": 1, "video_version": "1",
            "video_id": "vid", "error": None}  # fmt: skip
    rows = [
        {**base, "clip_index": 0, "status": "ok", "frames": frames},
        {**base, "clip_index": -1, "status": "decode_error", "error": "unreadable",
         "frames": np.zeros((0, 64, 64, 3), np.uint8)},
    ]  # fmt: skip
    out = stage.ready().process(rows)
    assert [(r["clip_index"], r["status"]) for r in out] == [(0, "ok"), (-1, "decode_error")]
    assert out[0]["caption"] and out[1]["caption"] is None and out[1]["error"] == "unreadable"
    assert all("frames" not in r for r in out)
