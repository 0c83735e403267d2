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
YES_WORDS = (" yes", " Yes")
NO_WORDS = (" no", " No")
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


def answer_variants(tokenizer) -> list[tuple[bool, list[int]]]:
    """(is_yes, token ids) of each spelling of the answer as it follows `ASSISTANT:`."""
    return [
        (is_yes, tokenizer(word, add_special_tokens=False).input_ids)
        for is_yes, words in ((True, YES_WORDS), (False, NO_WORDS))
        for word in words
    ]


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
    """`[B, len(taxonomy)]` float32: P(yes) / (P(yes) + P(no)) for each clip and tag.

    P(yes) sums the likelihood of the answer's spellings (" yes", " Yes"), each scored over
    all its tokens, so the result does not depend on how the vocabulary splits the words.
    """
    n_clips = video_embeds.shape[0]
    if not taxonomy:
        return np.zeros((n_clips, 0), dtype=np.float32)
    answers = answer_variants(model.tokenizer)
    prefix, suffixes = _question_rows(question, taxonomy, model.tokenizer)
    prefix_batch = model.embed_prompts([prefix] * n_clips, video_embeds)
    prefix_cache = cache_of(model.run_language_model(prefix_batch, logits_to_keep=1))
    pairs = [(c, t) for c in range(n_clips) for t in range(len(taxonomy))]
    per_pass = max(1, ROWS_PER_PASS // len(answers))
    log_yes = np.full((n_clips, len(taxonomy)), -np.inf)
    log_no = np.full_like(log_yes, -np.inf)
    for start in range(0, len(pairs), per_pass):
        chunk = pairs[start : start + per_pass]
        rows = [(c, t, is_yes, ids) for c, t in chunk for is_yes, ids in answers]
        cache = copy.deepcopy(prefix_cache)
        cache.batch_select_indices(torch.tensor([r[0] for r in rows], device=model.device))
        logps = _answer_logprobs(model, [(suffixes[r[1]], r[3]) for r in rows], prefix_batch, cache)
        for (c, t, is_yes, _), logp in zip(rows, logps, strict=True):
            target = log_yes if is_yes else log_no
            target[c, t] = np.logaddexp(target[c, t], logp)
    return (1.0 / (1.0 + np.exp(log_no - log_yes))).astype(np.float32)


def _answer_logprobs(
    model: TinyLlavaVideo, rows: list[tuple[list[int], list[int]]], prefix, cache
) -> list[float]:
    """log P(answer | prefix + question) per row; rows are right-padded after the cache."""
    device, prefix_len = model.device, prefix.embeds.shape[1]
    texts = [question + answer for question, answer in rows]
    longest = max(len(t) for t in texts)
    ids = torch.zeros(len(rows), longest, dtype=torch.long, device=device)
    mask = torch.zeros(len(rows), prefix_len + longest, dtype=torch.long, device=device)
    mask[:, :prefix_len] = 1
    for i, text in enumerate(texts):
        ids[i, : len(text)] = torch.tensor(text, device=device)
        mask[i, prefix_len : prefix_len + len(text)] = 1
    positions = prefix.position_ids[:1, -1:] + 1 + torch.arange(longest, device=device)
    embeds = model.language_model.get_input_embeddings()(ids)
    hidden = _decoder_hidden(model, embeds, mask, positions.expand(len(rows), -1), cache)
    head = model.language_model.get_output_embeddings()
    out = []
    for i, (question, answer) in enumerate(rows):
        at = torch.arange(len(question) - 1, len(question) - 1 + len(answer), device=device)
        logits = head(hidden[i, at]).float()  # [A, V]
        picked = logits.log_softmax(-1)[torch.arange(len(answer)), torch.tensor(answer)]
        out.append(float(picked.sum()))
    return out
