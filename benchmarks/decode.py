"""Decode stage: CPU seconds per clip to sample 16 frames from 10 s windows of 60 s 720p H.264.

    python -m benchmarks.decode [--videos 2] [--repeats 3]
    python -m benchmarks.decode --memory   # peak RSS: 1-minute vs 30-minute 720p video
    python -m benchmarks.decode --poison   # Ray decode stage: 20 videos, then + poison + hang
    python -m benchmarks.decode --isolation  # isolation's CPU cost per clip only

Compared in one run, on the same files:
  clipnote   - the decode stage's own code, in process: bytes read once, the packet index
               (real times from pts), clips planned in seconds, one forward pass feeding the
               codec only the packets the sampled frames depend on (unasked non-reference
               frames skipped), frames turned upright, uint8 antialiased resize to 384 and a
               thumbnail per clip, clips handed on one by one
  isolated   - the same through `decode_video_rows` with isolation on (one supervised child,
               forked from a preloaded forkserver, serving the videos): parent + child CPU,
               and wall time, against `decode_video_rows` with isolation off, video by video
  get_batch  - decord's index and `get_batch` decoding the 16 frames (every frame from the
               keyframe before each sampled one is decoded), the same resize
  whole-clip - decode every frame of the window with decord, then index the 16 (what the
               published reference's loader, pytorchvideo's EncodedVideo on decord, does)
  read_videos- Ray Data's `read_videos` (one row per decoded frame), then the 16 per window
               (on a local Ray limited to one CPU: its wall time is its CPU time)
Also reports the bytes per clip that cross the object store (uint8 at model resolution).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from model.processing import FrameProcessor
from pipeline.clips.sampling import SamplingConfig
from pipeline.clips.windows import ClipConfig, plan_clips, plan_clips_at_times
from pipeline.core.records import VideoRef
from pipeline.core.storage import StorageOptions
from pipeline.decode.isolation import DecodeLimits
from pipeline.decode.video import open_video, resize_frames, video_meta
from pipeline.decode.video_rows import DecodeSettings, decode_video_rows, iter_clips

CACHE = Path(__file__).parent / ".cache"
WIDTH, HEIGHT, FPS, SECONDS = 1280, 720, 30, 60
CLIPS = ClipConfig(mode="window", length_s=10.0, stride_s=10.0)
SAMPLING = SamplingConfig(num_frames=16)
PROCESSOR = FrameProcessor(size=384)


def make_video(path: Path, seed: int) -> None:
    """60 s of 720p H.264 with moving textured content (so frames are not trivially small)."""
    import av

    rng = np.random.default_rng(seed)
    texture = rng.integers(0, 255, (HEIGHT // 8, WIDTH // 8, 3), dtype=np.uint8)
    texture = np.kron(texture, np.ones((8, 8, 1), dtype=np.uint8))  # [H, W, 3]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "23", "g": str(FPS * 2)}
        for i in range(FPS * SECONDS):
            frame = np.roll(texture, shift=(i * 3, i * 5), axis=(0, 1))
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def videos(count: int) -> list[Path]:
    CACHE.mkdir(exist_ok=True)
    paths = [CACHE / f"bench_720p_{i}.mp4" for i in range(count)]
    for i, path in enumerate(paths):
        if not path.exists():
            make_video(path, seed=i)
    return paths


def sampled_decode(path: Path) -> int:
    """The decode stage's own calls, in this process."""
    video = open_video(path.read_bytes())
    meta = video_meta(video)
    plans = plan_clips_at_times(meta.frame_times_s, meta.duration_s, CLIPS, SAMPLING)
    return sum(1 for _clip in iter_clips(video, plans, _settings(isolate=False)))


def _settings(isolate: bool) -> DecodeSettings:
    limits = DecodeLimits(isolate=isolate)
    return DecodeSettings(CLIPS, SAMPLING, PROCESSOR, StorageOptions(), limits=limits)


def isolated_decode(paths: list[Path], repeats: int) -> dict[str, float]:
    """Parent + child CPU s per clip, wall s per video, child peak RSS, with isolation on;
    each video is also decoded in process right after (`decode_video_rows`, isolation off:
    the same code but for the child), so the two see the same load."""
    settings, inline_settings = _settings(isolate=True), _settings(isolate=False)
    refs = [VideoRef(str(p), p.stat().st_size, "bench") for p in paths]
    list(decode_video_rows(refs[0], settings))  # start the forkserver outside the timing
    cpu_runs, inline_runs, wall_runs, peaks = [], [], [], []
    for _ in range(repeats):
        cpu = inline = wall = 0.0
        clips = 0
        for ref in refs:
            stats: dict[str, float] = {}
            started, parent = time.perf_counter(), time.process_time()
            rows = decode_video_rows(ref, settings, stats)
            clips += sum(r["status"] == "ok" for r in rows)
            wall += time.perf_counter() - started
            cpu += time.process_time() - parent + stats["child_cpu_s"]
            peaks.append(stats["child_peak_rss_mb"])
            started = time.process_time()
            assert sum(r["status"] == "ok" for r in decode_video_rows(ref, inline_settings))
            inline += time.process_time() - started
        cpu_runs.append(cpu / clips)
        inline_runs.append(inline / clips)
        wall_runs.append(wall / len(refs))
    return {
        "cpu_s_per_clip": statistics.median(cpu_runs),
        "inline_cpu_s_per_clip": statistics.median(inline_runs),
        "wall_s_per_video": statistics.median(wall_runs),
        "child_peak_rss_mb": max(peaks),
    }


def get_batch_decode(path: Path) -> int:
    """decord's own index and `get_batch` for the same 16 frames of each window."""
    import decord

    reader = decord.VideoReader(io.BytesIO(path.read_bytes()), ctx=decord.cpu(0), num_threads=1)
    plans = plan_clips(len(reader), reader.get_avg_fps(), CLIPS, SAMPLING)
    for plan in plans:
        frames = reader.get_batch(plan.frame_indices.tolist()).asnumpy()
        resize_frames(frames, PROCESSOR)
    return len(plans)


def whole_clip_decode(path: Path) -> int:
    """The published loader's way: a decord reader, every frame of the window, then index."""
    import decord

    reader = decord.VideoReader(io.BytesIO(path.read_bytes()), ctx=decord.cpu(0), num_threads=1)
    plans = plan_clips(len(reader), reader.get_avg_fps(), CLIPS, SAMPLING)
    for plan in plans:
        first = round(plan.start_s * reader.get_avg_fps())
        last = min(len(reader), round(plan.end_s * reader.get_avg_fps()))
        every = reader.get_batch(list(range(first, last))).asnumpy()  # [N, H, W, 3]
        picked = every[plan.frame_indices - first]
        resize_frames(np.ascontiguousarray(picked), PROCESSOR)
    return len(plans)


def ray_read_videos(paths: list[Path]) -> tuple[float, int]:
    """Wall seconds for Ray Data's read_videos over `paths` with one CPU, and clips."""
    import ray

    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    started = time.perf_counter()
    clips = 0
    wanted = {}
    for path in paths:
        meta = video_meta(open_video(path.read_bytes()))
        plans = plan_clips_at_times(meta.frame_times_s, meta.duration_s, CLIPS, SAMPLING)
        wanted[str(path)] = {int(i) for p in plans for i in p.frame_indices}
        clips += len(plans)
    ds = ray.data.read_videos([str(p) for p in paths], include_paths=True)
    kept = 0
    for batch in ds.iter_batches(batch_size=256, batch_format="numpy"):
        for path, index in zip(batch["path"], batch["frame_index"], strict=True):
            kept += int(index) in wanted[str(path)]
    seconds = time.perf_counter() - started
    ray.shutdown()
    return seconds, clips


def make_long_video(path: Path, minutes: int, fps: int = 2) -> None:
    """`minutes` of 720p H.264 at a low frame rate (so 30 minutes encode in about a minute)."""
    import av

    rng = np.random.default_rng(minutes)
    texture = rng.integers(0, 255, (HEIGHT // 16, WIDTH // 16, 3), dtype=np.uint8)
    texture = np.kron(texture, np.ones((16, 16, 1), dtype=np.uint8))
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "32", "g": str(fps * 2)}
        for i in range(minutes * 60 * fps):
            frame = np.roll(texture, shift=(i * 3, i * 5), axis=(0, 1))
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def peak_memory() -> dict[str, float | int | str]:
    """Peak RSS of the isolated decode child on a 1-minute and a 30-minute 720p video."""
    CACHE.mkdir(exist_ok=True)
    settings = _settings(isolate=True)
    result: dict[str, float | int | str] = {"videos": "720p H.264 @2fps, 10s windows"}
    for minutes in (1, 30):
        path = CACHE / f"long_720p_{minutes}min.mp4"
        if not path.exists():
            make_long_video(path, minutes)
        ref = VideoRef(str(path), path.stat().st_size, "bench")
        stats: dict[str, float] = {}
        started = time.perf_counter()
        rows = list(decode_video_rows(ref, settings, stats))
        assert all(r["status"] == "ok" for r in rows), rows[-1]["error"]
        result[f"{minutes}min_clips"] = len(rows)
        result[f"{minutes}min_file_mb"] = round(path.stat().st_size / 2**20, 1)
        result[f"{minutes}min_child_peak_rss_mb"] = round(stats["child_peak_rss_mb"], 1)
        result[f"{minutes}min_wall_s"] = round(time.perf_counter() - started, 1)
    result["ratio_30min_vs_1min"] = round(
        float(result["30min_child_peak_rss_mb"]) / float(result["1min_child_peak_rss_mb"]), 3
    )
    return result


def poison_run(stall_s: float = 10.0) -> dict[str, float | str]:
    """Wall time of the Ray decode stage over 20 good videos alone, then with a video that
    kills its decoder (SIGSEGV) and one that hangs, on a local Ray with 2 CPUs."""
    import ray

    from pipeline.decode.hook import DECODE_HOOK_ENV
    from pipeline.ray_data import decode_row
    from tests.helpers import encode_frames
    from tests.pipeline.decode.faults import FAULT_MAGIC, HOOK

    os.environ[DECODE_HOOK_ENV] = HOOK  # before Ray starts: its workers inherit it

    folder = CACHE / "poison"
    folder.mkdir(parents=True, exist_ok=True)
    good = []
    for i in range(20):
        path = folder / f"good{i:02d}.mp4"
        if not path.exists():
            frames = np.random.default_rng(i).integers(0, 256, (240, 72, 128, 3), np.uint8)
            path.write_bytes(encode_frames(frames, 24, options={"bf": "2", "g": "48"}))
        good.append(path)
    poison, hangs = folder / "poison.bin", folder / "hangs.bin"
    poison.write_bytes(FAULT_MAGIC + b"crash\n")
    hangs.write_bytes(FAULT_MAGIC + b"hang\n")
    limits = DecodeLimits(stall_s=stall_s)
    settings = DecodeSettings(CLIPS, SAMPLING, PROCESSOR, StorageOptions(), limits=limits)
    ray.init(
        address="local",
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        _node_ip_address="127.0.0.1",
    )

    def run(paths: list[Path]) -> tuple[float, dict[str, int]]:
        items = [VideoRef(str(p), p.stat().st_size, "bench").to_row() for p in paths]
        ds = ray.data.from_items(items, override_num_blocks=len(items))
        ds = ds.flat_map(decode_row, fn_kwargs={"settings": settings}, max_retries=0)
        started = time.perf_counter()
        statuses = ds.select_columns(["status"]).take_all()
        counts: dict[str, int] = {}
        for row in statuses:
            counts[row["status"]] = counts.get(row["status"], 0) + 1
        return time.perf_counter() - started, counts

    run(good[:2])  # warm the workers and their forkservers
    alone, alone_counts = run(good)
    mixed, mixed_counts = run([*good[:10], poison, hangs, *good[10:]])
    ray.shutdown()
    return {
        "videos": f"20 x 10s 128x72 H.264 (+ poison + hang, decode.stall_s={stall_s:g})",
        "alone_s": round(alone, 1),
        "with_poison_and_hang_s": round(mixed, 1),
        "ratio": round(mixed / alone, 2),
        "alone_rows": str(alone_counts),
        "mixed_rows": str(mixed_counts),
    }


def cpu_seconds_per_clip(fn, paths: list[Path], repeats: int) -> float:
    runs = []
    for _ in range(repeats):
        started = time.process_time()
        clips = sum(fn(path) for path in paths)
        runs.append((time.process_time() - started) / clips)
    return statistics.median(runs)


def _isolation_result(count: int, isolated: dict[str, float]) -> dict[str, object]:
    return {
        "videos": f"{count} x {SECONDS}s {WIDTH}x{HEIGHT} H.264 @{FPS}fps, 10s windows",
        "isolated_cpu_s_per_clip": round(isolated["cpu_s_per_clip"], 4),
        "inline_rows_cpu_s_per_clip": round(isolated["inline_cpu_s_per_clip"], 4),
        "isolation_cpu_overhead_same_load": round(
            isolated["cpu_s_per_clip"] / isolated["inline_cpu_s_per_clip"] - 1, 3
        ),
        "isolated_wall_s_per_video": round(isolated["wall_s_per_video"], 3),
        "isolated_child_peak_rss_mb": round(isolated["child_peak_rss_mb"], 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--videos", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-ray", action="store_true")
    parser.add_argument("--memory", action="store_true", help="peak RSS, 1 vs 30 minutes")
    parser.add_argument("--poison", action="store_true", help="Ray run with poison + hang")
    parser.add_argument("--isolation", action="store_true", help="isolation's cost only")
    parser.add_argument("--stall-s", type=float, default=10.0, help="decode.stall_s (--poison)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.poison:
        print(json.dumps(poison_run(args.stall_s), indent=2))
        return
    if args.memory:
        print(json.dumps(peak_memory(), indent=2))
        return
    paths = videos(args.videos)
    if args.isolation:
        isolated = isolated_decode(paths, args.repeats)
        print(json.dumps(_isolation_result(args.videos, isolated), indent=2))
        return
    ours = cpu_seconds_per_clip(sampled_decode, paths, args.repeats)
    get_batch = cpu_seconds_per_clip(get_batch_decode, paths, args.repeats)
    whole = cpu_seconds_per_clip(whole_clip_decode, paths, args.repeats)
    isolated = isolated_decode(paths, args.repeats)
    result = {
        "videos": f"{args.videos} x {SECONDS}s {WIDTH}x{HEIGHT} H.264 @{FPS}fps, 10s windows",
        "clipnote_cpu_s_per_clip": round(ours, 4),
        **_isolation_result(args.videos, isolated),
        "get_batch_cpu_s_per_clip": round(get_batch, 4),
        "whole_clip_cpu_s_per_clip": round(whole, 4),
        "speedup_vs_get_batch": round(get_batch / ours, 2),
        "speedup_vs_whole_clip": round(whole / ours, 2),
        "bytes_per_clip_uint8": 16 * 384 * 384 * 3,
        "bytes_per_clip_float32_would_be": 16 * 384 * 384 * 3 * 4,
    }
    if not args.skip_ray:
        seconds, clips = ray_read_videos(paths)
        result["ray_read_videos_s_per_clip_1cpu"] = round(seconds / clips, 4)
        result["speedup_vs_read_videos"] = round(seconds / clips / ours, 2)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
