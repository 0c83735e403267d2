"""The resamplers: exact token counts, grouping, position encoding, batch independence."""

from __future__ import annotations

import math

import pytest
import torch

from model.configuration import ResamplerConfig
from model.resampler import (
    GroupResampler,
    NaiveResampler,
    group_sizes,
    sinusoidal_position_encoding,
)
from tests.helpers import randomise_


def make(kind: str, num_queries: int = 12, group: int = 4) -> torch.nn.Module:
    config = ResamplerConfig(
        connector_type=kind,
        vision_hidden_size=24,
        hidden_size=48,
        num_queries=num_queries,
        num_layers=2,
        group=group if kind == "groupresampler" else 1,
    )
    module = GroupResampler(config) if kind == "groupresampler" else NaiveResampler(config)
    randomise_(module, seed=3)
    return module.eval()


@pytest.mark.parametrize(
    "seq_len,group,sizes",
    [
        (60, 4, [15, 15, 15, 15]),
        (45, 4, [12, 11, 11, 11]),  # 45 = 4 x 11 + 1: the first chunk takes the extra token
        (10, 4, [3, 3, 2, 2]),
        (3, 4, [1, 1, 1, 0]),
        (0, 4, [0, 0, 0, 0]),
        (7, 1, [7]),
    ],
)
def test_group_sizes_by_hand(seq_len, group, sizes):
    assert group_sizes(seq_len, group) == sizes


@pytest.mark.parametrize("seq_len,group", [(60, 4), (45, 4), (3, 4), (0, 4), (11665, 16)])
def test_group_sizes_cover_the_sequence_first_chunks_longer(seq_len, group):
    sizes = group_sizes(seq_len, group)
    assert len(sizes) == group and sum(sizes) == seq_len
    assert sizes == sorted(sizes, reverse=True) and max(sizes) - min(sizes) <= 1


@pytest.mark.parametrize("kind", ["groupresampler", "naiveresampler"])
@pytest.mark.parametrize("tokens", [1, 2, 3, 4, 5, 7, 16, 45, 60, 97])
def test_resampler_yields_exactly_num_queries_tokens(kind, tokens):
    module = make(kind)
    with torch.no_grad():
        out = module(torch.randn(2, tokens, 24))
    assert out.shape == (2, 12, 48)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("tokens", [2, 45, 61])
def test_vectorised_equals_per_group_loop(tokens):
    module = make("groupresampler")
    x = torch.randn(3, tokens, 24)
    with torch.no_grad():
        torch.testing.assert_close(module(x), module.forward_per_group(x), rtol=1e-5, atol=1e-5)


def test_each_chunk_only_sees_its_own_tokens():
    """Changing the last token moves only the last group's output tokens (plus nothing else)."""
    module = make("groupresampler", num_queries=12, group=4)
    x = torch.randn(1, 45, 24)
    y = x.clone()
    y[:, -1] += 5.0
    with torch.no_grad():
        diff = (module(x) - module(y)).abs().amax(dim=-1)[0]  # [12]
    assert torch.all(diff[:9] == 0) and torch.all(diff[9:] > 0)


def test_batch_rows_are_independent():
    module = make("groupresampler")
    x = torch.randn(4, 45, 24)
    with torch.no_grad():
        together = module(x)
        alone = torch.cat([module(x[i : i + 1]) for i in range(4)])
    torch.testing.assert_close(together, alone, rtol=1e-4, atol=1e-5)


def test_position_encoding_is_the_float16_sinusoid():
    pe = sinusoidal_position_encoding(8, 6, device=torch.device("cpu"), dtype=torch.float32)
    assert pe.shape == (1, 8, 6)
    pos, col = 5, 2
    exact = math.sin(pos * math.exp(-col * math.log(10000.0) / 6))
    assert pe[0, pos, col].item() == torch.tensor(exact, dtype=torch.float16).item()
    assert pe[0, pos, col + 1].item() == pytest.approx(
        math.cos(pos * math.exp(-col * math.log(10000.0) / 6)), abs=1e-3
    )


def test_group_output_carries_position_encoding_naive_input_does():
    """Same latents in every group: only the added position encoding tells groups apart."""
    module = make("groupresampler", num_queries=8, group=4)
    x = torch.zeros(1, 8, 24)  # identical chunks -> identical refined latents per group
    with torch.no_grad():
        out = module(x)[0]
    pe = sinusoidal_position_encoding(8, 48, device=torch.device("cpu"), dtype=torch.float32)[0]
    torch.testing.assert_close(out - pe, (out - pe)[[0, 1] * 4], rtol=0, atol=1e-5)
