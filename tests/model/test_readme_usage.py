"""README's "Using the model directly" runs as written, on the shipped toy checkpoint."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import torch

from model.toy.world import make_clips, render_clip

ROOT = Path(__file__).resolve().parents[2]


def readme_snippet() -> str:
    text = (ROOT / "README.md").read_text()
    section = text.split("### Using the model directly", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)


def test_readme_model_snippet_runs_and_reads_the_video() -> None:
    torch.set_num_threads(2)
    toy = make_clips(6161, 2)  # not a training seed (TRAINING.md)
    clips = [render_clip(c.spec, 8, 64) for c in toy]
    scope: dict = {"clips": clips}
    source = readme_snippet().replace(
        '"model/toy/checkpoint"', repr(str(ROOT / "model/toy/checkpoint"))
    )
    exec(compile(source, "README.md", "exec"), scope)  # the README's own code
    captions, tags, scores, yes_no = (scope[k] for k in ("captions", "tags", "scores", "yes_no"))
    assert captions == [c.caption for c in toy]
    assert tags == [list(c.tags) for c in toy]
    assert scores.shape == (2, 2) and scores.dtype == np.float32
    assert ((scores >= 0) & (scores <= 1)).all()
    assert yes_no.shape == (2, 1)
