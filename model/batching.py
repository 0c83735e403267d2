"""Padded embedding batches and the KV-cache plumbing shared by forward, generation, tagging,
and `VideoLM`: what generation and tagging use of the model, so that they never import it.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from functools import cache
from typing import Any, Protocol

import torch
from torch import nn


@dataclass(frozen=True)
class PromptBatch:
    """Embeddings of a batch of prompts with their videos spliced in, padded to one length."""

    embeds: torch.Tensor  # [B, L, D]
    attention_mask: torch.Tensor  # [B, L] long, 1 = real token
    position_ids: torch.Tensor  # [B, L] positions counted over real tokens only
    padded: bool = True
    """Whether any row is padded, known on the host. When none is (every clip asked the same
    question: the annotate path), the language model gets no mask at all: given one,
    transformers reads it back on every pass to see whether it may skip it, a wait for the
    device per generated token."""


class VideoLM(Protocol):
    """A language model that reads prompts with a video's tokens spliced in (`TinyLlavaVideo`).

    `generation` and `tags` are written against this, not against the model class, so the
    model can use them without an import circle.
    """

    tokenizer: Any
    language_model: Any  # a transformers causal LM (`Qwen2ForCausalLM`)

    @property
    def device(self) -> torch.device: ...

    def embed_prompts(
        self,
        prompts: list[list[int]] | list[torch.Tensor],
        video_embeds: torch.Tensor | None,
        padding_side: str = "left",
    ) -> PromptBatch: ...

    def run_language_model(
        self, batch: PromptBatch, cache: Any = None, logits_to_keep: int = 0
    ) -> Any: ...


def pad_rows(rows: list[torch.Tensor], side: str) -> PromptBatch:
    """Pad embedding rows `[L_i, D]` to `[B, L, D]` with zeros on `side`."""
    longest = max(row.shape[0] for row in rows)
    dim, dtype, device = rows[0].shape[1], rows[0].dtype, rows[0].device
    embeds = torch.zeros(len(rows), longest, dim, dtype=dtype, device=device)
    mask = torch.zeros(len(rows), longest, dtype=torch.long, device=device)
    for i, row in enumerate(rows):
        span = slice(longest - row.shape[0], longest) if side == "left" else slice(0, row.shape[0])
        embeds[i, span] = row
        mask[i, span] = 1
    positions = (mask.cumsum(dim=1) - 1).clamp_(min=0)
    padded = any(row.shape[0] != longest for row in rows)
    return PromptBatch(embeds=embeds, attention_mask=mask, position_ids=positions, padded=padded)


def cache_kwarg_name(module: nn.Module) -> str:
    """transformers renamed `past_key_values` to `cache`; use whichever this version takes."""
    return _cache_kwarg_for(type(module))


@cache
def _cache_kwarg_for(cls: type) -> str:
    # Looked up once per class: `inspect.signature` is too slow for every decoding pass.
    params = inspect.signature(cls.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def cache_of(output: Any) -> Any:
    """The KV cache a language-model output carries, under either name."""
    cache = getattr(output, "cache", None)
    return cache if cache is not None else output.past_key_values


def crop_cache(cache: Any, length: int) -> None:
    """Cut a KV cache back to its first `length` positions. A negative `crop` removes that
    many positions in every transformers version (5.x refuses the older absolute form)."""
    extra = cache.get_seq_length() - length
    if extra > 0:
        cache.crop(-extra)
