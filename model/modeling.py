"""TinyLLaVA-Video: SigLIP vision tower -> group resampler -> Qwen2 language model.

The video's `num_queries` tokens replace the `-200` placeholder in the prompt's embeddings; the
language model then runs on embeddings. Everything here is device agnostic and batched.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import Qwen2ForCausalLM

from .batching import PromptBatch, cache_kwarg_name, pad_rows
from .configuration import IMAGE_TOKEN_INDEX, TinyLlavaVideoConfig
from .generation import GenerationSettings, generate_text
from .processing import FrameProcessor
from .resampler import build_resampler
from .tags import parse_tags, score_taxonomy, score_taxonomy_listing
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

    def encode_frames(self, clips: list[np.ndarray | torch.Tensor]) -> torch.Tensor:
        """uint8 clips `[T_i, H, W, 3]` (frame counts may differ) -> `[B, num_queries, D]`.

        Clips with the same frame count and size are encoded together; order is preserved.
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
        published model does.
        """
        embed = self.language_model.get_input_embeddings()
        rows = []
        for i, ids in enumerate(prompts):
            ids = torch.as_tensor(ids, dtype=torch.long, device=self.device)
            holes = (ids == IMAGE_TOKEN_INDEX).nonzero().flatten().tolist()
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
            attention_mask=batch.attention_mask,
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

    # --- annotation ---------------------------------------------------------------------------

    def caption(
        self,
        clips: list[np.ndarray | torch.Tensor],
        prompt: str,
        max_new_tokens: int = 64,
        settings: GenerationSettings | None = None,
    ) -> list[str]:
        """Batched captioning of uint8 clips `[T, H, W, 3]`; greedy unless settings say so."""
        settings = settings or GenerationSettings(max_new_tokens=max_new_tokens)
        return generate_text(self, self.encode_frames(clips), prompt, settings)

    def generate_tags(
        self,
        clips: list[np.ndarray | torch.Tensor],
        prompt: str,
        max_new_tokens: int = 32,
    ) -> list[list[str]]:
        """Ask for a comma-separated tag list per clip and parse it."""
        settings = GenerationSettings(max_new_tokens=max_new_tokens)
        texts = generate_text(self, self.encode_frames(clips), prompt, settings)
        return [parse_tags(text) for text in texts]

    def score_tags(
        self, clips: list[np.ndarray | torch.Tensor], taxonomy: list[str], question: str
    ) -> np.ndarray:
        """`[B, len(taxonomy)]` probabilities that each tag applies (see `tags.score_taxonomy`)."""
        return score_taxonomy(self, self.encode_frames(clips), taxonomy, question)

    def score_tags_listing(
        self,
        clips: list[np.ndarray | torch.Tensor],
        taxonomy: list[str],
        prompt: str,
        max_new_tokens: int = 32,
    ) -> np.ndarray:
        """`[B, len(taxonomy)]` probabilities that the model lists each tag for `prompt` (the
        tag-list prompt; see `tags.score_taxonomy_listing`)."""
        video = self.encode_frames(clips)
        return score_taxonomy_listing(self, video, taxonomy, prompt, max_new_tokens).scores
