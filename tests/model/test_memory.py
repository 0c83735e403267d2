"""Memory measured by tracing the real forward: the counter, the meta device's answers, the
weights at their loaded dtype, and the meta trace against the same forward run for real."""

from __future__ import annotations

import os

import pytest
import torch

from model import load_model, load_tokenizer
from model.checkpoint import TOY_CHECKPOINT_DIR, read_config
from model.generation import question_ids
from model.memory import LiveBytes, Questions, meta_model, peak_bytes, weight_bytes

TOY_PARAMS = 2_175_552
"""Parameters of the toy checkpoint (tied embeddings once)."""
TOY_BUFFERS = 16 * 8 + 2 * 16 * 4
"""SigLIP's 16 int64 position ids, and the rotary `inv_freq` and `original_inv_freq`: 16 fp32
each, kept in fp32 whatever the model's dtype."""
NEVER_STOP = (10**6,)
"""A stop id outside the vocabulary: a real model's answers run as long as the meta device's."""


@pytest.fixture(scope="module")
def toy():
    config = read_config(TOY_CHECKPOINT_DIR)
    tokenizer = load_tokenizer(TOY_CHECKPOINT_DIR)
    real = load_model(TOY_CHECKPOINT_DIR, device="cpu", dtype=torch.float32)
    return meta_model(config, tokenizer, torch.float32, real.processor), real


@pytest.mark.parametrize("device", ["meta", "cpu"])
def test_each_storage_counts_once_while_it_lives(device):
    weights = torch.empty(10_000, device=device)  # made before: not counted
    with LiveBytes(device) as counted:
        a = torch.empty(1000, device=device)  # 4,000 bytes
        b = a * 2  # 4,000 more: 8,000 live
        view = b.view(10, 100)  # a view: no new storage
        del a  # 4,000 live
        c = view + 1  # 8,000 live again
        del b, view, c
    assert (counted.peak, counted.live) == (8000, 0)
    assert weights.numel() == 10_000


def test_host_reads_of_meta_tensors_take_the_costlier_branch():
    x = torch.empty(3, 4, dtype=torch.long, device="meta")
    with LiveBytes("meta", host_ids=(5, 6)):
        assert bool((x > 0).all()) is False  # "every row stopped?" no: generation goes on
        assert int(x.sum()) == 0
        assert x.tolist() == [[5, 6, 5, 6]] * 3  # token ids: a long list of items
        assert x.float().tolist() == [[0.0] * 4] * 3


def test_weights_count_at_the_dtype_they_are_loaded_in_not_their_file_size(toy):
    meta, _ = toy
    config, tokenizer = meta.config, meta.tokenizer
    # the toy's file holds fp16 (4.37 MB); loaded in fp32 on a CPU it takes twice that
    assert os.path.getsize(TOY_CHECKPOINT_DIR / "model.safetensors") == 4_368_928
    assert weight_bytes(meta) == TOY_PARAMS * 4 + TOY_BUFFERS == 8_702_464
    bf16 = meta_model(config, tokenizer, torch.bfloat16)
    assert weight_bytes(bf16) == TOY_PARAMS * 2 + TOY_BUFFERS == 4_351_360


def test_the_meta_trace_equals_the_real_forward_where_the_vision_tower_peaks(toy):
    """8 frames a clip: the peak is in the vision tower, which reads no values, so the meta
    trace and a real CPU run of the same calls count the very same bytes."""
    meta, real = toy
    asked = Questions(caption_tokens=8, tag_tokens=8, stop_ids=NEVER_STOP)
    for batch in (1, 3):
        assert peak_bytes(meta, batch, 8, asked) == peak_bytes(real, batch, 8, asked)


def test_the_meta_trace_bounds_the_real_decoding_by_its_attention_masks_only(toy):
    """1 frame a clip and 300 new tokens: the peak is at the end of decoding (the KV cache).
    The meta device builds the attention mask a real run skips (no padding), a bool
    `[batch, 1, 1, kv]` at a decoding step; a CPU run counts the few host tensors (token ids
    on their way to the device, under 1 KB) that on a GPU stay in host memory."""
    meta, real = toy
    asked = Questions(tag_mode="none", caption_tokens=300, stop_ids=NEVER_STOP)
    longest = len(question_ids(meta, asked.caption)) - 1 + 32 + 300  # prompt, video, answer
    for batch in (1, 2):
        traced, ran = peak_bytes(meta, batch, 1, asked), peak_bytes(real, batch, 1, asked)
        assert ran - 1024 <= traced <= ran + batch * longest
        assert traced > 0.99 * ran


def test_taxonomy_scoring_is_traced_with_the_longest_tag_list(toy):
    """Scoring a taxonomy runs as many rows as the model's tag list has places: the meta
    device's list is as long as the token limit allows, so it is not less than a real one."""
    meta, real = toy
    asked = Questions(
        caption_tokens=4, tag_mode="taxonomy", tag_tokens=16, taxonomy=("red", "circle")
    )
    for batch in (1, 2):
        assert peak_bytes(meta, batch, 8, asked) >= peak_bytes(real, batch, 8, asked)
