"""Batched text generation from visual tokens: left padding, a KV cache, per-row stopping.

Each row's positions count only its own real tokens and padding is masked out, so what a clip
gets does not depend on which other clips share its batch. Generation starts from already
encoded visual tokens, so a caption and a tag prompt can share one pass of the vision tower.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .batching import PromptBatch, VideoLM, cache_of
from .processing import STOP_TEXT, build_prompt, tokenize_with_video


@dataclass(frozen=True)
class GenerationSettings:
    """How to pick tokens. `temperature == 0` is greedy decoding (the default)."""

    max_new_tokens: int = 64
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError("max_new_tokens must be >= 1")
        if self.temperature < 0:
            raise ValueError("temperature must be >= 0")
        if not 0 < self.top_p <= 1:
            raise ValueError("top_p must be in (0, 1]")


def stop_token_ids(tokenizer) -> list[int]:
    """Ids that end an answer: `<|endoftext|>` (the template's stop) and the tokenizer's eos."""
    ids = {tokenizer.convert_tokens_to_ids(STOP_TEXT)}
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return sorted(i for i in ids if i is not None and i >= 0)


def _pick(logits: torch.Tensor, settings: GenerationSettings, gen: torch.Generator | None):
    """Next token per row from last-position logits `[B, V]`."""
    if settings.temperature == 0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits.float() / settings.temperature, dim=-1)
    if settings.top_p < 1:
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        drop = sorted_probs.cumsum(dim=-1) - sorted_probs > settings.top_p
        sorted_probs = sorted_probs.masked_fill(drop, 0.0)
        probs = torch.zeros_like(probs).scatter_(-1, order, sorted_probs)
    return torch.multinomial(probs, 1, generator=gen).squeeze(-1)


def _step_batch(model: VideoLM, batch: PromptBatch, tokens: torch.Tensor) -> PromptBatch:
    """The one-token input after `batch`: the token's embedding, grown mask, next position."""
    mask = torch.cat([batch.attention_mask, torch.ones_like(tokens)[:, None]], dim=1)
    embeds = model.language_model.get_input_embeddings()(tokens[:, None])  # [B, 1, D]
    positions = batch.position_ids[:, -1:] + 1  # [B, 1]
    return PromptBatch(embeds=embeds, attention_mask=mask, position_ids=positions)


@torch.inference_mode()
def generate_ids(
    model: VideoLM,
    video_embeds: torch.Tensor,
    prompt_ids: list[list[int]],
    settings: GenerationSettings,
) -> list[list[int]]:
    """Generate continuations for prompts (one `-200` each); stop tokens are not returned."""
    stops = torch.tensor(stop_token_ids(model.tokenizer), device=model.device)
    gen = None
    if settings.seed is not None:
        gen = torch.Generator(device=model.device).manual_seed(settings.seed)
    batch = model.embed_prompts(prompt_ids, video_embeds, padding_side="left")
    out = model.run_language_model(batch, logits_to_keep=1)
    cache = cache_of(out)
    done = torch.zeros(len(prompt_ids), dtype=torch.bool, device=model.device)
    produced: list[torch.Tensor] = []
    for _ in range(settings.max_new_tokens):
        tokens = _pick(out.logits[:, -1], settings, gen)
        done |= torch.isin(tokens, stops)
        tokens = tokens.masked_fill(done, int(stops[0]))
        produced.append(tokens)
        if bool(done.all()):
            break
        # Finished rows keep stepping with the others; what they produce is dropped below.
        batch = _step_batch(model, batch, tokens)
        out = model.run_language_model(batch, cache=cache, logits_to_keep=1)
    table = torch.stack(produced, dim=1).tolist() if produced else [[] for _ in prompt_ids]
    stop_set = set(stops.tolist())
    return [_until_stop(row, stop_set) for row in table]


def _until_stop(row: list[int], stops: set[int]) -> list[int]:
    for i, token in enumerate(row):
        if token in stops:
            return row[:i]
    return row


@dataclass(frozen=True)
class Answer:
    """One video's answer to a question: the text, stripped, and the tokens generated for it."""

    text: str
    num_tokens: int


def answer_question(
    model: VideoLM, video_embeds: torch.Tensor, question: str, settings: GenerationSettings
) -> list[Answer]:
    """Answer one question for every video in `video_embeds` `[B, Q, D]`."""
    prompt = tokenize_with_video(build_prompt(question), model.tokenizer)
    rows = [prompt] * video_embeds.shape[0]
    ids = generate_ids(model, video_embeds, rows, settings)
    texts = model.tokenizer.batch_decode(ids, skip_special_tokens=True)
    return [Answer(text.strip(), len(row)) for text, row in zip(texts, ids, strict=True)]
