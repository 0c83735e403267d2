"""Real-world video, generated here: the right frames at the right times, or a clear error row.

Every expectation comes from the slow path (`tests.helpers.slow_path_frames`: every frame
decoded in order by PyAV, its time from the frame itself) and `slow_path_pick` (a loop over
those times), never from the code under test. Frames are 32x32 and the model size is 32, so
no resize happens and frames must match pixel for pixel.
"""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from model.processing import FrameProcessor
from pipeline.clips.sampling import SamplingConfig
from pipeline.clips.windows import ClipConfig
from pipeline.core.records import VideoRef
from pipeline.core.status import STATUS_DECODE_ERROR, STATUS_OK
from pipeline.core.storage import StorageOptions
from pipeline.decode.isolation import DecodeLimits
from pipeline.decode.video_rows import DecodeSettings, decode_video
from pipeline.input.listing import list_videos
from tests.helpers import (
    encode_frames,
    encode_timed_frames,
    slow_path_frames,
    slow_path_pick,
    trim_with_edit_list,
)

SIZE = 32
T = 4


def _settings(length_s: float = 1.0, isolate: bool = False, **limits) -> DecodeSettings:
    return DecodeSettings(
        clips=ClipConfig(length_s=length_s, min_length_s=min(0.25, length_s)),
        sampling=SamplingConfig(num_frames=T),
        processor=FrameProcessor(size=SIZE),
        storage=StorageOptions(),
        thumbnail_size=32,
        limits=DecodeLimits(isolate=isolate, **limits),
    )


def _levels(count: int, height: int = SIZE, width: int = SIZE) -> np.ndarray:
    """Frame i is a flat grey whose level tells which frame it is (with some texture)."""
    rng = np.random.default_rng(count)
    base = (np.arange(count) * 9 % 200 + 20).astype(np.int16)[:, None, None, None]
    noise = rng.integers(-8, 8, (1, height, width, 1))
    return np.clip(base + noise, 0, 255).astype(np.uint8).repeat(3, axis=3)


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _decode(path: Path, settings: DecodeSettings):
    ref = VideoRef(uri=str(path), size=path.stat().st_size, version="1")
    return decode_video(ref, settings)


def _assert_matches_slow_path(
    rows, data: bytes, settings: DecodeSettings, rotation: int = 0, numbers: bool = True
):
    """Clip bounds, frame numbers, times and pixels as the slow path has them. (`numbers`
    off: a damaged file, where the slow path's positions skip the frames it could not decode
    while the stream's numbering keeps them; times and pixels must still agree.)"""
    times, frames = slow_path_frames(data)
    assert all(r["status"] == STATUS_OK for r in rows), rows[0]["error"]
    for row in rows:
        expected = slow_path_pick(times, row["start_s"], row["end_s"], T)
        if numbers:
            assert np.asarray(row["frame_indices"]).tolist() == expected
        np.testing.assert_allclose(row["frame_times_s"], [times[i] for i in expected], atol=1e-4)
        want = np.stack([np.rot90(frames[i], rotation // 90) for i in expected])
        np.testing.assert_array_equal(row["frames"], want)
    last = times[-1]
    assert last < rows[0]["video_duration_s"] <= last + 1.0


def test_variable_frame_rate_gives_the_frames_shown_at_the_sampled_times(tmp_path):
    """2 s at 25 fps, then 10 s at 5 fps: `index / avg_fps` would be seconds off."""
    times = [i / 25 for i in range(50)] + [2 + i / 5 for i in range(50)]
    data = encode_timed_frames(_levels(100), times)
    settings = _settings(length_s=4.0)
    rows = _decode(_write(tmp_path, "vfr.mp4", data), settings)
    assert [(r["start_s"], r["end_s"]) for r in rows] == [(0, 4), (4, 8), (8, 12)]
    _assert_matches_slow_path(rows, data, settings)
    # the first window's targets are 0.5, 1.5, 2.5, 3.5 s: frames shown then, not frame 25*t
    np.testing.assert_allclose(rows[0]["frame_times_s"], [0.48, 1.48, 2.4, 3.4], atol=0.021)


@pytest.mark.parametrize("rotation", [90, 270, 180])
def test_rotated_video_is_turned_upright_before_resizing(tmp_path, rotation):
    """A portrait picture stored sideways with a display matrix, as phones record it."""
    shown = np.zeros((12, 48, 32, 3), np.uint8)  # portrait: 48 tall, 32 wide
    shown[:, :16, :16] = 255  # top-left block as displayed
    stored = np.stack([np.rot90(f, -(rotation // 90)) for f in shown])
    data = encode_timed_frames(stored, [i / 12 for i in range(12)], rotation=rotation)
    rows = _decode(_write(tmp_path, f"r{rotation}.mp4", data), _settings())
    assert all(r["status"] == STATUS_OK for r in rows), rows[0]["error"]
    assert {(r["width"], r["height"]) for r in rows} == {(32, 48)}
    for row in rows:
        frames = row["frames"].astype(np.float32)  # [T, 32, 32, 3], aspect squeezed
        assert frames[:, :12, :12].mean() > 200 and frames[:, 20:, 20:].mean() < 50
        thumb = Image.open(io.BytesIO(row["thumbnail"]))
        assert thumb.size[1] > thumb.size[0]  # portrait


@pytest.mark.parametrize("rotation", [90, 270])
def test_rotated_frames_match_the_slow_path_turned_by_the_display_matrix(tmp_path, rotation):
    data = encode_timed_frames(_levels(24), [i / 24 for i in range(24)], rotation=rotation)
    settings = _settings()
    rows = _decode(_write(tmp_path, "square.mp4", data), settings)
    _assert_matches_slow_path(rows, data, settings, rotation)


@pytest.mark.parametrize(
    ("name", "options", "container_format"),
    [
        ("bframes.mp4", {"bf": "3", "g": "12"}, "mp4"),
        ("open-gop.mp4", {"bf": "3", "g": "10", "x264-params": "open-gop=1"}, "mp4"),
        ("start-at-1.4s.ts", {"bf": "2", "g": "12"}, "mpegts"),
        ("intra.mkv", {"g": "1"}, "matroska"),
    ],
)
def test_gop_structures_and_containers_match_the_slow_path(
    tmp_path, name, options, container_format
):
    data = encode_frames(_levels(60), 24, options=options, container_format=container_format)
    settings = _settings()
    rows = _decode(_write(tmp_path, name, data), settings)
    assert len(rows) == 3  # 2.5 s
    _assert_matches_slow_path(rows, data, settings)
    assert rows[0]["frame_times_s"][0] < 0.5  # times from the first frame, not the stream's 1.4 s


def test_a_stream_starting_at_a_late_pts_is_timed_from_its_first_frame(tmp_path):
    times = [5.0 + i / 10 for i in range(20)]
    data = encode_timed_frames(_levels(20), times)
    settings = _settings()
    rows = _decode(_write(tmp_path, "late.mp4", data), settings)
    _assert_matches_slow_path(rows, data, settings)
    assert rows[0]["video_duration_s"] == pytest.approx(2.0, abs=0.11)


def test_ten_bit_video(tmp_path):
    try:
        data = encode_frames(_levels(24), 24, pix_fmt="yuv420p10le")
    except Exception as err:  # the wheel's x264 may be 8-bit only
        pytest.skip(f"no 10-bit encoder here: {err}")
    settings = _settings()
    rows = _decode(_write(tmp_path, "10bit.mp4", data), settings)
    _assert_matches_slow_path(rows, data, settings)


def test_a_file_corrupted_in_the_middle_gives_the_slow_paths_frames_or_error_rows(tmp_path):
    """Damage at 1.5 s of 3 s (GOPs of 12 frames at 24 fps, closed): the first clip lies
    wholly before it and must be the slow path's, pixel for pixel. After the damage only real
    frames at their own times, or one error row, are promised: how FFmpeg conceals a damaged
    packet (which frames it shows, in what order) varied from run to run in CI, in the slow
    path as much as in ours, so neither is a reference there."""
    data = bytearray(encode_frames(_levels(72), 24, options={"g": "12", "bf": "2"}))
    middle = len(data) // 2
    data[middle : middle + 400] = np.random.default_rng(0).integers(0, 256, 400, np.uint8).tobytes()
    data = bytes(data)
    settings = _settings()
    rows = _decode(_write(tmp_path, "corrupt.mp4", data), settings)
    ok = [r for r in rows if r["status"] == STATUS_OK]
    errors = [r for r in rows if r["status"] == STATUS_DECODE_ERROR]
    assert len(errors) <= 1 and len(ok) + len(errors) == len(rows)
    assert ok and ok[0]["clip_index"] == 0
    _assert_matches_slow_path(ok[:1], data, settings)
    for row in ok:
        times = np.asarray(row["frame_times_s"], dtype=float)
        assert ((times >= row["start_s"]) & (times < row["end_s"])).all(), row["clip_index"]
        np.testing.assert_allclose(times * 24, np.round(times * 24), atol=1e-3)  # real frames
    for row in errors:
        assert row["error"]


def test_non_regular_files_are_refused(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    os.mkfifo(folder / "pipe.mp4")
    (ref,) = list_videos(str(folder))
    (row,) = decode_video(ref, _settings())
    assert row["status"] == STATUS_DECODE_ERROR and "a FIFO" in row["error"]
    manifest = tmp_path / "list.txt"
    manifest.write_text("/dev/zero\n")
    (ref,) = list_videos(str(manifest))
    (row,) = decode_video(ref, _settings())
    assert row["status"] == STATUS_DECODE_ERROR and "character device" in row["error"]


def test_a_large_tar_member_is_spilled_to_scratch_and_decodes_the_same(tmp_path):
    data = encode_frames(_levels(48), 24, options={"bf": "2"})
    plain = _write(tmp_path, "plain.mp4", data)
    shard = tmp_path / "shard.tar"
    with tarfile.open(shard, "w") as tar:
        info = tarfile.TarInfo("clips/v.mp4")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    (member,) = list_videos(str(shard))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    spilled = decode_video(member, _settings(spill_mb=0, scratch_dir=str(scratch)))
    inline = _decode(plain, _settings())
    assert [r["status"] for r in spilled] == [STATUS_OK, STATUS_OK]
    for a, b in zip(spilled, inline, strict=True):
        np.testing.assert_array_equal(a["frames"], b["frames"])
    assert list(scratch.iterdir()) == []  # the spilled copy is gone


def test_a_tar_member_read_stops_at_its_listed_size(tmp_path):
    """A member whose listed size runs past the shard's end is an error, not a long read."""
    data = encode_frames(_levels(24), 24)
    shard = tmp_path / "shard.tar"
    with tarfile.open(shard, "w") as tar:
        info = tarfile.TarInfo("v.mp4")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    (member,) = list_videos(str(shard))
    cut = type(member)(**{**member.__dict__, "size": os.path.getsize(shard)})
    (row,) = decode_video(cut, _settings(spill_mb=0))
    assert row["status"] == STATUS_DECODE_ERROR and "size changed" in row["error"]


def test_an_edit_list_that_cuts_the_first_frames_is_honoured(tmp_path):
    """MP4 `elst` starting 6 frames in: those frames are decoded as references only, never
    numbered or shown, and time 0 is the first frame the edit list shows."""
    levels = np.stack([np.full((SIZE, SIZE, 3), 10 + 5 * i, np.uint8) for i in range(48)])
    data = trim_with_edit_list(encode_frames(levels, 24, options={"bf": "2", "g": "12"}), 6, 24)
    settings = _settings()
    rows = _decode(_write(tmp_path, "elst.mp4", data), settings)
    _assert_matches_slow_path(rows, data, settings)
    assert rows[0]["video_duration_s"] == pytest.approx(42 / 24, abs=1e-3)
    first = rows[0]["frames"][0].mean()
    assert first == pytest.approx(10 + 5 * (6 + rows[0]["frame_indices"][0]), abs=3)


@pytest.mark.slow
def test_a_thirty_minute_low_resolution_video(tmp_path):
    """1800 frames at 1 fps: 180 windows of 10 s, each sampled where the slow path says."""
    data = encode_frames(_levels(1800, 16, 16), 1, options={"g": "30", "bf": "2"})
    base = _settings(length_s=10.0)
    settings = DecodeSettings(**{**base.__dict__, "processor": FrameProcessor(size=16)})
    rows = _decode(_write(tmp_path, "long.mp4", data), settings)
    assert len(rows) == 180 and all(r["status"] == STATUS_OK for r in rows)
    times, frames = slow_path_frames(data)
    for row in rows[::17]:
        expected = slow_path_pick(times, row["start_s"], row["end_s"], T)
        assert np.asarray(row["frame_indices"]).tolist() == expected
        np.testing.assert_array_equal(row["frames"], np.stack([frames[i] for i in expected]))


@pytest.mark.slow
def test_4k_video(tmp_path):
    frames = np.repeat(_levels(6, 270, 480), 8, axis=1).repeat(8, axis=2)  # 2160 x 3840
    data = encode_frames(frames, 6, options={"preset": "ultrafast"})
    settings = _settings(isolate=True)
    rows = _decode(_write(tmp_path, "4k.mp4", data), settings)
    assert len(rows) == 1 and rows[0]["status"] == STATUS_OK, rows[0]["error"]
    assert (rows[0]["width"], rows[0]["height"]) == (3840, 2160)
    times, decoded = slow_path_frames(data)
    expected = slow_path_pick(times, rows[0]["start_s"], rows[0]["end_s"], T)
    assert np.asarray(rows[0]["frame_indices"]).tolist() == expected
    levels = [decoded[i].mean() for i in expected]
    np.testing.assert_allclose(rows[0]["frames"].reshape(T, -1).mean(axis=1), levels, atol=2)
