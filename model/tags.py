"""Tags: a generated tag list parsed, or a fixed taxonomy scored by likelihood.

The published model only answers prompts; tags are clipnote's reading of its answers, asked of
visual tokens computed once (`TinyLlavaVideo.generate_tags`, `.score_tags`). A tag list is the
answer to a tag prompt, parsed (`parse_tags`). A fixed taxonomy has two scorers, both reusing
the clip's visual tokens and one shared KV cache:

- `score_taxonomy_listing` (the default): under the tag-list prompt, how likely the model is to
  write exactly this tag as the next item of its own tag list, at the best place in that list.
  The model's next-item distribution is normalised over everything it could write there (every
  other tag, any word, ending the list), so the score is a probability a user can threshold,
  and it asks the model the task it was trained for (listing tags), which published
  checkpoints also do, rather than a yes/no question about a named tag that a small LM may
  answer from the prior alone (model/toy/TRAINING.md).
- `score_taxonomy` (yes/no): per tag, a yes/no question about the video, reading the
  probability of "yes" against "no" at the answer position.
"""

from __future__ import annotations

import contextlib
import copy
import re
import weakref
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import torch

from .batching import PromptBatch, VideoLM, cache_kwarg_name, cache_of
from .configuration import IMAGE_TOKEN_INDEX
from .generation import (
    GenerationSettings,
    SharedPrefix,
    answer_question,
    generate_ids,
    stop_token_ids,
)
from .processing import build_prompt, tokenize_with_video

TaxonomyMethod = Literal["listing", "yes_no"]
TAXONOMY_METHODS: tuple[str, ...] = get_args(TaxonomyMethod)
TAG_MAX_NEW_TOKENS = 32
"""Default length of a generated tag list (the tag answer is short)."""

_SPLIT = re.compile(r"[,;\n]+")
_SEPARATORS = re.compile(r"([,;\n]+)")
_PREFIX = re.compile(r"^\s*(tags?|keywords?)\s*:\s*", re.IGNORECASE)
# Leading bullets, quotes and list numbering ("1." / "2)" followed by a space); a tag's own
# digits stay ("3d", "4k video").
_EDGE = re.compile(r"^(?:[\s\-*•.)\"'`#]|\d+[.)](?=\s|$))+|[\s.\"'`!?]+$")
_LEAD = re.compile(r"^[\s\-*•]*")
_TAIL = re.compile(r"[\s.!?]+$")
_SPACES = re.compile(r"\s+")
YES_WORDS = (" yes", " Yes")
NO_WORDS = (" no", " No")
ITEM_END_CHARS = ",;\n."
"""A list item ends where the model writes one of these (or stops): what `parse_tags` splits on."""
ROWS_PER_PASS = 64


def parse_tags(text: str) -> list[str]:
    """`"Tags: Red, circle;  moving LEFT."` -> `["red", "circle", "moving left"]`.

    Lowercase, trimmed of bullets, numbering, quotes and end punctuation, whitespace collapsed,
    duplicates dropped (first occurrence kept).
    """
    seen: dict[str, None] = {}
    for part in _SPLIT.split(_PREFIX.sub("", text or "")):
        tag = _normalise(part)
        if tag:
            seen.setdefault(tag, None)
    return list(seen)


def _normalise(item: str) -> str:
    return _SPACES.sub(" ", _EDGE.sub("", item)).strip().lower()


@dataclass(frozen=True)
class TagList:
    """One video's generated tag list: parsed (`parse_tags`), as written, and its length."""

    tags: list[str]
    text: str
    num_tokens: int


def list_tags(
    model: VideoLM,
    video_embeds: torch.Tensor,
    prompt: str,
    settings: GenerationSettings,
    prefix: SharedPrefix | None = None,
) -> list[TagList]:
    """Ask `prompt` (a tag-list prompt) of every video in `video_embeds` `[B, Q, D]`; parse."""
    answers = answer_question(model, video_embeds, prompt, settings, prefix)
    return [TagList(parse_tags(a.text), a.text, a.num_tokens) for a in answers]


# --- yes/no questions -------------------------------------------------------------------------


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


@torch.inference_mode()
def score_taxonomy(
    model: VideoLM, video_embeds: torch.Tensor, taxonomy: list[str], question: str
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
    prefix_batch, prefix_cache = _prefix_pass(model, prefix, video_embeds)
    rows = [
        _Row(c, suffixes[t], ids)
        for c in range(n_clips)
        for t in range(len(taxonomy))
        for _, ids in answers
    ]
    logps, _ = _continuations(model, prefix_batch, prefix_cache, rows, end_ids=None)
    is_yes = np.array([y for _ in range(n_clips * len(taxonomy)) for y, _ in answers])
    logps = logps.reshape(n_clips, len(taxonomy), len(answers))
    log_yes = np.logaddexp.reduce(np.where(is_yes.reshape(logps.shape), logps, -np.inf), axis=-1)
    log_no = np.logaddexp.reduce(np.where(~is_yes.reshape(logps.shape), logps, -np.inf), axis=-1)
    return (1.0 / (1.0 + np.exp(log_no - log_yes))).astype(np.float32)


# --- likelihood of listing the tag -------------------------------------------------------------


@dataclass(frozen=True)
class TagScores:
    """Taxonomy scores, with the tag lists they were read against (`listing` method only)."""

    scores: np.ndarray  # float32 [B, len(taxonomy)]
    num_tokens: list[int]  # tokens generated per clip for its tag list (0: yes/no questions)
    listings: list[str] | None = None  # each clip's greedy tag list, as generated


def split_listing(text: str) -> list[tuple[str, str]]:
    """A generated list -> `(item, separator)` pairs, as written.

    `" red, circle, moving left"` -> `[(" red", ","), (" circle", ","), (" moving left", "")]`;
    empty items fold into the separator before them, so the pairs joined give `text` back
    (less any separator before the first item, which joins that item's text).
    """
    parts = _SEPARATORS.split(text)
    items: list[tuple[str, str]] = []
    pending = ""
    for i in range(0, len(parts), 2):
        item, sep = parts[i], parts[i + 1] if i + 1 < len(parts) else ""
        if _normalise(item):
            items.append((pending + item, sep))
            pending = ""
        elif items:
            items[-1] = (items[-1][0], items[-1][1] + item + sep)
        else:
            pending += item + sep
    return items


def listing_contexts(items: list[tuple[str, str]], tag: str) -> list[tuple[str, str]]:
    """`(context, lead)` pairs: each place where `tag` could be the model's next list item.

    The places are before each item of the model's list and after its end, with `tag` itself
    taken out of the list if the model wrote it: a model that lists tags in any order puts a
    true tag somewhere, and once the others are written it is the one left to write. `lead` is
    what the model writes before an item there (the space after `ASSISTANT:` and after a comma,
    a bullet).
    """
    wanted = _normalise(tag)
    kept = [(item, sep) for item, sep in items if _normalise(item) != wanted]
    leads = [_LEAD.match(item).group() for item, _ in items] or [" "]
    usual_sep = next((sep for _, sep in reversed(items) if sep), ",")
    out, context = [], ""
    for s in range(len(kept) + 1):
        out.append((context, leads[min(s, len(leads) - 1)]))
        if s < len(kept):
            item, sep = kept[s]
            context += _TAIL.sub("", item) + (sep or usual_sep)
    return out


def tag_spellings(tag: str) -> list[str]:
    """The tag as a list would write it: as given, lowercase, and capitalised."""
    tag = tag.strip()
    return list(dict.fromkeys([tag, tag.lower(), tag[:1].upper() + tag[1:]]))


_END_IDS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_END_CHAR_SET = set(ITEM_END_CHARS)


def item_end_ids(tokenizer) -> list[int]:
    """Ids of every token that ends a list item: stop tokens, and tokens whose text starts
    (after spaces) with a separator or a full stop. Computed once per tokenizer."""
    try:
        return _END_IDS[tokenizer]
    except (KeyError, TypeError):
        pass
    vocab = max(len(tokenizer), max(tokenizer.get_vocab().values()) + 1)
    texts = tokenizer.batch_decode([[i] for i in range(vocab)])
    ends = {i for i, text in enumerate(texts) if text.lstrip(" ")[:1] in _END_CHAR_SET}
    ids = sorted(ends | set(stop_token_ids(tokenizer)))
    with contextlib.suppress(TypeError):  # a tokenizer that cannot be weakly referenced
        _END_IDS[tokenizer] = ids
    return ids


@torch.inference_mode()
def score_taxonomy_listing(
    model: VideoLM,
    video_embeds: torch.Tensor,
    taxonomy: list[str],
    prompt: str,
    max_new_tokens: int = TAG_MAX_NEW_TOKENS,
) -> TagScores:
    """`[B, len(taxonomy)]` float32: the probability that the model writes each tag, whole, as
    the next item of its own tag list, at the most likely place in that list.

    The model first writes its tag list for `prompt` (greedy). Then for each tag and each place
    of `listing_contexts`, P(tag | prompt, video, list so far) sums the tag's spellings, each
    scored over all its tokens and then the end of the item (a separator or the stop), so that
    "red" does not count "red car". The score is the best place's probability. All rows share
    one KV cache of the prompt and the video.
    """
    tokenizer = model.tokenizer
    prompt_ids = tokenize_with_video(build_prompt(prompt), tokenizer)
    n_clips = video_embeds.shape[0]
    generated = generate_ids(
        model, video_embeds, [prompt_ids] * n_clips, GenerationSettings(max_new_tokens)
    )
    listings = tokenizer.batch_decode(generated, skip_special_tokens=True)
    num_tokens = [len(ids) for ids in generated]
    scores = np.zeros((n_clips, len(taxonomy)), dtype=np.float32)
    if not taxonomy or not n_clips:
        return TagScores(scores, num_tokens, listings)

    encode = _memo(lambda text: tokenizer(text, add_special_tokens=False).input_ids)
    # The prompt's last token stays out of the shared prefix so that every row has a context
    # token whose output predicts the row's first answer token.
    last = prompt_ids[-1:]
    rows, where = [], []
    for c, listing in enumerate(listings):
        items = split_listing(listing)
        for t, tag in enumerate(taxonomy):
            for p, (context, lead) in enumerate(listing_contexts(items, tag)):
                for spelling in tag_spellings(tag):
                    rows.append(_Row(c, last + encode(context), encode(lead + spelling)))
                    where.append((c, t, p))
    prefix_batch, prefix_cache = _prefix_pass(model, prompt_ids[:-1], video_embeds)
    logp, log_end = _continuations(
        model, prefix_batch, prefix_cache, rows, end_ids=item_end_ids(tokenizer)
    )
    per_place: dict[tuple[int, int, int], float] = {}
    for key, value in zip(where, np.exp(logp + log_end), strict=True):
        per_place[key] = per_place.get(key, 0.0) + float(value)
    for (c, t, _), prob in per_place.items():
        scores[c, t] = max(scores[c, t], min(prob, 1.0))
    return TagScores(scores, num_tokens, listings)


# --- shared: continuations on top of one cached prefix ------------------------------------------


@dataclass(frozen=True)
class _Row:
    clip: int  # which clip's cached prefix the row continues
    context: list[int]  # ids after the cached prefix, before the scored part
    answer: list[int]  # ids whose likelihood is read


def _memo(fn):
    seen: dict = {}
    return lambda key: seen[key] if key in seen else seen.setdefault(key, fn(key))


def _prefix_pass(model: VideoLM, prefix: list[int], video_embeds: torch.Tensor):
    """The prompt up to where rows differ, with each clip's video: embeddings and KV cache."""
    prefix_batch = model.embed_prompts([prefix] * video_embeds.shape[0], video_embeds)
    return prefix_batch, cache_of(model.run_language_model(prefix_batch, logits_to_keep=1))


def _continuations(
    model: VideoLM,
    prefix: PromptBatch,
    prefix_cache,
    rows: list[_Row],
    end_ids: list[int] | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Per row: log P(answer | prefix + context), and log P(next token in `end_ids` | ... +
    answer) (zeros when `end_ids` is None). Rows run `ROWS_PER_PASS` at a time, each pass on a
    copy of the prefix cache holding the rows' clips."""
    logp = np.zeros(len(rows))
    log_end = np.zeros(len(rows))
    ends = None if end_ids is None else torch.tensor(end_ids, device=model.device)
    for start in range(0, len(rows), ROWS_PER_PASS):
        chunk = rows[start : start + ROWS_PER_PASS]
        cache = copy.deepcopy(prefix_cache)
        cache.batch_select_indices(torch.tensor([r.clip for r in chunk], device=model.device))
        a, e = _chunk_logprobs(model, chunk, prefix, cache, ends)
        logp[start : start + len(chunk)] = a
        log_end[start : start + len(chunk)] = e
    return logp, log_end


def _decoder_hidden(model: VideoLM, embeds, mask, positions, cache) -> torch.Tensor:
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


def _chunk_logprobs(
    model: VideoLM, rows: list[_Row], prefix: PromptBatch, cache, ends
) -> tuple[list[float], list[float]]:
    """One pass: rows right-padded after the cache; logits only where they are read."""
    device, prefix_len = model.device, prefix.embeds.shape[1]
    texts = [row.context + row.answer for row in rows]
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
    out_answer, out_end = [], []
    for i, row in enumerate(rows):
        n_ctx, n_ans = len(row.context), len(row.answer)
        at = torch.arange(n_ctx - 1, n_ctx + n_ans, device=device)  # predicts answer, then end
        logps = head(hidden[i, at]).float().log_softmax(-1)  # [A + 1, V]
        picked = logps[torch.arange(n_ans, device=device), torch.tensor(row.answer, device=device)]
        out_answer.append(float(picked.sum()))
        out_end.append(0.0 if ends is None else float(logps[n_ans, ends].logsumexp(0)))
    return out_answer, out_end
