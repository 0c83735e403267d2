"""Tags: parsing generated lists, and taxonomy scoring that reuses the visual tokens."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from model import build_prompt, parse_tags, tokenize_with_video
from model.generation import stop_token_ids
from model.tags import (
    answer_variants,
    item_end_ids,
    listing_contexts,
    score_taxonomy,
    score_taxonomy_listing,
    split_listing,
    tag_spellings,
)
from tests.helpers import build_tiny_model

QUESTION = "Does the tag '{tag}' apply to this video? Answer yes or no."
TAXONOMY = ["red", "circle", "moving left", "a much longer tag about the scene", "still"]


@pytest.mark.parametrize(
    "text,tags",
    [
        ("red, circle, moving left", ["red", "circle", "moving left"]),
        ("Tags: Red, CIRCLE;  moving   LEFT.", ["red", "circle", "moving left"]),
        ("- dog\n- beach\n- dog", ["dog", "beach"]),
        ("1. dog 2) cat", ["dog 2) cat"]),
        ("\"sunset\", 'sea', ", ["sunset", "sea"]),
        ("", []),
        (" , ;; ", []),
    ],
)
def test_parse_tags(text, tags):
    assert parse_tags(text) == tags


@pytest.fixture(scope="module")
def tiny():
    return build_tiny_model(seed=5)


def clips(n=3, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, size=(3, 56, 56, 3), dtype=np.uint8) for _ in range(n)]


def full_sequence_scores(model, video, taxonomy):
    """Reference: every (clip, tag, answer) sequence run from scratch, no cache sharing."""
    out = np.zeros((video.shape[0], len(taxonomy)), dtype=np.float32)
    for c in range(video.shape[0]):
        for t, tag in enumerate(taxonomy):
            prompt = tokenize_with_video(build_prompt(QUESTION.format(tag=tag)), model.tokenizer)
            likelihood = {True: 0.0, False: 0.0}
            for is_yes, answer in answer_variants(model.tokenizer):
                batch = model.embed_prompts([prompt + answer], video[c : c + 1])
                with torch.no_grad():
                    logits = model.language_model(inputs_embeds=batch.embeds).logits[0]
                steps = logits[-len(answer) - 1 : -1].log_softmax(-1)
                likelihood[is_yes] += float(steps[torch.arange(len(answer)), answer].sum().exp())
            out[c, t] = likelihood[True] / (likelihood[True] + likelihood[False])
    return out


def test_taxonomy_scores_equal_full_recompute(tiny):
    video = tiny.encode_frames(clips())
    scores = score_taxonomy(tiny, video, TAXONOMY, QUESTION)
    assert scores.shape == (3, len(TAXONOMY)) and scores.dtype == np.float32
    assert np.all((scores > 0) & (scores < 1))
    np.testing.assert_allclose(scores, full_sequence_scores(tiny, video, TAXONOMY), atol=1e-5)


def test_taxonomy_scoring_runs_the_vision_tower_once(tiny):
    calls = []
    handle = tiny.vision_tower.register_forward_hook(lambda *args: calls.append(1))
    try:
        scored = tiny.score_tags(tiny.encode_frames(clips(2)), TAXONOMY, QUESTION, method="yes_no")
    finally:
        handle.remove()
    assert len(calls) == 1
    assert scored.scores.shape == (2, len(TAXONOMY))
    assert scored.num_tokens == [0, 0] and scored.listings is None


def test_score_tags_yes_no_is_score_taxonomy(tiny):
    video = tiny.encode_frames(clips(2, seed=2))
    scored = tiny.score_tags(video, TAXONOMY, QUESTION, method="yes_no")
    np.testing.assert_array_equal(scored.scores, score_taxonomy(tiny, video, TAXONOMY, QUESTION))


def test_taxonomy_chunks_give_same_scores(tiny, monkeypatch):
    import model.tags as tags_module

    video = tiny.encode_frames(clips(2, seed=1))
    whole = score_taxonomy(tiny, video, TAXONOMY, QUESTION)
    monkeypatch.setattr(tags_module, "ROWS_PER_PASS", 3)
    np.testing.assert_allclose(score_taxonomy(tiny, video, TAXONOMY, QUESTION), whole, atol=1e-6)


def test_question_without_tag_slot_is_refused(tiny):
    video = tiny.encode_frames(clips(1))
    with pytest.raises(ValueError, match=r"\{tag\}"):
        score_taxonomy(tiny, video, TAXONOMY, "Is this a video?")


# --- taxonomy scoring by the likelihood of listing the tag ------------------------------------

TAG_PROMPT = "List tags for this video, separated by commas."


def test_split_listing_keeps_items_and_separators_as_written():
    assert split_listing(" red, circle, moving left") == [
        (" red", ","),
        (" circle", ","),
        (" moving left", ""),
    ]
    assert split_listing("\n- dog\n- beach.\n") == [("\n- dog", "\n"), ("- beach.", "\n")]
    assert split_listing(" a,, b") == [(" a", ",,"), (" b", "")]
    assert split_listing("") == []


def test_listing_contexts_are_every_place_with_the_tag_taken_out():
    items = split_listing(" red, circle, moving left")
    # a tag the model did not list: before each item and after the end
    assert listing_contexts(items, "blue") == [
        ("", " "),
        (" red,", " "),
        (" red, circle,", " "),
        (" red, circle, moving left,", " "),
    ]
    # a listed tag is taken out, so "the others first, then this one" is one of the places
    assert listing_contexts(items, "Circle") == [
        ("", " "),
        (" red,", " "),
        (" red, moving left,", " "),
    ]
    assert listing_contexts(split_listing("- dog\n- beach."), "cat")[-1] == (
        "- dog\n- beach\n",
        "- ",
    )
    assert listing_contexts([], "dog") == [("", " ")]


def test_tag_spellings():
    assert tag_spellings("dog") == ["dog", "Dog"]
    assert tag_spellings(" Moving left ") == ["Moving left", "moving left"]


def test_item_end_ids_are_separators_full_stops_and_the_stop(tiny):
    tok = tiny.tokenizer
    ends = set(item_end_ids(tok))
    for text in [",", ".", ";", "\n"]:
        assert set(tok(text, add_special_tokens=False).input_ids[:1]) <= ends, text
    assert set(stop_token_ids(tok)) <= ends
    for text in [" red", "dog", " the"]:
        assert tok(text, add_special_tokens=False).input_ids[0] not in ends, text
    assert item_end_ids(tok) is item_end_ids(tok)  # computed once per tokenizer


def full_sequence_listing_scores(model, video, taxonomy, listings):
    """Reference: each (clip, tag, place, spelling) run from scratch, no shared cache."""
    ends = item_end_ids(model.tokenizer)
    prompt = tokenize_with_video(build_prompt(TAG_PROMPT), model.tokenizer)
    enc = lambda text: model.tokenizer(text, add_special_tokens=False).input_ids  # noqa: E731
    out = np.zeros((video.shape[0], len(taxonomy)), dtype=np.float32)
    for c, listing in enumerate(listings):
        for t, tag in enumerate(taxonomy):
            for context, lead in listing_contexts(split_listing(listing), tag):
                total = 0.0
                for spelling in tag_spellings(tag):
                    answer = enc(lead + spelling)
                    batch = model.embed_prompts([prompt + enc(context) + answer], video[c : c + 1])
                    with torch.no_grad():
                        logits = model.language_model(inputs_embeds=batch.embeds).logits[0]
                    steps = logits[-len(answer) - 1 :].log_softmax(-1)
                    logp = steps[torch.arange(len(answer)), answer].sum() + steps[
                        -1, ends
                    ].logsumexp(0)
                    total += float(logp.exp())
                out[c, t] = max(out[c, t], total)
    return out


def test_listing_scores_equal_full_recompute(tiny):
    video = tiny.encode_frames(clips())
    result = score_taxonomy_listing(tiny, video, TAXONOMY, TAG_PROMPT, max_new_tokens=12)
    assert result.scores.shape == (3, len(TAXONOMY)) and result.scores.dtype == np.float32
    assert np.all((result.scores >= 0) & (result.scores <= 1))
    assert len(result.listings) == 3 and all(0 < n <= 12 for n in result.num_tokens)
    expected = full_sequence_listing_scores(tiny, video, TAXONOMY, result.listings)
    np.testing.assert_allclose(result.scores, expected, rtol=1e-4, atol=1e-9)


def test_listing_scores_do_not_depend_on_passes_or_batch(tiny, monkeypatch):
    import model.tags as tags_module

    frames = clips(2, seed=3)
    video = tiny.encode_frames(frames)
    alone = tiny.encode_frames(frames[1:])
    whole = score_taxonomy_listing(tiny, video, TAXONOMY, TAG_PROMPT, 8).scores
    monkeypatch.setattr(tags_module, "ROWS_PER_PASS", 5)
    np.testing.assert_allclose(
        score_taxonomy_listing(tiny, video, TAXONOMY, TAG_PROMPT, 8).scores, whole, atol=1e-6
    )
    np.testing.assert_allclose(
        score_taxonomy_listing(tiny, alone, TAXONOMY, TAG_PROMPT, 8).scores, whole[1:], atol=1e-5
    )


def test_listing_scoring_runs_the_vision_tower_once(tiny):
    calls = []
    handle = tiny.vision_tower.register_forward_hook(lambda *args: calls.append(1))
    try:
        video = tiny.encode_frames(clips(2))
        scores = tiny.score_tags(video, TAXONOMY, TAG_PROMPT, max_new_tokens=6).scores
    finally:
        handle.remove()
    assert len(calls) == 1 and scores.shape == (2, len(TAXONOMY))


def test_score_tags_by_listing_is_score_taxonomy_listing(tiny):
    """`score_tags` defaults to the listing method and returns the scorer's result whole."""
    video = tiny.encode_frames(clips(2, seed=4))
    scored = tiny.score_tags(video, TAXONOMY, TAG_PROMPT, max_new_tokens=6)
    direct = score_taxonomy_listing(tiny, video, TAXONOMY, TAG_PROMPT, 6)
    np.testing.assert_array_equal(scored.scores, direct.scores)
    assert scored.listings == direct.listings and scored.num_tokens == direct.num_tokens


def test_listing_with_no_taxonomy_still_reports_the_list(tiny):
    video = tiny.encode_frames(clips(2))
    result = score_taxonomy_listing(tiny, video, [], TAG_PROMPT, max_new_tokens=4)
    assert result.scores.shape == (2, 0) and len(result.listings) == 2
