"""What the model is asked: caption prompt, tag mode and its taxonomy (validated settings)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from model.prompts import CAPTION_PROMPT, TAG_PROMPT, TAXONOMY_QUESTION
from pipeline.core.strict import _Strict


class PromptSettings(_Strict):
    caption: str = CAPTION_PROMPT
    tag_mode: Literal["generate", "taxonomy", "none"] = "generate"
    tags: str = TAG_PROMPT
    taxonomy: tuple[str, ...] = ()
    taxonomy_question: str = TAXONOMY_QUESTION
    taxonomy_threshold: float = Field(0.5, ge=0.0, le=1.0)
    taxonomy_method: Literal["listing", "yes_no"] = "listing"
    """listing: P(the model lists the tag) under the `tags` prompt; yes_no: P(yes) to
    `taxonomy_question` (model/tags.py says why listing is the default)."""

    @field_validator("taxonomy_question")
    @classmethod
    def _has_tag_slot(cls, value: str) -> str:
        if "{tag}" not in value:
            raise ValueError("must contain '{tag}'")
        return value
