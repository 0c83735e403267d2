"""Packet-level sparse decoding: the plan (pure) and the frames (real H.264 with B-frames).

Frames are checked against `slow_path_frames`: every frame decoded in order by PyAV.
"""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.decode.packets import PacketDecoder, PacketIndex, PacketIndexError, SequentialDecoder
from pipeline.decode.video import OpenedVideo, open_video, read_source_frames, video_meta
from tests.helpers import encode_frames, slow_path_frames

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


def test_frames_cut_by_an_edit_list_are_decoded_but_never_numbered():
    # packets 0 and 1 (I0, P1) are before the edit list's start: decoded only as references
    pts = [-2, 1, -1, 0, 3, 2]
    keys = [True, False, False, False, False, False]
    discard = [True, False, True, False, False, False]
    index = PacketIndex.from_packets(pts, keys, discard, [1] * 6)
    assert index.num_frames == 4
    assert index.frame_pts.tolist() == [0, 1, 2, 3]
    assert index.runs([0]) == [(0, 3)]  # from the cut-away keyframe
    assert index.last_duration == 1


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


@pytest.fixture(scope="module")
def bframe_reference(bframe_video) -> tuple[list[float], list[np.ndarray]]:
    return slow_path_frames(bframe_video)


def test_sampled_frames_equal_the_slow_paths_while_fewer_frames_are_decoded(
    bframe_video, bframe_reference
):
    indices = [5, 17, 29, 41, 53, 65, 77, 89]
    decoder = PacketDecoder(bframe_video)
    frames = decoder.rgb_frames(indices)
    assert sorted(frames) == indices
    _times, expected = bframe_reference
    for i in indices:
        np.testing.assert_array_equal(frames[i], expected[i])
    # Up to frame 41 and frame 89 every frame would be decoded without skipping (90 in all).
    assert decoder.frames_decoded < 90 * 0.8


def test_any_frame_can_be_asked_for_in_any_order(bframe_video, bframe_reference):
    indices = [95, 0, 47, 48, 46, 1]
    frames = PacketDecoder(bframe_video).rgb_frames(indices)
    _times, expected = bframe_reference
    for i in indices:
        np.testing.assert_array_equal(frames[i], expected[i])


def test_frame_times_are_the_streams_own(bframe_video, bframe_reference):
    times, _frames = bframe_reference
    decoder = PacketDecoder(bframe_video)
    np.testing.assert_allclose(decoder.frame_times_s(), times, atol=1e-9)
    assert decoder.duration_s() == pytest.approx(96 / 24)


def test_decode_stage_repeats_short_clip_frames(bframe_video, bframe_reference):
    video = open_video(bframe_video)
    assert video.packets is not None
    meta = video_meta(video)
    assert (meta.num_frames, meta.height, meta.width) == (96, 96, 128)
    assert meta.fps == pytest.approx(24.0) and meta.rotation == 0
    frames = read_source_frames(video, np.array([3, 3, 60, 60]))
    _times, expected = bframe_reference
    np.testing.assert_array_equal(frames, np.stack([expected[i] for i in (3, 3, 60, 60)]))


@pytest.mark.parametrize(
    "container_format,codec",
    [
        ("matroska", "libx264"),
        ("mpegts", "libx264"),
        ("webm", "libvpx-vp9"),
        ("mpegts", "mpeg2video"),
    ],
)
def test_other_containers_and_codecs_give_the_slow_paths_frames(container_format, codec):
    source = _moving_texture(40, 64, 64)
    data = encode_frames(source, 24, codec, container_format=container_format)
    video = open_video(data)
    times, expected = slow_path_frames(data)
    meta = video_meta(video)
    assert meta.num_frames == len(expected) == 40
    np.testing.assert_allclose(meta.frame_times_s, times, atol=1e-6)
    indices = np.array([0, 2, 20, 21, 39])
    got = read_source_frames(video, indices)
    np.testing.assert_array_equal(got, np.stack([expected[i] for i in indices]))


def test_the_sequential_decoder_gives_the_same_frames_and_times(bframe_video, bframe_reference):
    """The fallback for streams whose packets cannot be indexed agrees with the slow path."""
    sequential = SequentialDecoder(bframe_video)
    times, expected = bframe_reference
    np.testing.assert_allclose(sequential.frame_times_s(), times, atol=1e-9)
    fallback = OpenedVideo(frames=sequential, rotation=0, width=128, height=96)
    indices = np.array([7, 30, 31, 70])
    np.testing.assert_array_equal(
        read_source_frames(fallback, indices), np.stack([expected[i] for i in indices])
    )
