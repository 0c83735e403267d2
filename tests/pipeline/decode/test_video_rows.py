"""Decode stage on real files: H.264 MP4s written here, read back by decord.

Every bad input gives exactly one `decode_error` row whose `error` says why; every good one
gives one row per planned clip with uint8 `[T, S, S, 3]` frames and a JPEG thumbnail.
"""

from __future__ import annotations

import io
import os
import re
from dataclasses import replace
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from model.processing import FrameProcessor
from model.toy.video_io import write_mp4, write_toy_videos
from pipeline.clips.sampling import SamplingConfig
from pipeline.clips.windows import ClipConfig
from pipeline.core.records import VideoRef
from pipeline.core.status import STATUS_DECODE_ERROR, STATUS_OK
from pipeline.core.storage import StorageOptions
from pipeline.decode.video_rows import DecodeSettings, decode_video
from pipeline.input.listing import list_videos
from pipeline.input.problems import MISSING_VERSION
from tests.helpers import encode_frames

SIZE = 56  # the tiny model's input size
T = 4


def _settings(clips: ClipConfig | None = None, frames: int = T, thumb: int = 48):
    return DecodeSettings(
        clips=clips or ClipConfig(length_s=1.0, stride_s=1.0, min_length_s=0.5),
        sampling=SamplingConfig(num_frames=frames),
        processor=FrameProcessor(size=SIZE),
        storage=StorageOptions(),
        thumbnail_size=thumb,
    )


def _ref(path: Path) -> VideoRef:
    (ref,) = list_videos(str(path))
    return ref


def _grey_ramp(num_frames: int, height: int, width: int) -> np.ndarray:
    """Frame i is a flat grey of level 5*i: which frame was decoded is visible in its pixels."""
    levels = (np.arange(num_frames) * 5).astype(np.uint8)
    return np.broadcast_to(levels[:, None, None, None], (num_frames, height, width, 3)).copy()


def _encode(path: Path, frames: np.ndarray, fps: int, codec: str, pix_fmt: str) -> Path:
    path.write_bytes(encode_frames(frames, fps, codec, pix_fmt))
    return path


def _assert_ok_rows(rows, fps: float, duration_s: float, settings, ref, expected) -> None:
    """`expected`: (start_s, end_s, frame indices) of each clip, worked out by hand (constant
    frame rate: frame i shows at i / fps; each sampled frame is the one nearest the centre of
    its equal share of the clip)."""
    assert [(r["start_s"], r["end_s"]) for r in rows] == [(a, b) for a, b, _ in expected]
    for index, (row, (_a, _b, indices)) in enumerate(zip(rows, expected, strict=True)):
        assert row["status"] == STATUS_OK and row["error"] is None
        assert row["video_uri"] == ref.uri and row["video_id"] == ref.video_id
        assert row["clip_index"] == index
        frames = row["frames"]
        assert frames.dtype == np.uint8 and frames.shape == (len(indices), SIZE, SIZE, 3)
        assert np.asarray(row["frame_indices"]).tolist() == indices
        np.testing.assert_allclose(row["frame_times_s"], np.array(indices) / fps, atol=1e-4)
        assert row["video_fps"] == pytest.approx(fps)
        assert row["video_duration_s"] == pytest.approx(duration_s)
        image = Image.open(io.BytesIO(row["thumbnail"]))
        assert image.format == "JPEG"
        image.verify()
        assert max(image.size) <= settings.thumbnail_size
        assert row["decode_s"] >= 0


# 48 frames at 24 fps in 1 s windows, 4 frames each: targets 0.125, 0.375, ... s.
TWO_WINDOWS = [(0.0, 1.0, [3, 9, 15, 21]), (1.0, 2.0, [27, 33, 39, 45])]


def _assert_error_row(rows, ref: VideoRef, *reason_parts: str) -> str:
    assert len(rows) == 1, "a bad video gives exactly one row"
    (row,) = rows
    assert row["status"] == STATUS_DECODE_ERROR
    assert row["video_uri"] == ref.uri and row["video_id"] == ref.video_id
    assert row["clip_index"] == -1
    assert row["frames"].shape == (0, SIZE, SIZE, 3) and row["frames"].dtype == np.uint8
    assert row["thumbnail"] is None
    assert len(row["frame_indices"]) == 0
    message = row["error"]
    assert isinstance(message, str) and message
    for part in reason_parts:
        assert part in message, message
    return message


# -- good videos ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def toy_videos(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("toy")
    return [path for path, _clip in write_toy_videos(folder, seed=11, n=3, num_frames=48)]


def test_toy_videos_give_one_row_per_clip(toy_videos):
    settings = _settings()
    for path in toy_videos:
        ref = _ref(path)
        rows = decode_video(ref, settings)
        _assert_ok_rows(rows, 24.0, 2.0, settings, ref, TWO_WINDOWS)
        assert all((r["width"], r["height"]) == (128, 128) for r in rows)
        # the toy world draws a coloured shape on a background: frames are not blank
        assert all(r["frames"].std() > 5 for r in rows)


def test_the_frames_at_the_listed_indices_are_the_ones_decoded(tmp_path):
    path = tmp_path / "ramp.mp4"
    write_mp4(_grey_ramp(48, 64, 64), path, fps=24)
    settings = _settings()
    ref = _ref(path)
    rows = decode_video(ref, settings)
    _assert_ok_rows(rows, 24.0, 2.0, settings, ref, TWO_WINDOWS)
    for row in rows:
        expected = np.asarray(row["frame_indices"]) * 5.0
        means = row["frames"].reshape(T, -1).mean(axis=1)
        np.testing.assert_allclose(means, expected, atol=3)


def test_two_second_320x240_clip(tmp_path):
    rng = np.random.default_rng(3)
    frames = np.repeat(rng.integers(0, 256, (48, 30, 40, 3), dtype=np.uint8), 8, axis=1)
    frames = np.repeat(frames, 8, axis=2)  # blocky 240x320: compresses, still has detail
    path = tmp_path / "wide.mp4"
    write_mp4(frames, path, fps=24)
    settings = _settings(ClipConfig(length_s=1.0, stride_s=0.5, min_length_s=0.5))
    ref = _ref(path)
    rows = decode_video(ref, settings)
    overlapping = [
        (0.0, 1.0, [3, 9, 15, 21]), (0.5, 1.5, [15, 21, 27, 33]), (1.0, 2.0, [27, 33, 39, 45])
    ]  # fmt: skip
    _assert_ok_rows(rows, 24.0, 2.0, settings, ref, overlapping)
    assert {(r["width"], r["height"]) for r in rows} == {(320, 240)}
    assert rows[0]["video_duration_s"] == pytest.approx(2.0)


def test_whole_mode_gives_one_clip(toy_videos):
    settings = _settings(ClipConfig(mode="whole"), frames=8)
    ref = _ref(toy_videos[0])
    (row,) = decode_video(ref, settings)
    assert (row["start_s"], row["end_s"]) == (0.0, 2.0)
    assert row["frames"].shape == (8, SIZE, SIZE, 3)
    assert np.asarray(row["frame_indices"]).tolist() == [3, 9, 15, 21, 27, 33, 39, 45]


def test_video_shorter_than_one_clip_still_gives_one_ok_clip(tmp_path):
    path = tmp_path / "short.mp4"
    write_mp4(_grey_ramp(3, 32, 32), path, fps=24)  # 0.125 s, clips of 10 s, min 5 s
    settings = _settings(ClipConfig(length_s=10.0, stride_s=10.0, min_length_s=5.0))
    ref = _ref(path)
    rows = decode_video(ref, settings)
    # 4 frames wanted from 3 (at 0, 0.042, 0.083 s): targets 0.016, 0.047, 0.078, 0.109 s
    _assert_ok_rows(rows, 24.0, 0.125, settings, ref, [(0.0, 0.125, [0, 1, 2, 2])])


@pytest.mark.parametrize(("codec", "pix_fmt"), [("mpeg4", "yuv420p"), ("libx264", "yuv444p")])
def test_odd_resolution(tmp_path, codec, pix_fmt):
    path = _encode(tmp_path / f"odd-{codec}.mp4", _grey_ramp(30, 61, 97), 15, codec, pix_fmt)
    settings = _settings()
    ref = _ref(path)
    rows = decode_video(ref, settings)
    # 15 fps: targets 0.125/0.375/0.625/0.875 s -> frames 2 (0.133), 6 (0.4), 9 (0.6), 13
    _assert_ok_rows(
        rows, 15.0, 2.0, settings, ref, [(0.0, 1.0, [2, 6, 9, 13]), (1.0, 2.0, [17, 21, 24, 28])]
    )
    assert {(r["width"], r["height"]) for r in rows} == {(97, 61)}


def test_thumbnail_is_a_small_jpeg_of_the_middle_sampled_frame(tmp_path):
    path = tmp_path / "wide.mp4"
    write_mp4(_grey_ramp(24, 64, 128), path, fps=24)
    (row,) = decode_video(_ref(path), _settings(ClipConfig(mode="whole"), thumb=32))
    image = Image.open(io.BytesIO(row["thumbnail"]))
    assert image.format == "JPEG" and max(image.size) <= 32
    middle = int(np.asarray(row["frame_indices"])[T // 2])
    assert np.asarray(image.convert("L")).mean() == pytest.approx(middle * 5, abs=4)


# -- bad inputs: exactly one error row each -------------------------------------------------


def test_zero_byte_file(tmp_path):
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    ref = _ref(path)
    _assert_error_row(decode_video(ref, _settings()), ref, "empty file")


def test_truncated_mp4(tmp_path, toy_videos):
    data = toy_videos[0].read_bytes()
    path = tmp_path / "truncated.mp4"
    path.write_bytes(data[: len(data) // 2])
    ref = _ref(path)
    _assert_error_row(decode_video(ref, _settings()), ref, "not a readable video")


def test_truncated_mp4_with_index_first(tmp_path):
    """moov before mdat (faststart): the index lists frames whose bytes are gone."""
    path = tmp_path / "fast.mp4"
    with av.open(str(path), mode="w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width = stream.height = 64
        stream.pix_fmt = "yuv420p"
        frames = np.random.default_rng(0).integers(0, 256, (48, 64, 64, 3), dtype=np.uint8)
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode(None))
    data = path.read_bytes()
    cut = tmp_path / "fast-truncated.mp4"
    cut.write_bytes(data[: len(data) // 2])
    ref = _ref(cut)
    _assert_error_row(decode_video(ref, _settings()), ref, "not a readable video")


def test_random_bytes_named_mp4(tmp_path):
    path = tmp_path / "noise.mp4"
    path.write_bytes(np.random.default_rng(1).bytes(50_000))
    ref = _ref(path)
    _assert_error_row(decode_video(ref, _settings()), ref, "not a readable video")


def test_text_file_named_mp4(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("this is not a video\n" * 100)
    ref = _ref(path)
    _assert_error_row(decode_video(ref, _settings()), ref, "not a readable video")


def test_audio_only_file(tmp_path):
    path = tmp_path / "song.mp4"
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("aac", rate=44100)
        stream.layout = "mono"
        tone = (0.3 * np.sin(np.arange(1024) / 10)).astype(np.float32)[None]
        for i in range(40):
            frame = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 44100, i * 1024
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    with av.open(str(path)) as check:  # really an audio-only MP4
        assert [s.type for s in check.streams] == ["audio"]
    ref = _ref(path)
    message = _assert_error_row(decode_video(ref, _settings()), ref, "not a readable video")
    assert "video stream" in message


def test_missing_object_from_a_manifest(tmp_path):
    manifest = tmp_path / "list.txt"
    manifest.write_text("gone.mp4\n")
    (ref,) = list_videos(str(manifest))
    assert ref.version == MISSING_VERSION
    _assert_error_row(decode_video(ref, _settings()), ref, "object not found", "gone.mp4")


def test_missing_object_ref():
    ref = VideoRef(uri="/nonexistent/dir/v.mp4", size=-1, version=MISSING_VERSION)
    _assert_error_row(decode_video(ref, _settings()), ref, "object not found")


def test_a_listing_problem_is_the_error_row_even_when_a_file_is_there(tmp_path, toy_videos):
    """The reason the lister wrote is what decode reports, without reading anything: here a
    perfectly good video, refused by its listing, must not be decoded. Catches: decode
    ignoring `VideoRef.problem`, or rewording it."""
    path = tmp_path / "fine.mp4"
    path.write_bytes(toy_videos[0].read_bytes())
    ref = replace(_ref(path), problem="entry of s3://b/m.txt leaves its bucket s3://b: ../x")
    rows = decode_video(ref, _settings())
    message = _assert_error_row(rows, ref)
    assert message == "entry of s3://b/m.txt leaves its bucket s3://b: ../x"


def test_file_deleted_after_listing(tmp_path, toy_videos):
    path = tmp_path / "gone.mp4"
    path.write_bytes(toy_videos[0].read_bytes())
    ref = _ref(path)
    os.remove(path)
    _assert_error_row(decode_video(ref, _settings()), ref, "object not found")


def test_file_changed_after_listing(tmp_path, toy_videos):
    path = tmp_path / "changed.mp4"
    path.write_bytes(toy_videos[0].read_bytes())
    ref = _ref(path)
    path.write_bytes(toy_videos[1].read_bytes()[:1000])
    _assert_error_row(decode_video(ref, _settings()), ref, "size changed since listing")


def test_error_messages_are_short_and_single_line(tmp_path):
    path = tmp_path / "noise.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(5000))
    ref = _ref(path)
    message = _assert_error_row(decode_video(ref, _settings()), ref)
    assert len(message) <= 500 and "\n" not in message


def test_error_text_is_stable_so_failures_group_in_queries(tmp_path, toy_videos):
    """No decord timestamp or C++ source path: the same failure gives the same `error`."""
    data = toy_videos[0].read_bytes()
    for name, payload in [("noise.mp4", os.urandom(4000)), ("half.mp4", data[: len(data) // 2])]:
        path = tmp_path / name
        path.write_bytes(payload)
        ref = _ref(path)
        message = _assert_error_row(decode_video(ref, _settings()), ref, "not a readable video")
        assert not re.search(r"\[\d\d:\d\d:\d\d\]", message), message
        assert ".cc:" not in message, message
