"""Annotation settings for the shipped toy checkpoint, as the annotate tests use it: whole
clips of 8 frames; each test names its run, prompts and what else it needs."""

from __future__ import annotations

from typing import Any

from pipeline.annotate.checkpoint_info import toy_checkpoint_dir
from pipeline.annotate.prompts import PromptSettings
from pipeline.annotate.settings import AnnotateSettings
from pipeline.clips.sampling import SamplingConfig
from pipeline.clips.windows import ClipConfig


def toy_settings(run_id: str, prompts: PromptSettings, **fields: Any) -> AnnotateSettings:
    return AnnotateSettings(
        run_id=run_id, model_source=str(toy_checkpoint_dir()), prompts=prompts,
        clips=ClipConfig(mode="whole"), sampling=SamplingConfig(num_frames=8), **fields,
    )  # fmt: skip
