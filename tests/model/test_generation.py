"""Batched generation: same answer whatever the batch, KV cache equal to full recompute; the
model's API asks every question of visual tokens computed once."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from model import GenerationSettings, build_prompt, parse_tags, tokenize_with_video
from model.generation import _pick, generate_ids
from tests.helpers import build_tiny_model


@pytest.fixture(scope="module")
def tiny():
    return build_tiny_model(seed=11)


def random_clips(shapes, seed=0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, size=shape, dtype=np.uint8) for shape in shapes]


CLIP_SHAPES = [(3, 56, 56, 3), (4, 56, 56, 3), (3, 80, 64, 3), (1, 56, 56, 3), (3, 56, 56, 3)]


def captions(model, clips, prompt="Describe the video.", **settings) -> list[str]:
    """Clips -> visual tokens -> caption texts, through the model's API."""
    answers = model.caption(model.encode_frames(clips), prompt, GenerationSettings(**settings))
    return [a.text for a in answers]


def test_batched_captioning_equals_one_by_one(tiny):
    clips = random_clips(CLIP_SHAPES)
    batched = captions(tiny, clips, max_new_tokens=12)
    alone = [captions(tiny, [clip], max_new_tokens=12)[0] for clip in clips]
    assert batched == alone
    assert len(set(batched)) > 1  # different clips, different answers: the video is read


def test_captions_do_not_depend_on_batch_order(tiny):
    clips = random_clips(CLIP_SHAPES, seed=1)
    forward = captions(tiny, clips, max_new_tokens=10)
    backward = captions(tiny, clips[::-1], max_new_tokens=10)
    assert forward == backward[::-1]


def test_caption_reports_the_tokens_it_generated(tiny):
    """`Answer.num_tokens` counts the generated ids (stop excluded) the text was decoded from."""
    clips = random_clips(CLIP_SHAPES[:3], seed=6)
    video = tiny.encode_frames(clips)
    settings = GenerationSettings(max_new_tokens=7)
    prompt = tokenize_with_video(build_prompt("Describe the video."), tiny.tokenizer)
    ids = generate_ids(tiny, video, [prompt] * 3, settings)
    answers = tiny.caption(video, "Describe the video.", settings)
    assert [a.num_tokens for a in answers] == [len(row) for row in ids]
    texts = tiny.tokenizer.batch_decode(ids, skip_special_tokens=True)
    assert [a.text for a in answers] == [t.strip() for t in texts]


def test_every_question_is_asked_of_one_pass_of_the_vision_tower(tiny):
    """Caption, tag list and both taxonomy scorers read the visual tokens `encode_frames`
    made: the tower runs once for all of them, and answers equal those from a fresh encode."""
    clips = random_clips([(3, 56, 56, 3)] * 2, seed=7)  # one shape: one pass of the tower
    calls = []
    handle = tiny.vision_tower.register_forward_hook(lambda *args: calls.append(1))
    try:
        video = tiny.encode_frames(clips)
        caption = tiny.caption(video, "Describe.", GenerationSettings(max_new_tokens=5))
        tags = tiny.generate_tags(video, "List tags.", GenerationSettings(max_new_tokens=5))
        listing = tiny.score_tags(video, ["red", "dog"], "List tags.", max_new_tokens=5)
        question = "Is it '{tag}'?"
        yes_no = tiny.score_tags(video, ["red", "dog"], question, method="yes_no")
    finally:
        handle.remove()
    assert len(calls) == 1
    assert len(caption) == len(tags) == 2
    assert listing.scores.shape == yes_no.scores.shape == (2, 2)
    assert [a.text for a in caption] == captions(tiny, clips, "Describe.", max_new_tokens=5)


def test_tag_lists_are_the_parsed_answers_to_the_tag_prompt(tiny):
    clips = random_clips(CLIP_SHAPES[:3], seed=8)
    video = tiny.encode_frames(clips)
    settings = GenerationSettings(max_new_tokens=9)
    answers = tiny.caption(video, "List tags.", settings)
    tag_lists = tiny.generate_tags(video, "List tags.", settings)
    assert [t.text for t in tag_lists] == [a.text for a in answers]
    assert [t.num_tokens for t in tag_lists] == [a.num_tokens for a in answers]
    assert [t.tags for t in tag_lists] == [parse_tags(a.text) for a in answers]


@pytest.mark.parametrize("bad", ["clips", "pixels", "one video"])
def test_questions_refuse_anything_but_visual_tokens(tiny, bad):
    """Frames where visual tokens belong (the calls of the old API) get a clear error."""
    clips = random_clips(CLIP_SHAPES[:2], seed=9)
    video = {
        "clips": clips,
        "pixels": torch.as_tensor(np.stack(clips[:1])),
        "one video": tiny.encode_frames(clips)[0],
    }[bad]
    with pytest.raises(TypeError, match="encode_frames"):
        tiny.caption(video, "Describe.")
    with pytest.raises(TypeError, match="encode_frames"):
        tiny.score_tags(video, ["red"], "List tags.")


def test_an_unknown_scoring_method_is_refused(tiny):
    video = tiny.encode_frames(random_clips(CLIP_SHAPES[:1]))
    with pytest.raises(ValueError, match="listing, yes_no"):
        tiny.score_tags(video, ["red"], "List tags.", method="vote")


def test_visual_tokens_from_inference_can_be_followed_by_training(tiny):
    """`encode_frames` runs under `inference_mode`; the resampler's cached index and position
    table it builds must still serve a later training step (they are built as plain tensors)."""
    clips = random_clips([(2, 56, 56, 3)], seed=10)
    tiny.encode_frames(clips)
    pixels = tiny.processor(np.stack(clips))  # [1, T, 3, S, S]
    tiny.encode_video(pixels).sum().backward()
    assert tiny.connector.latents.grad is not None
    tiny.zero_grad(set_to_none=True)


def greedy_without_cache(model, video_embeds, prompt, steps) -> list[list[int]]:
    """Reference: recompute the whole sequence every step, no KV cache, one row at a time."""
    rows = []
    embed = model.language_model.get_input_embeddings()
    for i in range(video_embeds.shape[0]):
        batch = model.embed_prompts([prompt], video_embeds[i : i + 1])
        seq, produced = batch.embeds, []
        for _ in range(steps):
            with torch.no_grad():
                logits = model.language_model(inputs_embeds=seq).logits[0, -1]
            token = int(logits.argmax())
            produced.append(token)
            seq = torch.cat([seq, embed(torch.tensor([[token]]))], dim=1)
        rows.append(produced)
    return rows


def test_kv_cache_generation_equals_full_recompute(tiny):
    clips = random_clips(CLIP_SHAPES[:3], seed=2)
    prompt = tokenize_with_video(build_prompt("Describe the video."), tiny.tokenizer)
    video = tiny.encode_frames(clips)
    settings = GenerationSettings(max_new_tokens=8)
    cached = generate_ids(tiny, video, [prompt] * 3, settings)
    reference = greedy_without_cache(tiny, video, prompt, steps=8)
    stop = tiny.tokenizer.convert_tokens_to_ids("<|endoftext|>")
    for got, ref in zip(cached, reference, strict=True):
        expected = ref[: ref.index(stop)] if stop in ref else ref
        assert got == expected


def test_max_new_tokens_bounds_the_answer(tiny):
    clips = random_clips(CLIP_SHAPES[:2], seed=3)
    prompt = tokenize_with_video(build_prompt("Describe the video."), tiny.tokenizer)
    video = tiny.encode_frames(clips)
    ids = generate_ids(tiny, video, [prompt] * 2, GenerationSettings(max_new_tokens=3))
    assert all(len(row) <= 3 for row in ids)


def test_sampling_is_reproducible_with_a_seed_and_the_seed_matters(tiny):
    """Catches an unseeded generator (runs differ) and sampling that ignores its settings
    (greedy under another name: every seed would give the greedy answer)."""
    clips = random_clips(CLIP_SHAPES[:2], seed=4)
    video = tiny.encode_frames(clips)
    settings = GenerationSettings(max_new_tokens=8, temperature=1.5, top_p=1.0, seed=5)
    first = tiny.caption(video, "Describe.", settings)
    assert first == tiny.caption(video, "Describe.", settings)
    greedy = tiny.caption(video, "Describe.", GenerationSettings(max_new_tokens=8))
    by_seed = [tiny.caption(video, "Describe.", replace(settings, seed=seed)) for seed in range(4)]
    assert len({tuple(c) for c in by_seed}) > 1, "different seeds, different samples"
    assert any(c != greedy for c in by_seed)


# `_pick` on hand-made logits: the distribution each setting must produce, worked out by hand.
# probs p = [0.5, 0.3, 0.15, 0.05]; logits = log p.
P = torch.tensor([0.5, 0.3, 0.15, 0.05])
DRAWS = 40_000


def _frequencies(settings: GenerationSettings) -> list[float]:
    logits = P.log().expand(DRAWS, 4)  # [N, V]: one independent draw per row
    picked = _pick(logits, settings, torch.Generator().manual_seed(0))
    return (torch.bincount(picked, minlength=4).float() / DRAWS).tolist()


@pytest.mark.parametrize(
    "temperature,top_p,expected",
    [
        # T=1, no nucleus: p itself.
        (1.0, 1.0, [0.5, 0.3, 0.15, 0.05]),
        # T=2: softmax(log p / 2) = sqrt(p) / sum(sqrt(p)); sqrt p = .7071 .5477 .3873 .2236,
        # sum 1.8657.
        (2.0, 1.0, [0.379, 0.2936, 0.2076, 0.1199]),
        # T=0.5: p^2 / sum(p^2) = [.25 .09 .0225 .0025] / .365.
        (0.5, 1.0, [0.6849, 0.2466, 0.0616, 0.0068]),
        # top_p=0.6: mass before each token is 0, .5, .8, .95; tokens whose preceding mass
        # exceeds .6 are dropped -> {0, 1} renormalised: .5/.8, .3/.8.
        (1.0, 0.6, [0.625, 0.375, 0.0, 0.0]),
        # top_p=0.4: only the top token has preceding mass <= .4.
        (1.0, 0.4, [1.0, 0.0, 0.0, 0.0]),
        # T=2 then top_p=0.7 on sqrt-probs: preceding mass 0, .379, .673, .880 -> keep {0,1,2}:
        # .7071, .5477, .3873 over 1.6421.
        (2.0, 0.7, [0.4306, 0.3335, 0.2359, 0.0]),
    ],
)
def test_temperature_and_top_p_shape_the_distribution(temperature, top_p, expected):
    """Catches ignoring temperature, ignoring top_p, dividing the wrong way, or a nucleus cut
    one token off (keeping the token that crosses top_p is the published behaviour)."""
    got = _frequencies(GenerationSettings(temperature=temperature, top_p=top_p, seed=0))
    for g, e in zip(got, expected, strict=True):
        assert g == pytest.approx(e, abs=0.012)


def test_temperature_zero_is_argmax_whatever_the_generator():
    logits = torch.tensor([[0.1, 2.0, 1.9, -3.0], [5.0, 4.9, 0.0, 0.0]])
    picked = _pick(logits, GenerationSettings(temperature=0.0, seed=3), torch.Generator())
    assert picked.tolist() == [1, 0]


@pytest.mark.parametrize("kwargs", [{"max_new_tokens": 0}, {"temperature": -1.0}, {"top_p": 0.0}])
def test_bad_generation_settings_are_refused(kwargs):
    with pytest.raises(ValueError):
        GenerationSettings(**kwargs)
