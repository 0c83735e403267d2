"""Builders shared by tests: tiny published-format configs and random-weight models."""

from __future__ import annotations

import io
import os
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch

FIXTURES = Path(__file__).parent / "fixtures"
UPSTREAM = FIXTURES / "upstream"


def tiny_config_dict(
    connector_type: str = "groupresampler",
    group: int = 4,
    num_queries: int = 8,
    image_size: int = 56,
    vocab_size: int = 512,
) -> dict[str, Any]:
    """A published-style config.json body for a model small enough to run in milliseconds."""
    return {
        "architectures": ["TinyLlavaForConditionalGeneration"],
        "model_type": "tinyllava",
        "llm_model_name_or_path": "/data/authors/Qwen2.5-3B",
        "vision_model_name_or_path": "/data/authors/siglip-so400m-patch14-384",
        "connector_type": connector_type,
        "num_queries": num_queries,
        "group": group,
        "num_resampler_layers": 2,
        "vision_feature_layer": -2,
        "vision_feature_select_strategy": "patch",
        "tokenizer_padding_side": "right",
        "tokenizer_model_max_length": 3072,
        "text_config": {
            "model_type": "qwen2",
            "vocab_size": vocab_size,
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 4096,
            "rope_theta": 1000000.0,
            "tie_word_embeddings": True,
            "_name_or_path": "/data/authors/Qwen2.5-3B",
        },
        "vision_config": {
            "model_type": "siglip_vision_model",
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": image_size,
            "patch_size": 14,
            "model_name_or_path": "/data/authors/siglip-so400m-patch14-384",
        },
    }


def randomise_(model: torch.nn.Module, seed: int) -> None:
    """Non-trivial random weights everywhere (default inits hide bugs: unit norms, zero bias)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=gen)
            if param.ndim == 1:
                param.copy_((1 + 0.2 * noise) if name.endswith("weight") else 0.1 * noise)
            else:
                param.copy_(noise / max(param.shape[-1], 1) ** 0.5)


def build_tiny_model(seed: int = 0, **config_kwargs: Any):
    """A random-weight `TinyLlavaVideo` with the fixtures' Qwen2-format tokenizer."""
    from model import TinyLlavaVideo, load_tokenizer, parse_config

    tokenizer = load_tokenizer(UPSTREAM / "ckpt_group")
    model = TinyLlavaVideo(parse_config(tiny_config_dict(**config_kwargs)), tokenizer)
    randomise_(model, seed)
    model.language_model.tie_weights()
    return model.eval()


def encode_frames(
    frames: np.ndarray,
    fps: int,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    container_format: str = "mp4",
    options: dict[str, str] | None = None,
) -> bytes:
    """uint8 RGB frames `[T, H, W, 3]` encoded with any codec/container PyAV has, as bytes.

    libx264 with yuv420p needs even sizes; `options` are the encoder's (e.g. GOP, B-frames).
    """
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=container_format) as container:
        stream = container.add_stream(codec, rate=Fraction(fps))
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = pix_fmt
        stream.options = options or {}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))
    return buffer.getvalue()


# -- real-world video corpus (issue 9): written by PyAV, checked against a slow path ---------


def encode_timed_frames(
    frames: np.ndarray,
    times_s: list[float],
    rotation: int = 0,
    options: dict[str, str] | None = None,
    container_format: str = "mp4",
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
) -> bytes:
    """Frames shown at the given times (variable frame rate allowed), stored with a display
    matrix rotating them `rotation` degrees counter-clockwise when shown (0: none)."""
    buffer = io.BytesIO()
    time_base = Fraction(1, 1000)
    with av.open(buffer, mode="w", format=container_format) as container:
        stream = container.add_stream(codec, rate=25)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = pix_fmt
        stream.time_base = time_base
        stream.options = options or {}
        if rotation:
            stream.set_display_rotation(rotation)
        for frame, t in zip(frames, times_s, strict=True):
            picture = av.VideoFrame.from_ndarray(frame, format="rgb24")
            picture.pts, picture.time_base = round(t * 1000), time_base
            container.mux(stream.encode(picture))
        container.mux(stream.encode(None))
    return buffer.getvalue()


def slow_path_frames(data: bytes) -> tuple[list[float], list[np.ndarray]]:
    """Every shown frame, decoded one after another by PyAV, and its time from the first.

    The reference the decode stage is checked against: no index, no skipping, no seeking.
    Frames are as stored (not rotated).
    """
    times: list[float] = []
    frames: list[np.ndarray] = []
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        # One thread, as the pipeline decodes: with frame threads, how a damaged packet is
        # concealed can vary from run to run, and the reference must not.
        stream.codec_context.thread_count = 1
        for packet in container.demux(stream):
            try:
                decoded = packet.decode()
            except av.InvalidDataError:  # a damaged packet: skipped, as FFmpeg's tools do
                continue
            for frame in decoded:
                times.append(float(frame.time))
                frames.append(frame.to_ndarray(format="rgb24"))
    return [t - times[0] for t in times], frames


def slow_path_pick(times: list[float], start: float, end: float, count: int) -> list[int]:
    """For each of `count` equal segments of `[start, end)`, the frame (by time) shown inside
    the clip nearest the segment's centre; the earlier one on a tie."""
    inside = [i for i, t in enumerate(times) if start - 1e-6 <= t < end - 1e-6]
    if not inside:
        inside = [max(i for i, t in enumerate(times) if t <= start + 1e-6)]
    picked = []
    for j in range(count):
        target = start + (j + 0.5) * (end - start) / count
        best = inside[0]
        for i in inside:
            if abs(times[i] - target) < abs(times[best] - target) - 1e-9:
                best = i
        picked.append(best)
    return picked


def trim_with_edit_list(mp4: bytes, skip_frames: int, fps: int) -> bytes:
    """The same MP4 with its (single, version 0) edit list moved on by `skip_frames` frames:
    players start there, and the frames before exist only as references for later ones."""
    at = mp4.find(b"elst")
    version, count = mp4[at + 4], int.from_bytes(mp4[at + 8 : at + 12], "big")
    if at < 0 or version != 0 or count != 1:
        raise ValueError("expected one version-0 edit list entry")
    duration = int.from_bytes(mp4[at + 12 : at + 16], "big")  # movie timescale (1000 here)
    media_time = int.from_bytes(mp4[at + 16 : at + 20], "big")  # media timescale
    mdhd = mp4.find(b"mdhd")
    media_scale = int.from_bytes(mp4[mdhd + 16 : mdhd + 20], "big")
    movie_scale = int.from_bytes(mp4[mp4.find(b"mvhd") + 16 : mp4.find(b"mvhd") + 20], "big")
    media_time += skip_frames * media_scale // fps
    duration -= skip_frames * movie_scale // fps
    patched = bytearray(mp4)
    patched[at + 12 : at + 16] = duration.to_bytes(4, "big")
    patched[at + 16 : at + 20] = media_time.to_bytes(4, "big")
    return bytes(patched)


PORT_BLOCK = 1500
"""Ports per pytest-xdist worker, below Linux's ephemeral range (32768-60999)."""


def free_ports(count: int) -> list[int]:
    """`count` distinct loopback ports nobody listens on now, for servers started later.

    Chosen below the ephemeral range, where the OS never hands a port out on its own: a port
    the OS picked and this function let go could be given to any other process (a Ray worker
    of the parallel test run, say) before the server it was meant for binds it. Each xdist
    worker draws from its own block, so two workers never choose the same port."""
    import random
    import socket

    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    base = 20_000 + (int(worker) if worker.isdigit() else 0) * PORT_BLOCK
    chosen: list[int] = []
    for port in random.sample(range(base, base + PORT_BLOCK), PORT_BLOCK):
        with socket.socket() as sock:
            try:
                sock.bind(("0.0.0.0", port))
            except OSError:
                continue
        chosen.append(port)
        if len(chosen) == count:
            return chosen
    raise RuntimeError(f"no {count} free ports in {base}-{base + PORT_BLOCK}")
