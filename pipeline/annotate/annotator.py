"""Annotating decoded clips with the model: caption and tags, error rows passed through.

`Annotator` is plain Python (no Ray): it loads the model once and turns a batch of decoded
rows into output rows. Visual tokens are computed once per clip (`model.encode_frames`) and
the caption, tag list or taxonomy scores are asked of them; the same tokens, pooled, are the
clip's embedding (`embedding.py`), and its frames give its footage fingerprint (`footage.py`).
A batch that fails is retried clip by clip, so one bad clip becomes one `model_error` row
instead of a lost batch. The model, and with it torch, is imported when an `Annotator` is
made, never when this module is.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import numpy as np

from pipeline.annotate.cuda_faults import CudaFault, fault_kind, release_cached_memory
from pipeline.annotate.device import ActorDevice, actor_device, check_usable
from pipeline.annotate.embedding import embed_pooled, embedding_key
from pipeline.annotate.fingerprint import fingerprint, prompt_id, settings_key
from pipeline.annotate.footage import footage_fingerprint
from pipeline.annotate.settings import AnnotateSettings
from pipeline.core.rows import Annotation, RowIdentity, output_row
from pipeline.core.status import STATUS_OK


class Annotator:
    """Hosts the model; `annotate(rows)` -> output rows in the `clips` schema."""

    def __init__(
        self, settings: AnnotateSettings, placement: ActorDevice | None = None, embed: bool = True
    ) -> None:
        """`placement`: the device and dtype the driver chose for every actor (`device.py`);
        without one, `settings.device` (CPU unless it says `cuda`) and `settings.dtype`.
        `embed=False` leaves `embedding` and `footage` null: only `benchmarks/similar.py`
        uses it, to measure what they cost."""
        # The model (torch, transformers) is imported here, in the process that hosts it:
        # importing this module, as the driver does, costs neither.
        import torch

        from model import GenerationSettings, load_model

        wanted = placement or actor_device(
            1.0 if (settings.device or "cpu").startswith("cuda") else 0.0, settings.dtype
        )
        cuda = torch.cuda.is_available()
        bf16 = cuda and torch.cuda.is_bf16_supported(including_emulation=False)
        check_usable(wanted, cuda, bf16, torch.__version__)
        self.settings = settings
        self.placement = wanted
        self.model = load_model(
            settings.model_source,
            device=settings.device or wanted.device,
            dtype=getattr(torch, wanted.dtype),
            endpoint_url=settings.storage.endpoint_url,
        )
        self.prompt_id = prompt_id(settings.prompts)
        if not settings.model_key:
            settings = replace(settings, model_key=self.model.model_id)
            self.settings = settings
        self.settings_hash = settings_key(settings)
        self.embed = embed
        self.embedding_key = embedding_key(settings.model_key)
        every = settings.stop_check_every
        self._caption_settings = GenerationSettings(settings.max_new_tokens, stop_check_every=every)
        self._tag_settings = GenerationSettings(settings.tag_max_new_tokens, stop_check_every=every)

    def _annotate_clips(self, clips: list[np.ndarray]) -> list[Annotation]:
        prompts, model = self.settings.prompts, self.model
        video = model.encode_frames(clips)  # [B, Q, D], shared by every question
        embeddings: list[np.ndarray | None] = [None] * len(clips)
        footage: list[np.ndarray | None] = [None] * len(clips)
        if self.embed:  # pooled on the device: only [B, D] comes back
            embeddings = list(embed_pooled(video.float().mean(dim=1).cpu().numpy()))
            footage = [footage_fingerprint(clip) for clip in clips]
        # Caption and tag list share their prompt's prefill up to the question (system prompt,
        # video tokens): one long prefill for both.
        prefix = None
        if prompts.tag_mode == "generate":
            prefix = model.share_prefix(video, [prompts.caption, prompts.tags])
        captions = model.caption(video, prompts.caption, self._caption_settings, prefix)
        tags: list[list[str]] = [[] for _ in clips]
        scores: list[list[dict[str, Any]]] = [[] for _ in clips]
        tag_tokens = [0] * len(clips)
        if prompts.tag_mode == "generate":
            listed = model.generate_tags(video, prompts.tags, self._tag_settings, prefix)
            tags = [t.tags for t in listed]
            tag_tokens = [t.num_tokens for t in listed]
        elif prompts.tag_mode == "taxonomy" and prompts.taxonomy:
            method = prompts.taxonomy_method
            question = prompts.tags if method == "listing" else prompts.taxonomy_question
            scored = model.score_tags(
                video, list(prompts.taxonomy), question, method=method,
                max_new_tokens=self.settings.tag_max_new_tokens,
            )  # fmt: skip
            tag_tokens = scored.num_tokens
            scores = [_tag_scores(prompts.taxonomy, row) for row in scored.scores]
            tags = [_above(s, prompts.taxonomy_threshold) for s in scores]
        return [
            Annotation(c.text, t, s, c.num_tokens + n, e, f)
            for c, t, s, n, e, f in zip(
                captions, tags, scores, tag_tokens, embeddings, footage, strict=True
            )
        ]

    def _annotate_or_isolate(self, clips: list[np.ndarray]) -> list[Annotation | str]:
        """Annotations, or per clip the error text when even that clip alone fails.

        Out of memory halves the batch and goes on (a clip that alone does not fit is its own
        `model_error`); any other CUDA error is raised as `CudaFault`, never written as rows:
        the context is poisoned and the actor must die (`cuda_faults.py`).
        """
        try:
            return list(self._annotate_clips(clips))
        except Exception as err:
            kind = fault_kind(err)
            if kind == "poisoned":
                raise CudaFault(f"{type(err).__name__}: {str(err)[:400]}") from err
            if kind == "out_of_memory":
                release_cached_memory()
                if len(clips) == 1:
                    return [_error_text(err)]
                half = len(clips) // 2
                return self._annotate_or_isolate(clips[:half]) + self._annotate_or_isolate(
                    clips[half:]
                )
            if len(clips) == 1:
                raise
        return [result for clip in clips for result in self._isolated(clip)]

    def _isolated(self, clip: np.ndarray) -> list[Annotation | str]:
        """One clip alone: its annotation or its error text (a poisoned context still raises)."""
        try:
            return self._annotate_or_isolate([clip])
        except CudaFault:
            raise
        except Exception as err:
            return [_error_text(err)]

    def annotate(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Output rows for a batch; rows that arrive with an error pass through untouched."""
        started = time.perf_counter()
        todo = [i for i, row in enumerate(rows) if row["status"] == STATUS_OK]
        results: dict[int, Annotation | str] = {}
        if todo:
            clips = [np.asarray(rows[i]["frames"]) for i in todo]
            try:
                outcome = self._annotate_or_isolate(clips)
            except CudaFault:
                raise
            except Exception as err:
                outcome = [_error_text(err)] * len(todo)
            results = dict(zip(todo, outcome, strict=True))
        per_clip = (time.perf_counter() - started) / max(len(todo), 1)
        return [self._output_row(row, results.get(i), per_clip) for i, row in enumerate(rows)]

    def _output_row(
        self, row: dict[str, Any], result: Annotation | str | None, seconds: float
    ) -> dict[str, Any]:
        identity = RowIdentity(
            run_id=self.settings.run_id,
            fingerprint=fingerprint(row, self.settings, self.settings_hash),
            model_id=self.model.model_id,
            prompt_id=self.prompt_id,
            embedding_key=self.embedding_key,
        )
        return output_row(row, identity, result, seconds)


def _error_text(err: BaseException) -> str:
    return f"{type(err).__name__}: {str(err)[:400]}"


def _tag_scores(taxonomy: tuple[str, ...], scores: np.ndarray) -> list[dict[str, Any]]:
    return [{"tag": tag, "score": float(s)} for tag, s in zip(taxonomy, scores, strict=True)]


def _above(scores: list[dict[str, Any]], threshold: float) -> list[str]:
    kept = sorted((s for s in scores if s["score"] >= threshold), key=lambda s: -s["score"])
    return [s["tag"] for s in kept]
