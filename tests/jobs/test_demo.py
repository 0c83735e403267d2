"""`clipnote demo`: toy videos made while Ray starts, the full pipeline, captions vs truth."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from jobs.demo import run_demo


@pytest.mark.slow
def test_the_demo_captions_every_video_and_shows_the_truth(tmp_path, ray_session):
    out = io.StringIO()
    summary = run_demo(tmp_path / "demo", count=2, console=Console(file=out, width=200))
    assert summary.counts == {"ok": 2}  # whole-video clips: one clip per toy video
    assert sorted(p.name for p in (tmp_path / "demo" / "videos").glob("*.mp4")) == [
        "clip_00000.mp4",
        "clip_00001.mp4",
    ]
    assert "2/2 captions match the truth" in out.getvalue()
