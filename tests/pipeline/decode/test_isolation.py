"""Supervised decode children: crashes, hangs and memory blow-ups cost that video only, and a
child serves video after video until a failure or its budget.

The targets below run in real child processes (forked from the forkserver); the crash is a
real SIGSEGV, the hang a real sleep, the memory a real allocation.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from model.processing import FrameProcessor
from pipeline.clips.sampling import SamplingConfig
from pipeline.clips.windows import ClipConfig
from pipeline.core.records import VideoRef
from pipeline.core.status import STATUS_DECODE_ERROR, STATUS_OK
from pipeline.core.storage import StorageOptions
from pipeline.decode.hook import DECODE_HOOK_ENV
from pipeline.decode.isolation import DecodeLimits, Failure, supervise
from pipeline.decode.video_rows import DecodeSettings, decode_video
from pipeline.input.listing import list_videos
from tests.helpers import encode_frames
from tests.pipeline.decode.faults import FAULT_MAGIC, HOOK

# -- targets (module level: the child imports them by name) ----------------------------------


def counts(n: int) -> Iterator[int]:
    yield from range(n)


def crashes_after(n: int) -> Iterator[int]:
    import ctypes

    yield from range(n)
    ctypes.string_at(0)


def hangs_after(n: int) -> Iterator[int]:
    yield from range(n)
    while True:
        time.sleep(1)


def trickles() -> Iterator[int]:
    """Never stalls, never ends."""
    i = 0
    while True:
        time.sleep(0.1)
        yield i
        i += 1


def grows(chunk_mb: int) -> Iterator[int]:
    held = []
    while True:
        block = np.ones(chunk_mb << 20, np.uint8)  # touched: resident
        held.append(block)
        time.sleep(0.02)
    yield len(held)


def raises() -> Iterator[int]:
    yield 1
    raise RuntimeError("a bug")


def pid() -> Iterator[int]:
    import os

    yield os.getpid()


LIMITS = DecodeLimits(timeout_s=60, stall_s=30, max_memory_mb=2048)


def _run(target, args, limits=LIMITS):
    items = list(supervise(target, args, limits))
    failures = [i for i in items if isinstance(i, Failure)]
    assert len(failures) <= 1 and (not failures or items[-1] is failures[0])
    return [i for i in items if not isinstance(i, Failure)], (failures or [None])[0]


def test_items_stream_back_and_a_clean_end_is_no_failure():
    stats: dict[str, float] = {}
    items = list(supervise(counts, (5,), LIMITS, stats))
    assert items == [0, 1, 2, 3, 4]
    assert stats["child_cpu_s"] >= 0 and stats["child_peak_rss_mb"] > 0


def test_a_native_crash_is_reported_by_its_signal_and_earlier_items_are_kept():
    items, failure = _run(crashes_after, (3,))
    assert items == [0, 1, 2]
    assert failure.kind == "signal" and "SIGSEGV" in failure.reason


def test_a_hang_is_killed_after_stall_s():
    # 4 s: a child that starts slowly on a loaded machine (a test run at load 14) must not
    # be taken for one that hangs before its first item
    limits = DecodeLimits(timeout_s=60, stall_s=4.0)
    started = time.monotonic()
    items, failure = _run(hangs_after, (2,), limits)
    assert items == [0, 1]
    assert failure.kind == "stall" and "decode.stall_s=4" in failure.reason
    assert time.monotonic() - started < 30  # generous: the point is that it ends


def test_a_video_that_never_finishes_is_killed_at_timeout_s():
    items, failure = _run(trickles, (), DecodeLimits(timeout_s=1.5, stall_s=10))
    assert len(items) >= 1
    assert failure.kind == "timeout" and "decode.timeout_s=1.5" in failure.reason


def test_memory_beyond_the_budget_is_stopped():
    items, failure = _run(grows, (32,), DecodeLimits(timeout_s=60, stall_s=60, max_memory_mb=700))
    assert items == []
    assert failure.kind == "memory" and "decode.max_memory_mb=700" in failure.reason


def test_an_exception_in_the_target_is_a_failure_not_a_lost_item():
    items, failure = _run(raises, ())
    assert items == [1]
    assert failure.kind == "error" and "RuntimeError: a bug" in failure.reason


def heavy_modules() -> Iterator[list[str]]:
    import sys

    heavy = ("ray", "transformers", "pyarrow", "pandas", "torch")
    yield sorted(m for m in heavy if m in sys.modules)


def test_the_child_imports_only_what_decode_needs():
    """torch is there for the resize (PIL's is ~4x slower); Ray, transformers, Arrow are not."""
    (loaded,) = list(supervise(heavy_modules, (), LIMITS))
    assert loaded == ["torch"]


def _pid(limits=LIMITS) -> int:
    (child,) = list(supervise(pid, (), limits))
    return child


def test_one_child_serves_video_after_video_and_is_replaced_after_a_failure():
    first = _pid()
    assert [_pid() for _ in range(3)] == [first] * 3  # no fork per video
    for target, args in ((crashes_after, (1,)), (raises, ())):
        _run(target, args)
        after = _pid()
        assert after != first  # a failure: a fresh child, never the one that failed
        first = after
    assert _pid() == first


def test_a_child_abandoned_half_way_or_over_its_budget_is_replaced():
    first = _pid()
    items = supervise(trickles, (), DecodeLimits(timeout_s=60, stall_s=10))
    assert next(items) == 0
    items.close()  # the consumer stopped: that child is still decoding, so it is not reused
    second = _pid()
    assert second != first
    budget = DecodeLimits(timeout_s=60, stall_s=30, videos_per_child=2)
    pids = [_pid(budget) for _ in range(6)]
    runs = [len(list(group)) for _, group in itertools.groupby(pids)]
    assert pids[0] == second and runs[1:-1] == [2] * (len(runs) - 2) and max(runs) == 2


# -- the decode stage ------------------------------------------------------------------------

SIZE = 32


def _settings(**limits) -> DecodeSettings:
    return DecodeSettings(
        clips=ClipConfig(length_s=1.0, min_length_s=0.5),
        sampling=SamplingConfig(num_frames=4),
        processor=FrameProcessor(size=SIZE),
        storage=StorageOptions(),
        thumbnail_size=32,
        limits=DecodeLimits(**{"timeout_s": 60, "stall_s": 20, **limits}),
    )


def _video(path, seed: int):
    frames = np.random.default_rng(seed).integers(0, 256, (36, 48, 64, 3), dtype=np.uint8)
    path.write_bytes(encode_frames(frames, 24))
    return path


def test_isolated_rows_equal_in_process_rows(tmp_path):
    (ref,) = list_videos(str(_video(tmp_path / "a.mp4", 0)))
    isolated = decode_video(ref, _settings())
    inline = decode_video(ref, _settings(isolate=False))
    assert [r["status"] for r in isolated] == [STATUS_OK, STATUS_OK]
    for a, b in zip(isolated, inline, strict=True):
        np.testing.assert_array_equal(a["frames"], b["frames"])
        np.testing.assert_array_equal(a["frame_indices"], b["frame_indices"])
        assert a["thumbnail"] == b["thumbnail"]


@pytest.mark.parametrize(
    ("fault", "reason"),
    [(b"crash", "decoder process killed by SIGSEGV"), (b"hang", "decode hung")],
)
def test_a_poison_or_hanging_file_gives_one_error_row(tmp_path, fault, reason):
    path = tmp_path / f"{fault.decode()}.mp4"
    path.write_bytes(FAULT_MAGIC + fault + b"\n")
    (ref,) = list_videos(str(path))
    (row,) = decode_video(ref, _settings(stall_s=2))
    assert row["status"] == STATUS_DECODE_ERROR and reason in row["error"], row["error"]
    assert row["frames"].shape == (0, SIZE, SIZE, 3)


def test_the_fault_marker_means_nothing_outside_the_tests(tmp_path):
    """Production never crashes on purpose: without the tests' hook in CLIPNOTE_DECODE_HOOK
    the child's hook call returns and the marker is just another file that is not a video.
    (A fresh process: this one's decoder forkserver already inherited the tests' setting.)"""
    import os
    import subprocess
    import sys

    path = tmp_path / "crash.mp4"
    path.write_bytes(FAULT_MAGIC + b"crash\n")
    code = (
        "import sys; from pipeline.input.listing import list_videos; "
        "from pipeline.decode.hook import run_decode_hook; "
        "(ref,) = list_videos(sys.argv[1]); run_decode_hook(ref); print('returned')"
    )
    env = {k: v for k, v in os.environ.items() if k != DECODE_HOOK_ENV}
    done = subprocess.run(
        [sys.executable, "-c", code, str(path)], env=env, capture_output=True, text=True,
        timeout=120, cwd=Path(__file__).resolve().parents[3],
    )  # fmt: skip
    assert done.returncode == 0 and "returned" in done.stdout, done.stderr[-2000:]
    env[DECODE_HOOK_ENV] = HOOK
    crashed = subprocess.run(
        [sys.executable, "-c", code, str(path)], env=env, capture_output=True, text=True,
        timeout=120, cwd=Path(__file__).resolve().parents[3],
    )  # fmt: skip
    assert crashed.returncode == -11  # SIGSEGV: the switch is what makes the difference


def test_the_fault_marker_means_nothing_without_isolation(tmp_path):
    path = tmp_path / "crash.mp4"
    path.write_bytes(FAULT_MAGIC + b"crash\n")
    (ref,) = list_videos(str(path))
    (row,) = decode_video(ref, _settings(isolate=False))
    assert row["status"] == STATUS_DECODE_ERROR and "not a readable video" in row["error"]


@pytest.mark.slow
def test_a_ray_run_with_a_poison_and_a_hanging_video_ends_with_every_good_video(
    tmp_path, ray_session
):
    """20 good videos, one that kills its decoder every time, one that hangs: the run ends,
    20 videos of ok clips and two error rows, and Ray never retries a video (the decode task
    itself never fails)."""
    import ray

    from pipeline.ray_data import decode_row

    folder = tmp_path / "videos"
    folder.mkdir()
    for i in range(20):
        _video(folder / f"good{i:02d}.mp4", i)
    (folder / "poison.mp4").write_bytes(FAULT_MAGIC + b"crash\n")
    (folder / "hangs.mp4").write_bytes(FAULT_MAGIC + b"hang\n")
    refs = list_videos(str(folder))
    assert len(refs) == 22
    settings = _settings(stall_s=5)
    ds = ray.data.from_items([r.to_row() for r in refs], override_num_blocks=22)
    ds = ds.flat_map(
        decode_row, fn_kwargs={"settings": settings}, num_cpus=1, max_retries=0
    ).select_columns(["video_uri", "status", "error", "clip_index"])
    rows = ds.take_all()
    by_video: dict[str, list[dict]] = {}
    for row in rows:
        by_video.setdefault(VideoRef(row["video_uri"], 0, "").uri, []).append(row)
    assert len(by_video) == 22
    errors = {uri.rsplit("/", 1)[1]: r["error"] for uri, rs in by_video.items() for r in rs
              if r["status"] == STATUS_DECODE_ERROR}  # fmt: skip
    assert set(errors) == {"poison.mp4", "hangs.mp4"}
    assert "SIGSEGV" in errors["poison.mp4"] and "decode hung" in errors["hangs.mp4"]
    good = [rs for uri, rs in by_video.items() if "good" in uri]
    assert len(good) == 20 and all(
        [r["status"] for r in rs] == [STATUS_OK, STATUS_OK] for rs in good
    )


def test_the_config_decode_section_sets_the_budget_and_names_bad_fields(tmp_path):
    from pipeline.config import ConfigError, build_config

    base = {"input": str(tmp_path), "output": str(tmp_path / "out")}
    config = build_config({**base, "decode": {"timeout_s": 90, "max_memory_mb": 1024}})
    limits = config.decode.limits()
    assert (limits.timeout_s, limits.max_memory_mb, limits.isolate) == (90, 1024, True)
    assert build_config(base).decode.limits() == DecodeLimits()
    for bad in ({"timeout_s": 0}, {"max_retries": -1}, {"stall": 3}):
        with pytest.raises(ConfigError, match="decode"):
            build_config({**base, "decode": bad})
