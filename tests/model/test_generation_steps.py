"""Generation that does not wait on the host: no forward pass whose logits nobody reads, stops
checked every k steps, and the same answers whatever k is."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from model import GenerationSettings, build_prompt, load_model, tokenize_with_video
from model.checkpoint import TOY_CHECKPOINT_DIR
from model.generation import generate_ids
from model.toy.world import make_clips, render_clip
from tests.helpers import build_tiny_model


@pytest.fixture(scope="module")
def tiny():
    return build_tiny_model(seed=11)


def _video(model, n: int, seed: int = 3):
    rng = np.random.default_rng(seed)
    clips = [rng.integers(0, 256, size=(3, 56, 56, 3), dtype=np.uint8) for _ in range(n)]
    return model.encode_frames(clips)


def _prompt(model) -> list[int]:
    return tokenize_with_video(build_prompt("Describe the video."), model.tokenizer)


def _count_passes(model) -> list[int]:
    """Count passes through the language model by its output head: a prefill and each step
    (transformers' pass or the fixed-shape decoder's) compute logits once. Returns a list
    that grows by one per pass, and the hook's handle."""
    calls: list[int] = []
    handle = model.language_model.lm_head.register_forward_hook(lambda *_: calls.append(1))
    return calls, handle


def test_n_new_tokens_take_n_forward_passes(tiny):
    video = _video(tiny, 3)
    calls, handle = _count_passes(tiny)
    try:
        ids = generate_ids(tiny, video, [_prompt(tiny)] * 3, GenerationSettings(max_new_tokens=6))
    finally:
        handle.remove()
    assert max(len(row) for row in ids) == 6  # some row ran to the limit (none stopped early)
    assert len(calls) == 6  # 1 prefill + 5 steps; the 6th token's logits are never needed


@pytest.fixture(scope="module")
def toy():
    """The shipped toy checkpoint: trained, so its answers end on a stop token."""
    return load_model(TOY_CHECKPOINT_DIR, device="cpu", dtype=torch.float32)


@pytest.mark.parametrize("temperature", [0.0, 0.8])
def test_answers_do_not_depend_on_how_often_stops_are_checked(toy, temperature):
    video = toy.encode_frames([render_clip(c.spec, 8, 64) for c in make_clips(5454, 5)])
    rows = [_prompt(toy)] * 5
    settings = [
        GenerationSettings(max_new_tokens=24, temperature=temperature, seed=4, stop_check_every=k)
        for k in (1, 8, 64)
    ]
    answers = [generate_ids(toy, video, rows, each) for each in settings]
    assert answers[0] == answers[1] == answers[2]
    assert len({len(row) for row in answers[0]}) > 1  # rows stop at different steps


def test_stop_check_every_must_be_positive():
    with pytest.raises(ValueError, match="stop_check_every"):
        GenerationSettings(stop_check_every=0)


def _count_prefill(model, monkeypatch) -> list[int]:
    """Wrap the real language model's forward; records the length of each multi-token pass."""
    real = model.language_model.forward
    lengths: list[int] = []

    def forward(*args, **kwargs):
        width = kwargs["inputs_embeds"].shape[1]
        if width > 1:
            lengths.append(width)
        return real(*args, **kwargs)

    monkeypatch.setattr(model.language_model, "forward", forward)
    return lengths


CAPTION_Q = "Describe the video."
TAGS_Q = "List the tags of the video, comma separated."


def test_caption_and_tags_share_the_prefill_and_answer_the_same(toy, monkeypatch):
    video = toy.encode_frames([render_clip(c.spec, 8, 64) for c in make_clips(5455, 4)])
    caption_settings = GenerationSettings(max_new_tokens=24)
    tag_settings = GenerationSettings(max_new_tokens=16)
    alone = (
        toy.caption(video, CAPTION_Q, caption_settings),
        toy.generate_tags(video, TAGS_Q, tag_settings),
    )
    lengths = _count_prefill(toy, monkeypatch)
    prefix = toy.share_prefix(video, [CAPTION_Q, TAGS_Q])
    shared = (
        toy.caption(video, CAPTION_Q, caption_settings, prefix),
        toy.generate_tags(video, TAGS_Q, tag_settings, prefix),
    )
    assert shared == alone
    caption_len = len(_prompt(toy)) - 1 + video.shape[1]
    tags_len = len(toy_prompt(toy, TAGS_Q)) - 1 + video.shape[1]
    assert prefix is not None and lengths[0] == prefix.batch.embeds.shape[1]
    # the shared part once, then each question's own tokens: fewer than two full prefills
    assert sum(lengths) == lengths[0] + (caption_len - lengths[0]) + (tags_len - lengths[0])
    assert sum(lengths) < caption_len + tags_len - video.shape[1]


def toy_prompt(model, question: str) -> list[int]:
    return tokenize_with_video(build_prompt(question), model.tokenizer)


class _HostReads(TorchDispatchMode):
    """Counts the ops that read a device value back to the host (`bool(t)`, `t.item()`): on
    a GPU each is a wait for every kernel queued before it."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in (torch.ops.aten.is_nonzero.default, torch.ops.aten._local_scalar_dense.default):
            self.count += 1
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize(("every", "reads"), [(100, 0), (4, 3)])
def test_the_host_reads_the_device_only_for_the_stop_checks(tiny, every, reads):
    """16 tokens, a stop id no row can pick: a check every 4 steps reads at steps 4, 8 and 12
    (the 16th token ends the loop before its check); none due, no read at all. Before, the
    language model's padding check read its mask back on every one of the 16 passes."""
    video = _video(tiny, 3)
    unreachable = tiny.language_model.get_output_embeddings().weight.shape[0]
    settings = GenerationSettings(16, stop_ids=(unreachable,), stop_check_every=every)
    with _HostReads() as seen:
        ids = generate_ids(tiny, video, [_prompt(tiny)] * 3, settings)
    assert [len(row) for row in ids] == [16, 16, 16]
    assert seen.count == reads


def test_an_unpadded_batch_answers_as_each_prompt_alone_with_a_mask(tiny):
    """The same question for every clip (no padding, so no mask) gives the answers a padded
    batch gives, where a longer prompt beside it makes the mask necessary."""
    video = _video(tiny, 2)
    settings = GenerationSettings(max_new_tokens=8, stop_ids=(10**6,))
    prompt = _prompt(tiny)
    longer = tokenize_with_video(build_prompt("Describe the video in detail."), tiny.tokenizer)
    alike = generate_ids(tiny, video, [prompt, prompt], settings)
    mixed = generate_ids(tiny, video, [prompt, longer], settings)
    assert alike[0] == mixed[0]
