"""What an annotation actor is told, once per actor."""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.annotate.prompts import PromptSettings
from pipeline.clips.sampling import SamplingConfig
from pipeline.clips.windows import ClipConfig
from pipeline.core.storage import StorageOptions


@dataclass(frozen=True)
class AnnotateSettings:
    """Everything an annotation actor needs; picklable, shipped once per actor."""

    run_id: str
    model_source: str
    prompts: PromptSettings
    clips: ClipConfig
    sampling: SamplingConfig
    storage: StorageOptions = field(default_factory=StorageOptions)
    dtype: str = "auto"
    device: str | None = None
    max_new_tokens: int = 64
    tag_max_new_tokens: int = 32
    stop_check_every: int = 8
    model_key: str = ""
    """Weights identity for fingerprints (`model_key()`, computed once on the driver)."""
