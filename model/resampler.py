"""The connectors of TinyLLaVA-Video: the video-level group resampler and the naive resampler.

Both take every frame's visual tokens of a clip as one sequence and return a fixed number of
tokens in the language model's width. The group resampler splits the sequence into `group`
consecutive chunks (the first ones one token longer when it does not divide) and refines
`num_queries / group` learned latents per chunk; it is vectorised here: all chunks of all videos
go through each perceiver block in one batched attention, with padded tokens masked out.

Parameter names follow the published checkpoints (`latents`, `linear`, `layers.{i}.{0,1}`,
`norm`) so weights load without renaming inside the connector.
"""

from __future__ import annotations

import math
from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

from .configuration import ResamplerConfig

HEADS = 8
DIM_HEAD = 64
FF_MULT = 4


@lru_cache(maxsize=32)
@torch.inference_mode(False)
def _sinusoid_table(seq_len: int, dim: int) -> torch.Tensor:
    """Sinusoidal position table rounded through float16, as the published model builds it.

    Cached; built as an ordinary tensor even when first asked under `inference_mode`, so that
    a later training step may use it.
    """
    position = torch.arange(seq_len, dtype=torch.float32).unsqueeze(1)  # [N, 1]
    div_term = torch.exp(torch.arange(0, dim, 2).float() * -(math.log(10000.0) / dim))
    table = torch.zeros(seq_len, dim, dtype=torch.float16)  # [N, D]
    table[:, 0::2] = torch.sin(position * div_term)
    table[:, 1::2] = torch.cos(position * div_term)
    return table


def sinusoidal_position_encoding(
    seq_len: int, dim: int, *, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """`[1, seq_len, dim]`; float16 first, then the model dtype (the published arithmetic)."""
    return _sinusoid_table(seq_len, dim).to(device=device, dtype=dtype).unsqueeze(0)


def group_sizes(seq_len: int, group: int) -> list[int]:
    """Chunk lengths of a `seq_len` token sequence cut into `group` consecutive chunks."""
    base, remainder = divmod(seq_len, group)
    return [base + 1] * remainder + [base] * (group - remainder)


@lru_cache(maxsize=64)
@torch.inference_mode(False)
def _group_gather_index(seq_len: int, group: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Index `[G, L]` that lays the chunks out padded to the longest, and its validity mask
    (cached, and so built outside `inference_mode` like the position table)."""
    sizes = group_sizes(seq_len, group)
    longest = max(max(sizes), 1)
    starts = torch.tensor([sum(sizes[:i]) for i in range(group)]).unsqueeze(1)  # [G, 1]
    offsets = torch.arange(longest).unsqueeze(0)  # [1, L]
    valid = offsets < torch.tensor(sizes).unsqueeze(1)  # [G, L]
    index = torch.where(valid, starts + offsets, torch.zeros_like(offsets))
    return index, valid


def feed_forward(dim: int, mult: int = FF_MULT) -> nn.Sequential:
    """Pre-norm MLP; a Sequential so parameter names match the checkpoints (`1.0`, `1.1`, `1.3`)."""
    inner = dim * mult
    return nn.Sequential(
        nn.LayerNorm(dim),
        nn.Linear(dim, inner, bias=False),
        nn.GELU(),
        nn.Linear(inner, dim, bias=False),
    )


class PerceiverAttention(nn.Module):
    """Latents attend to [media tokens + latents]; 8 heads of 64 regardless of model width."""

    def __init__(self, dim: int, heads: int = HEADS, dim_head: int = DIM_HEAD) -> None:
        super().__init__()
        inner = heads * dim_head
        self.heads = heads
        self.scale = dim_head**-0.5
        self.norm_media = nn.LayerNorm(dim)
        self.norm_latents = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim, inner * 2, bias=False)
        self.to_out = nn.Linear(inner, dim, bias=False)

    def _split_heads(self, x: torch.Tensor) -> torch.Tensor:
        m, n, _ = x.shape
        return x.view(m, n, self.heads, -1).transpose(1, 2)  # [M, H, n, d]

    def forward(
        self, media: torch.Tensor, latents: torch.Tensor, media_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """media `[M, N, D]`, latents `[M, Q, D]`, media_mask `[M, N]` (True = real token).

        M is every (video, chunk) pair: one batched attention covers all chunks of all videos.
        """
        media = self.norm_media(media)
        latents = self.norm_latents(latents)
        q = self._split_heads(self.to_q(latents)) * self.scale  # [M, H, Q, d]
        k, v = self.to_kv(torch.cat((media, latents), dim=1)).chunk(2, dim=-1)
        k, v = self._split_heads(k), self._split_heads(v)  # [M, H, N+Q, d]
        mask = None
        if media_mask is not None:
            latent_keys = media_mask.new_ones(media_mask.shape[0], latents.shape[1])
            mask = torch.cat((media_mask, latent_keys), dim=1)[:, None, None, :]  # [M,1,1,N+Q]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, scale=1.0)
        return self.to_out(out.transpose(1, 2).flatten(2))  # [M, Q, D]


class _ResamplerBase(nn.Module):
    def __init__(self, config: ResamplerConfig, num_latents: int) -> None:
        super().__init__()
        dim = config.hidden_size
        self.config = config
        self.latents = nn.Parameter(torch.randn(num_latents, dim))
        self.linear = nn.Linear(config.vision_hidden_size, dim)
        self.layers = nn.ModuleList(
            nn.ModuleList([PerceiverAttention(dim), feed_forward(dim)])
            for _ in range(config.num_layers)
        )
        self.norm = nn.LayerNorm(dim)

    def _refine(self, media: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Run the perceiver blocks; media `[M, N, D]` -> normed latents `[M, Q, D]`."""
        latents = self.latents.to(media.dtype).expand(media.shape[0], *self.latents.shape)
        for attn, ff in self.layers:
            latents = attn(media, latents, mask) + latents
            latents = ff(latents) + latents
        return self.norm(latents)


class GroupResampler(_ResamplerBase):
    """Video-level group resampler: `[B, N, Dv]` visual tokens -> `[B, num_queries, D]`."""

    def __init__(self, config: ResamplerConfig) -> None:
        super().__init__(config, config.queries_per_group)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = self.linear(features)  # [B, N, D]
        index, valid = _group_gather_index(x.shape[1], self.config.group)
        index, valid = index.to(x.device), valid.to(x.device)
        b = x.shape[0]
        media = x[:, index].flatten(0, 1)  # [B*G, L, D]
        mask = valid.expand(b, *valid.shape).flatten(0, 1)  # [B*G, L]
        out = self._refine(media, mask).view(b, -1, x.shape[2])  # [B, G*Q, D]
        return out + sinusoidal_position_encoding(
            out.shape[1], out.shape[2], device=out.device, dtype=out.dtype
        )

    def forward_per_group(self, features: torch.Tensor) -> torch.Tensor:
        """The same computation one chunk at a time, in the published loop order.

        Kept as the straightforward baseline the vectorised `forward` is checked and
        benchmarked against.
        """
        x = self.linear(features)  # [B, N, D]
        chunks = torch.split(x, group_sizes(x.shape[1], self.config.group), dim=1)
        out = torch.cat([self._refine(chunk) for chunk in chunks], dim=1)  # [B, G*Q, D]
        return out + sinusoidal_position_encoding(
            out.shape[1], out.shape[2], device=out.device, dtype=out.dtype
        )


class NaiveResampler(_ResamplerBase):
    """The baseline the authors compare against: position-encode all tokens, one latent set."""

    def __init__(self, config: ResamplerConfig) -> None:
        super().__init__(config, config.num_queries)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        x = self.linear(features)  # [B, N, D]
        x = x + sinusoidal_position_encoding(x.shape[1], x.shape[2], device=x.device, dtype=x.dtype)
        return self._refine(x)  # [B, Q, D]


def build_resampler(config: ResamplerConfig) -> nn.Module:
    if config.connector_type == "groupresampler":
        return GroupResampler(config)
    return NaiveResampler(config)
