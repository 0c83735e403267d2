"""Batched text generation from visual tokens: left padding, a KV cache, per-row stopping.

Each row's positions count only its own real tokens and padding is masked out, so what a clip
gets does not depend on which other clips share its batch. Generation starts from already
encoded visual tokens, so a caption and a tag prompt can share one pass of the vision tower.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from .batching import PromptBatch, VideoLM, cache_of, crop_cache
from .configuration import IMAGE_TOKEN_INDEX
from .processing import STOP_TEXT, build_prompt, tokenize_with_video
from .static_decoding import StaticDecoder, decoder_for, slots_for, supports


@dataclass(frozen=True)
class GenerationSettings:
    """How to pick tokens. `temperature == 0` is greedy decoding (the default)."""

    max_new_tokens: int = 64
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int | None = None
    stop_ids: tuple[int, ...] | None = None
    """Ids that end an answer; None: the tokenizer's (`stop_token_ids`). Benchmarks pass an id
    outside the vocabulary, which the model can never pick, for answers of fixed length."""
    stop_check_every: int = 8
    """Steps between checks whether every row has stopped: each check waits for the device,
    so checking every step would stall a GPU once per token. Rows that stopped keep stepping
    until the next check; what they produce is dropped, so answers do not depend on this."""
    static_steps: bool = True
    """Step on a fixed-shape KV cache (`static_decoding`; a CUDA graph on a GPU) where the
    model has the layout it implements. False: transformers' own pass, the baseline the
    benchmarks compare against."""
    compile_steps: bool = False
    """Compile the fixed-shape step with torch.compile before it is captured (fusing each
    layer's norms, rotary and residual adds). Off by default: a compile per batch shape
    costs tens of seconds at an actor's start, and needs a working compiler on the node."""

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1:
            raise ValueError("max_new_tokens must be >= 1")
        if self.stop_check_every < 1:
            raise ValueError("stop_check_every must be >= 1")
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
    return PromptBatch(embeds, mask, positions, padded=batch.padded)


@dataclass
class SharedPrefix:
    """The prompt tokens several questions share (system prompt, video), prefilled once per
    batch: each question then prefills only its own tokens on this KV cache.

    About 560 of a question's ~570 prompt positions are shared at full size, so a caption and a
    tag list cost one long prefill instead of two. The cache is cut back to the prefix before
    each use (`crop`), so questions asked one after another never see each other's tokens.
    """

    ids: list[int]
    batch: PromptBatch
    cache: Any


@torch.inference_mode()
def share_prefix(
    model: VideoLM, video_embeds: torch.Tensor, prompts: list[list[int]]
) -> SharedPrefix | None:
    """Prefill the longest token prefix every prompt in `prompts` shares, if it holds the video
    and leaves each prompt a token of its own; None where sharing does not apply (a prompt that
    the checkpoint's length limit cuts, or no common video prefix)."""
    common = _common_prefix(prompts)
    if IMAGE_TOKEN_INDEX not in common or any(len(p) == len(common) for p in prompts):
        return None
    limit = getattr(getattr(model, "config", None), "tokenizer_model_max_length", None)
    longest = max(len(p) for p in prompts) - 1 + video_embeds.shape[1]
    if limit and longest > limit:
        return None
    batch = model.embed_prompts([common] * video_embeds.shape[0], video_embeds)
    cache = cache_of(model.run_language_model(batch, logits_to_keep=1))
    return SharedPrefix(common, batch, cache)


def _common_prefix(prompts: list[list[int]]) -> list[int]:
    size = min(len(p) for p in prompts)
    for i in range(size):
        if any(p[i] != prompts[0][i] for p in prompts):
            return list(prompts[0][:i])
    return list(prompts[0][:size])


def _prefill_after(model: VideoLM, prefix: SharedPrefix, prompt: list[int]) -> tuple[Any, Any]:
    """Prefill `prompt`'s own tokens after the shared `prefix`: (last output, batch so far)."""
    if prompt[: len(prefix.ids)] != prefix.ids:
        raise ValueError("prompt does not start with the shared prefix")
    crop_cache(prefix.cache, prefix.batch.embeds.shape[1])
    rows = prefix.batch.embeds.shape[0]
    own = torch.tensor(prompt[len(prefix.ids) :], dtype=torch.long, device=model.device)
    embeds = model.language_model.get_input_embeddings()(own).expand(rows, -1, -1)  # [B, S, D]
    mask = torch.cat([prefix.batch.attention_mask, torch.ones_like(embeds[..., 0]).long()], 1)
    steps = torch.arange(1, own.shape[0] + 1, device=model.device)  # [S]
    positions = prefix.batch.position_ids[:, -1:] + steps  # [B, S]
    batch = PromptBatch(embeds, mask, positions, padded=prefix.batch.padded)
    out = model.run_language_model(batch, cache=prefix.cache, logits_to_keep=1)
    return out, batch


@torch.inference_mode()
def generate_ids(
    model: VideoLM,
    video_embeds: torch.Tensor,
    prompt_ids: list[list[int]],
    settings: GenerationSettings,
    prefix: SharedPrefix | None = None,
) -> list[list[int]]:
    """Generate continuations for prompts (one `-200` each); stop tokens are not returned.

    One prefill and `max_new_tokens - 1` steps: the last token's logits are never computed.
    The host waits for the device only every `settings.stop_check_every` steps (stop ids are
    Python ints, a finished row is masked on the device) and once at the end. Steps run on a
    fixed-shape KV cache (`static_decoding`; a CUDA graph on a GPU) where the model allows.
    """
    # Python ints: no device read to use them
    stop_ids = list(settings.stop_ids or stop_token_ids(model.tokenizer))
    stops = torch.tensor(stop_ids, device=model.device)
    gen = None
    if settings.seed is not None:
        gen = torch.Generator(device=model.device).manual_seed(settings.seed)
    if prefix is not None and all(row == prompt_ids[0] for row in prompt_ids):
        out, batch = _prefill_after(model, prefix, prompt_ids[0])
        cache = prefix.cache
    else:
        batch = model.embed_prompts(prompt_ids, video_embeds, padding_side="left")
        out = model.run_language_model(batch, logits_to_keep=1)
        cache = cache_of(out)
    decoder = _static_decoder(model, batch, cache, settings) if settings.static_steps else None
    logits = out.logits[:, -1]
    done = torch.zeros(len(prompt_ids), dtype=torch.bool, device=model.device)
    produced: list[torch.Tensor] = []
    for step in range(1, settings.max_new_tokens + 1):
        tokens = _pick(logits, settings, gen)
        done |= torch.isin(tokens, stops)
        tokens = tokens.masked_fill(done, stop_ids[0])
        produced.append(tokens)
        if step == settings.max_new_tokens:
            break  # the last token is chosen: a further pass would only compute unread logits
        if step % settings.stop_check_every == 0 and bool(done.all()):
            break
        # Finished rows keep stepping with the others; what they produce is dropped below.
        if decoder is not None:
            logits = decoder.step(tokens)
            continue
        batch = _step_batch(model, batch, tokens)
        out = model.run_language_model(batch, cache=cache, logits_to_keep=1)
        logits = out.logits[:, -1]
    table = torch.stack(produced, dim=1).tolist() if produced else [[] for _ in prompt_ids]
    stop_set = set(stop_ids)
    return [_until_stop(row, stop_set) for row in table]


def _static_decoder(
    model: VideoLM, batch: PromptBatch, cache: Any, settings: GenerationSettings
) -> StaticDecoder | None:
    """The fixed-shape decoder (`static_decoding`) loaded with the prefilled `cache`, where the
    language model has the layout it implements; None: step with transformers' own pass."""
    if settings.max_new_tokens < 2 or not supports(model.language_model):
        return None
    length = cache.get_seq_length()
    slots = slots_for(length, settings.max_new_tokens)
    decoder = decoder_for(model, batch.embeds.shape[0], slots, settings.compile_steps)
    mask = batch.attention_mask if batch.padded else None
    decoder.start(cache, batch.position_ids[:, -1], mask)
    return decoder


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


def question_ids(model: VideoLM, question: str) -> list[int]:
    """The prompt token ids of `question` (one `-200` where the video goes)."""
    return tokenize_with_video(build_prompt(question), model.tokenizer)


def answer_question(
    model: VideoLM,
    video_embeds: torch.Tensor,
    question: str,
    settings: GenerationSettings,
    prefix: SharedPrefix | None = None,
) -> list[Answer]:
    """Answer one question for every video in `video_embeds` `[B, Q, D]`; `prefix`: a shared
    prefill of its first tokens (`share_prefix`), used when the prompt starts with it."""
    prompt = question_ids(model, question)
    rows = [prompt] * video_embeds.shape[0]
    ids = generate_ids(model, video_embeds, rows, settings, prefix)
    texts = model.tokenizer.batch_decode(ids, skip_special_tokens=True)
    return [Answer(text.strip(), len(row)) for text, row in zip(texts, ids, strict=True)]
