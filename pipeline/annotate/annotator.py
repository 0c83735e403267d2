"""Annotating decoded clips with the model: caption and tags, error rows passed through.

`Annotator` is plain Python (no Ray): it loads the model once and turns a batch of decoded
rows into output rows. Visual tokens are computed once per clip and reused for the tag
prompt or the taxonomy questions. A batch that fails is retried clip by clip, so one bad clip
becomes one `model_error` row instead of a lost batch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
import torch

from model import GenerationSettings, load_model, parse_tags
from model.generation import answer_question
from model.tags import score_taxonomy, score_taxonomy_listing
from pipeline.annotate.fingerprint import fingerprint, prompt_id, settings_key
from pipeline.annotate.settings import AnnotateSettings
from pipeline.core.status import STATUS_MODEL_ERROR, STATUS_OK

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass(frozen=True)
class Annotation:
    caption: str
    tags: list[str]
    tag_scores: list[dict[str, Any]]
    generated_tokens: int


class Annotator:
    """Hosts the model; `annotate(rows)` -> output rows in the `clips` schema."""

    def __init__(self, settings: AnnotateSettings) -> None:
        self.settings = settings
        dtype = None if settings.dtype == "auto" else _DTYPES[settings.dtype]
        self.model = load_model(
            settings.model_source,
            device=settings.device,
            dtype=dtype,
            endpoint_url=settings.storage.endpoint_url,
        )
        self.prompt_id = prompt_id(settings.prompts)
        if not settings.model_key:
            settings = replace(settings, model_key=self.model.model_id)
            self.settings = settings
        self.settings_hash = settings_key(settings)

    def _annotate_clips(self, clips: list[np.ndarray]) -> list[Annotation]:
        prompts = self.settings.prompts
        with torch.inference_mode():
            video = self.model.encode_frames(clips)  # [B, Q, D], shared by every question
            captions = answer_question(
                self.model, video, prompts.caption, GenerationSettings(self.settings.max_new_tokens)
            )
            tags: list[list[str]] = [[] for _ in clips]
            scores: list[list[dict[str, Any]]] = [[] for _ in clips]
            tag_tokens = [0] * len(clips)
            if prompts.tag_mode == "generate":
                settings = GenerationSettings(self.settings.tag_max_new_tokens)
                answers = answer_question(self.model, video, prompts.tags, settings)
                tags = [parse_tags(a.text) for a in answers]
                tag_tokens = [a.num_tokens for a in answers]
            elif prompts.tag_mode == "taxonomy" and prompts.taxonomy:
                if prompts.taxonomy_method == "listing":
                    listed = score_taxonomy_listing(
                        self.model, video, list(prompts.taxonomy), prompts.tags,
                        self.settings.tag_max_new_tokens,
                    )  # fmt: skip
                    table, tag_tokens = listed.scores, listed.num_tokens
                else:
                    table = score_taxonomy(
                        self.model, video, list(prompts.taxonomy), prompts.taxonomy_question
                    )
                scores = [_tag_scores(prompts.taxonomy, row) for row in table]
                tags = [_above(s, prompts.taxonomy_threshold) for s in scores]
        return [
            Annotation(c.text, t, s, c.num_tokens + n)
            for c, t, s, n in zip(captions, tags, scores, tag_tokens, strict=True)
        ]

    def _annotate_or_isolate(self, clips: list[np.ndarray]) -> list[Annotation | str]:
        """Annotations, or per clip the error text when even that clip alone fails."""
        try:
            return list(self._annotate_clips(clips))
        except Exception:
            if len(clips) == 1:
                raise
        results: list[Annotation | str] = []
        for clip in clips:
            try:
                results.extend(self._annotate_clips([clip]))
            except Exception as err:
                results.append(f"{type(err).__name__}: {str(err)[:400]}")
        return results

    def annotate(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Output rows for a batch; rows that arrive with an error pass through untouched."""
        started = time.perf_counter()
        todo = [i for i, row in enumerate(rows) if row["status"] == STATUS_OK]
        results: dict[int, Annotation | str] = {}
        if todo:
            clips = [np.asarray(rows[i]["frames"]) for i in todo]
            try:
                outcome = self._annotate_or_isolate(clips)
            except Exception as err:
                outcome = [f"{type(err).__name__}: {str(err)[:400]}"] * len(todo)
            results = dict(zip(todo, outcome, strict=True))
        per_clip = (time.perf_counter() - started) / max(len(todo), 1)
        return [self._output_row(row, results.get(i), per_clip) for i, row in enumerate(rows)]

    def _output_row(
        self, row: dict[str, Any], result: Annotation | str | None, seconds: float
    ) -> dict[str, Any]:
        out = {k: v for k, v in row.items() if k != "frames"}
        out.update(
            run_id=self.settings.run_id,
            clip_id=f"{row['video_id']}:{int(row['clip_index'])}",
            model_id=self.model.model_id,
            prompt_id=self.prompt_id,
            fingerprint=fingerprint(row, self.settings, self.settings_hash),
            caption=None, tags=[], tag_scores=[], generated_tokens=0, annotate_s=0.0,
            created_at=datetime.now(UTC),
        )  # fmt: skip
        if isinstance(result, Annotation):
            out.update(
                caption=result.caption, tags=result.tags, tag_scores=result.tag_scores,
                generated_tokens=result.generated_tokens, annotate_s=seconds,
            )  # fmt: skip
        elif isinstance(result, str):
            out.update(status=STATUS_MODEL_ERROR, error=result, annotate_s=seconds)
        return out


def _tag_scores(taxonomy: tuple[str, ...], scores: np.ndarray) -> list[dict[str, Any]]:
    return [{"tag": tag, "score": float(s)} for tag, s in zip(taxonomy, scores, strict=True)]


def _above(scores: list[dict[str, Any]], threshold: float) -> list[str]:
    kept = sorted((s for s in scores if s["score"] >= threshold), key=lambda s: -s["score"])
    return [s["tag"] for s in kept]
