"""Tags two ways: parse a generated tag list, or score a fixed taxonomy by likelihood.

Taxonomy scoring asks, per tag, a yes/no question about the video and reads the probability of
"yes" against "no" at the answer position. The prompt part before the video and the video's
tokens are shared by every tag, so they run once per clip and their KV cache is reused for all
tags: only the few question tokens per tag are new work, and the vision tower never re-runs.
"""

from __future__ import annotations

import copy
import re
from typing import TYPE_CHECKING

import numpy as np
import torch

from .batching import cache_kwarg_name, cache_of
from .configuration import IMAGE_TOKEN_INDEX
from .processing import build_prompt, tokenize_with_video

if TYPE_CHECKING:
    from .modeling import TinyLlavaVideo

_SPLIT = re.compile(r"[,;\n]+")
_PREFIX = re.compile(r"^\s*(tags?|keywords?)\s*:\s*", re.IGNORECASE)
_EDGE = re.compile(r"^[\s\-*•\d.)\"'`#]+|[\s.\"'`!?]+$")
_SPACES = re.compile(r"\s+")
YES_WORDS = (" yes", " Yes", "yes", "Yes")
NO_WORDS = (" no", " No", "no", "No")
ROWS_PER_PASS = 64


def parse_tags(text: str) -> list[str]:
    """`"Tags: Red, circle;  moving LEFT."` -> `["red", "circle", "moving left"]`.

    Lowercase, trimmed of bullets, numbering, quotes and end punctuation, whitespace collapsed,
    duplicates dropped (first occurrence kept).
    """
    seen: dict[str, None] = {}
    for part in _SPLIT.split(_PREFIX.sub("", text or "")):
        tag = _SPACES.sub(" ", _EDGE.sub("", part)).strip().lower()
        if tag:
            seen.setdefault(tag, None)
    return list(seen)


def answer_token_ids(tokenizer, words: tuple[str, ...]) -> list[int]:
    """First-token ids of the answer spellings that the tokenizer encodes as one token."""
    ids = set()
    for word in words:
        encoded = tokenizer(word, add_special_tokens=False).input_ids
        if len(encoded) == 1:
            ids.add(encoded[0])
    return sorted(ids)


def _question_rows(
    question: str, taxonomy: list[str], tokenizer
) -> tuple[list[int], list[list[int]]]:
    """Shared ids before the video, and each tag's ids after it."""
    if "{tag}" not in question:
        raise ValueError("the taxonomy question must contain '{tag}'")
    prefix: list[int] | None = None
    suffixes = []
    for tag in taxonomy:
        ids = tokenize_with_video(build_prompt(question.format(tag=tag)), tokenizer)
        at = ids.index(IMAGE_TOKEN_INDEX)
        prefix = ids[: at + 1] if prefix is None else prefix
        suffixes.append(ids[at + 1 :])
    return prefix, suffixes


def _decoder_hidden(model: TinyLlavaVideo, embeds, mask, positions, cache) -> torch.Tensor:
    """Last hidden states of the decoder (no vocabulary projection) on top of `cache`."""
    decoder = model.language_model.model
    out = decoder(
        inputs_embeds=embeds,
        attention_mask=mask,
        position_ids=positions,
        use_cache=True,
        **{cache_kwarg_name(decoder): cache},
    )
    return out.last_hidden_state


@torch.inference_mode()
def score_taxonomy(
    model: TinyLlavaVideo, video_embeds: torch.Tensor, taxonomy: list[str], question: str
) -> np.ndarray:
    """`[B, len(taxonomy)]` float32: P(yes) / (P(yes) + P(no)) for each clip and tag."""
    if not taxonomy:
        return np.zeros((video_embeds.shape[0], 0), dtype=np.float32)
    tok = model.tokenizer
    yes, no = answer_token_ids(tok, YES_WORDS), answer_token_ids(tok, NO_WORDS)
    if not yes or not no:
        raise ValueError("the tokenizer cannot spell 'yes'/'no' as single tokens")
    prefix, suffixes = _question_rows(question, taxonomy, tok)
    n_clips = video_embeds.shape[0]
    prefix_batch = model.embed_prompts([prefix] * n_clips, video_embeds)
    prefix_cache = cache_of(model.run_language_model(prefix_batch, logits_to_keep=1))
    prefix_len = prefix_batch.embeds.shape[1]
    head = model.language_model.get_output_embeddings().weight
    pairs = [(c, t) for c in range(n_clips) for t in range(len(taxonomy))]
    scores = np.zeros((n_clips, len(taxonomy)), dtype=np.float32)
    for start in range(0, len(pairs), ROWS_PER_PASS):
        chunk = pairs[start : start + ROWS_PER_PASS]
        cache = copy.deepcopy(prefix_cache)
        cache.batch_select_indices(torch.tensor([c for c, _ in chunk], device=model.device))
        hidden = _suffix_hidden(model, [suffixes[t] for _, t in chunk], prefix_len, cache)
        logits = hidden.float() @ head[yes + no].float().T  # [R, |yes|+|no|]
        score = torch.sigmoid(
            logits[:, : len(yes)].logsumexp(-1) - logits[:, len(yes) :].logsumexp(-1)
        )
        for (c, t), value in zip(chunk, score.tolist(), strict=True):
            scores[c, t] = value
    return scores


def _suffix_hidden(
    model: TinyLlavaVideo, suffixes: list[list[int]], prefix_len: int, cache
) -> torch.Tensor:
    """Hidden state at each suffix's last token `[R, D]`, suffixes right-padded after the cache."""
    rows, longest = len(suffixes), max(len(s) for s in suffixes)
    ids = torch.zeros(rows, longest, dtype=torch.long, device=model.device)
    mask = torch.zeros(rows, prefix_len + longest, dtype=torch.long, device=model.device)
    mask[:, :prefix_len] = 1
    for i, suffix in enumerate(suffixes):
        ids[i, : len(suffix)] = torch.tensor(suffix, device=model.device)
        mask[i, prefix_len : prefix_len + len(suffix)] = 1
    positions = prefix_len + torch.arange(longest, device=model.device).expand(rows, -1)
    embeds = model.language_model.get_input_embeddings()(ids)
    hidden = _decoder_hidden(model, embeds, mask, positions, cache)  # [R, S, D]
    last = torch.tensor([len(s) - 1 for s in suffixes], device=model.device)
    return hidden[torch.arange(rows, device=model.device), last]
