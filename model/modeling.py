"""TinyLLaVA-Video: SigLIP vision tower -> group resampler -> Qwen2 language model.

The video's `num_queries` tokens replace the `-200` placeholder in the prompt's embeddings; the
language model then runs on embeddings. Everything here is device agnostic and batched.

The published model answers one prompt per call, running the vision tower each time. Here, as
in transformers' LLaVA (`get_image_features`, then generation on embeddings), the visual tokens
are computed once (`encode_frames`) and every question is asked of them: a caption, a tag list
and taxonomy scores of a clip share one pass of the vision tower and the resampler.

    video = model.encode_frames(clips)  # [B, num_queries, D]
    captions = model.caption(video, CAPTION_PROMPT)  # list[Answer]
    tags = model.generate_tags(video, TAG_PROMPT)  # list[TagList]
    scores = model.score_tags(video, taxonomy, TAG_PROMPT)  # TagScores, [B, len(taxonomy)]
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import Qwen2ForCausalLM

from .batching import PromptBatch, cache_kwarg_name, pad_rows
from .configuration import IMAGE_TOKEN_INDEX, TinyLlavaVideoConfig
from .generation import (
    Answer,
    GenerationSettings,
    SharedPrefix,
    answer_question,
    question_ids,
    share_prefix,
)
from .processing import FrameProcessor
from .resampler import build_resampler
from .tags import (
    TAG_MAX_NEW_TOKENS,
    TAXONOMY_METHODS,
    TagList,
    TagScores,
    TaxonomyMethod,
    list_tags,
    score_taxonomy,
    score_taxonomy_listing,
)
from .vision import VisionTower


class TinyLlavaVideo(nn.Module):
    """The model a GPU worker hosts; `load_model` builds it from a checkpoint."""

    def __init__(self, config: TinyLlavaVideoConfig, tokenizer: Any = None) -> None:
        super().__init__()
        self.config = config
        self.tokenizer = tokenizer
        self.processor = FrameProcessor(size=config.image_size)
        self.model_id = "tinyllava-video"
        self.vision_tower = VisionTower(
            config.vision_config,
            feature_layer=config.vision_feature_layer,
            select_strategy=config.vision_feature_select_strategy,
        )
        self.connector = build_resampler(config.resampler)
        self.language_model = Qwen2ForCausalLM(config.text_config)
        self._cache_kwarg = cache_kwarg_name(self.language_model)

    @property
    def device(self) -> torch.device:
        return self.connector.latents.device

    @property
    def dtype(self) -> torch.dtype:
        return self.connector.latents.dtype

    # --- vision -------------------------------------------------------------------------------

    def encode_video(self, videos: torch.Tensor, frames_per_pass: int = 256) -> torch.Tensor:
        """Normalised videos `[B, T, 3, S, S]` -> visual tokens `[B, num_queries, D]`.

        All frames of the batch go through the tower together (in slices of `frames_per_pass`
        to bound memory); each video's frame tokens are then one sequence for the resampler.
        """
        b, t = videos.shape[:2]
        frames = videos.to(device=self.device, dtype=self.dtype).flatten(0, 1)  # [B*T, 3, S, S]
        feats = torch.cat(
            [self.vision_tower(chunk) for chunk in frames.split(frames_per_pass)]
        )  # [B*T, P, Dv]
        feats = feats.reshape(b, t * feats.shape[1], feats.shape[2])  # [B, T*P, Dv]
        return self.connector(feats)

    @torch.inference_mode()
    def encode_frames(self, clips: list[np.ndarray | torch.Tensor]) -> torch.Tensor:
        """uint8 clips `[T_i, H, W, 3]` (frame counts may differ) -> `[B, num_queries, D]`.

        The visual tokens every question of `caption`, `generate_tags` and `score_tags` is
        asked of. Clips with the same frame count and size are encoded together; order is
        preserved. Inference only (no autograd): training goes through `encode_video`.
        """
        out: list[torch.Tensor | None] = [None] * len(clips)
        buckets: dict[tuple[int, ...], list[int]] = {}
        for i, clip in enumerate(clips):
            buckets.setdefault(tuple(clip.shape), []).append(i)
        for indices in buckets.values():
            stacked = torch.stack([torch.as_tensor(clips[i]) for i in indices])  # [b, T, H, W, 3]
            pixels = self.processor(stacked, device=self.device, dtype=self.dtype)
            encoded = self.encode_video(pixels)
            for row, i in enumerate(indices):
                out[i] = encoded[row]
        return torch.stack(out)  # type: ignore[arg-type]

    # --- language -----------------------------------------------------------------------------

    def embed_prompts(
        self,
        prompts: list[list[int]] | list[torch.Tensor],
        video_embeds: torch.Tensor | None,
        padding_side: str = "left",
    ) -> PromptBatch:
        """Token rows with one `-200` each -> spliced, padded embeddings.

        Rows longer than the checkpoint's `tokenizer_model_max_length` are cut there, as the
        published model does. The placeholder is found on the host, in the token list: a
        search on the device would wait for it once per row.
        """
        embed = self.language_model.get_input_embeddings()
        rows = []
        for i, row_ids in enumerate(prompts):
            host = row_ids.tolist() if isinstance(row_ids, torch.Tensor) else list(row_ids)
            holes = [at for at, token in enumerate(host) if token == IMAGE_TOKEN_INDEX]
            ids = torch.tensor(host, dtype=torch.long, device=self.device)
            if len(holes) > 1:
                raise ValueError(f"prompt {i} holds {len(holes)} video placeholders; one allowed")
            if holes and video_embeds is None:
                raise ValueError(f"prompt {i} has a video placeholder but no video was given")
            if holes:
                at = holes[0]
                row = torch.cat(
                    [embed(ids[:at]), video_embeds[i].to(embed.weight.dtype), embed(ids[at + 1 :])]
                )
            else:
                row = embed(ids)
            rows.append(row[: self.config.tokenizer_model_max_length or None])
        return pad_rows(rows, padding_side)

    def run_language_model(
        self,
        batch: PromptBatch,
        cache: Any = None,
        logits_to_keep: int = 0,
    ) -> Any:
        """One language-model pass on embeddings; returns the output with `.logits` and cache."""
        kwargs = {self._cache_kwarg: cache} if cache is not None else {}
        return self.language_model(
            inputs_embeds=batch.embeds,
            attention_mask=batch.attention_mask if batch.padded else None,  # see PromptBatch
            position_ids=batch.position_ids,
            use_cache=True,
            logits_to_keep=logits_to_keep,
            **kwargs,
        )

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        videos: torch.Tensor | None = None,
    ) -> Any:
        """Logits for prompts whose `-200` placeholder is replaced by each row's video.

        Padding given by `attention_mask` is removed before splicing and re-applied on the
        checkpoint's padding side, so the logits are laid out as the published model lays them.
        """
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        rows = [ids[mask.bool()] for ids, mask in zip(input_ids, attention_mask, strict=True)]
        video_embeds = self.encode_video(videos) if videos is not None else None
        batch = self.embed_prompts(rows, video_embeds, self.config.tokenizer_padding_side)
        return self.language_model(
            inputs_embeds=batch.embeds,
            attention_mask=batch.attention_mask,
            position_ids=batch.position_ids,
            use_cache=False,
        )

    # --- annotation: questions asked of visual tokens from `encode_frames` --------------------

    def share_prefix(self, video: torch.Tensor, prompts: list[str]) -> SharedPrefix | None:
        """Prefill once what the questions `prompts` share (system prompt, the video) for
        `caption` and `generate_tags` to continue from (`generation.SharedPrefix`)."""
        rows = [question_ids(self, prompt) for prompt in prompts]
        return share_prefix(self, _visual_tokens(video), rows)

    def caption(
        self,
        video: torch.Tensor,
        prompt: str,
        settings: GenerationSettings | None = None,
        prefix: SharedPrefix | None = None,
    ) -> list[Answer]:
        """Each video's answer to `prompt`; greedy, 64 new tokens at most, unless `settings`
        say otherwise. `video`: visual tokens `[B, num_queries, D]` from `encode_frames`;
        `prefix`: from `share_prefix`, the same answers for less prefill."""
        settings = settings or GenerationSettings()
        return answer_question(self, _visual_tokens(video), prompt, settings, prefix)

    def generate_tags(
        self,
        video: torch.Tensor,
        prompt: str,
        settings: GenerationSettings | None = None,
        prefix: SharedPrefix | None = None,
    ) -> list[TagList]:
        """Each video's answer to a tag-list `prompt`, parsed (`tags.parse_tags`); greedy, 32
        new tokens at most, unless `settings` say otherwise."""
        settings = settings or GenerationSettings(max_new_tokens=TAG_MAX_NEW_TOKENS)
        return list_tags(self, _visual_tokens(video), prompt, settings, prefix)

    def score_tags(
        self,
        video: torch.Tensor,
        taxonomy: list[str],
        prompt: str,
        *,
        method: TaxonomyMethod = "listing",
        max_new_tokens: int = TAG_MAX_NEW_TOKENS,
    ) -> TagScores:
        """`[B, len(taxonomy)]` probabilities that each tag applies to each video.

        `listing` (the default): `prompt` is the tag-list prompt; the model writes its list
        (greedy, `max_new_tokens` at most) and each tag scores the probability of being written
        as an item of it (`tags.score_taxonomy_listing`). `yes_no`: `prompt` is a question with
        a `{tag}` slot, scored P(yes) against P(no) (`tags.score_taxonomy`); nothing generated.
        """
        video = _visual_tokens(video)
        if method == "listing":
            return score_taxonomy_listing(self, video, list(taxonomy), prompt, max_new_tokens)
        if method == "yes_no":
            scores = score_taxonomy(self, video, list(taxonomy), prompt)
            return TagScores(scores, [0] * video.shape[0])
        raise ValueError(f"method {method!r} unknown (one of {', '.join(TAXONOMY_METHODS)})")


def _visual_tokens(video: torch.Tensor) -> torch.Tensor:
    """`video` checked to be visual tokens `[B, Q, D]`, not clips: a clear error for the old
    calls that passed frames."""
    if not isinstance(video, torch.Tensor) or video.ndim != 3 or video.dtype == torch.uint8:
        got = tuple(video.shape) if hasattr(video, "shape") else type(video).__name__
        raise TypeError(
            f"expected visual tokens [B, Q, D] from model.encode_frames(clips), got {got}"
        )
    return video
