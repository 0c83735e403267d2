"""Packet-level sparse decoding: the plan (pure) and the frames (real H.264 with B-frames)."""

from __future__ import annotations

import io

import decord
import numpy as np
import pytest

from pipeline.decode import (
    OpenedVideo,
    _packet_decoder,
    open_video,
    read_source_frames,
    video_meta,
)
from pipeline.packet_decode import PacketDecoder, PacketIndex, PacketIndexError
from tests.helpers import encode_frames

# --- the plan -------------------------------------------------------------------------------

# Decode order of an IPBB.. stream with a keyframe every 6 frames: packets carry the
# presentation number as pts (I0 P3 B1 B2 P5 B4 | I6 P9 B7 B8 P11 B10).
PTS = [0, 3, 1, 2, 5, 4, 6, 9, 7, 8, 11, 10]
KEYS = [True, False, False, False, False, False, True, False, False, False, False, False]


def test_frames_are_numbered_in_presentation_order():
    index = PacketIndex.from_packets(PTS, KEYS)
    assert index.num_frames == 12
    assert index.frame_pts.tolist() == list(range(12))
    assert index.packet_of_frame[3] == 1 and index.packet_of_frame[1] == 2


def test_one_run_per_keyframe_up_to_the_last_wanted_packet():
    index = PacketIndex.from_packets(PTS, KEYS)
    # frame 1 is packet 2, frame 4 packet 5 (same GOP); frame 7 is packet 8 (next GOP)
    assert index.runs([1, 4, 7]) == [(0, 5), (6, 8)]
    assert index.runs([3]) == [(0, 1)]
    assert index.runs([6, 6, 6]) == [(6, 6)]


def test_a_leading_picture_starts_from_the_previous_keyframe():
    # Open GOP: B4 and B5 are decoded after I6 but shown before it, and may refer to P3.
    pts = [0, 3, 1, 2, 6, 4, 5, 9, 7, 8]
    keys = [True, False, False, False, True, False, False, False, False, False]
    index = PacketIndex.from_packets(pts, keys)
    assert index.run_start(4) == 0
    assert index.runs([5, 7]) == [(0, 8)]


def test_out_of_range_frames_are_refused():
    with pytest.raises(IndexError, match="frame 12"):
        PacketIndex.from_packets(PTS, KEYS).runs([12])


@pytest.mark.parametrize(
    "pts,keys,reason",
    [
        ([], [], "no video packets"),
        ([0, None], [True, False], "without a presentation timestamp"),
        ([0, 1, 1], [True, False, False], "share a presentation timestamp"),
        ([0, 1], [False, True], "start with a keyframe"),
    ],
)
def test_unmappable_streams_are_refused(pts, keys, reason):
    with pytest.raises(PacketIndexError, match=reason):
        PacketIndex.from_packets(pts, keys)


# --- the frames -----------------------------------------------------------------------------


def _moving_texture(num_frames: int, height: int = 96, width: int = 128) -> np.ndarray:
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 255, (height // 8, width // 8, 3), dtype=np.uint8)
    texture = np.kron(texture, np.ones((8, 8, 1), dtype=np.uint8))
    return np.stack([np.roll(texture, (i, 2 * i), axis=(0, 1)) for i in range(num_frames)])


def _h264(frames: np.ndarray, fps: int = 24, gop: int = 48, bframes: int = 3) -> bytes:
    options = {"g": str(gop), "bf": str(bframes), "crf": "20", "preset": "fast"}
    return encode_frames(frames, fps, options=options)


@pytest.fixture(scope="module")
def bframe_video() -> bytes:
    return _h264(_moving_texture(96))


def _decord_frames(data: bytes, indices: list[int]) -> np.ndarray:
    reader = decord.VideoReader(io.BytesIO(data), num_threads=1)
    return reader.get_batch(indices).asnumpy()


def test_sampled_frames_equal_decords_while_fewer_frames_are_decoded(bframe_video):
    indices = [5, 17, 29, 41, 53, 65, 77, 89]
    decoder = PacketDecoder(bframe_video)
    frames = decoder.rgb_frames(indices)
    assert sorted(frames) == indices
    expected = _decord_frames(bframe_video, indices)
    for i, want in zip(indices, expected, strict=True):
        np.testing.assert_array_equal(frames[i], want)
    # Up to frame 41 and frame 89 every frame would be decoded without skipping (90 in all).
    assert decoder.frames_decoded < 90 * 0.8


def test_any_frame_can_be_asked_for_in_any_order(bframe_video):
    indices = [95, 0, 47, 48, 46, 1]
    frames = PacketDecoder(bframe_video).rgb_frames(indices)
    expected = _decord_frames(bframe_video, sorted(indices))
    for i, want in zip(sorted(indices), expected, strict=True):
        np.testing.assert_array_equal(frames[i], want)


def test_decode_stage_uses_the_packet_decoder_and_repeats_short_clip_frames(bframe_video):
    video = open_video(bframe_video)
    assert video.packets is not None
    meta = video_meta(video)
    assert (meta.num_frames, meta.height, meta.width) == (96, 96, 128)
    frames = read_source_frames(video, np.array([3, 3, 60, 60]))
    expected = _decord_frames(bframe_video, [3, 60])
    np.testing.assert_array_equal(frames, expected[[0, 0, 1, 1]])


@pytest.mark.parametrize(
    "container_format,codec",
    [
        ("matroska", "libx264"),
        ("mpegts", "libx264"),
        ("webm", "libvpx-vp9"),
        ("mpegts", "mpeg2video"),
    ],
)
def test_other_containers_and_codecs_give_the_frames_asked_for(container_format, codec):
    """Each decoded frame is closest to the source frame of the same number (lossy codecs).

    Checked against the source rather than decord: decord's `get_batch` mis-numbers and then
    gives up on MPEG-TS, which the packet decoder reads correctly.
    """
    source = _moving_texture(40, 64, 64)
    video = open_video(encode_frames(source, 24, codec, container_format=container_format))
    assert video.packets is not None
    indices = np.array([0, 2, 20, 21, 39])
    got = read_source_frames(video, indices).astype(np.int32)  # [5, 64, 64, 3]
    errors = np.abs(got[:, None] - source[None].astype(np.int32)).mean(axis=(2, 3, 4))  # [5, 40]
    assert errors.argmin(axis=1).tolist() == indices.tolist()


def test_without_a_packet_decoder_decord_decodes_the_same_frames(bframe_video):
    """The fallback path (packet index disagreeing with decord's) gives identical frames."""
    video = open_video(bframe_video)
    fallback = OpenedVideo(reader=video.reader, packets=None)
    indices = np.array([7, 30, 31, 70])
    np.testing.assert_array_equal(
        read_source_frames(fallback, indices), read_source_frames(video, indices)
    )


def test_a_packet_index_that_disagrees_with_decord_is_not_used(bframe_video):
    """Frame numbers must be decord's: a different frame count or timing means decord decodes."""
    shorter = _h264(_moving_texture(60))
    reader = decord.VideoReader(io.BytesIO(shorter), num_threads=1)
    assert _packet_decoder(bframe_video, reader) is None
    slower = encode_frames(_moving_texture(96), 12)
    reader = decord.VideoReader(io.BytesIO(slower), num_threads=1)
    assert len(reader) == 96
    assert _packet_decoder(bframe_video, reader) is None
    same = decord.VideoReader(io.BytesIO(bframe_video), num_threads=1)
    assert _packet_decoder(bframe_video, same) is not None
