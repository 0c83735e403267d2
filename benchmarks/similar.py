"""Similar clips and dedup, measured: `python -m benchmarks.similar cost|scale|recall`.

`cost`: annotation throughput of the toy checkpoint with embeddings and footage fingerprints
on against off (the same clips, alternating rounds), as a ratio.
`scale N OUT`: N synthetic clips committed to OUT (`benchmarks/similar_corpus.py`), then one
footage dedup of all of them, timed (it also saves `similar`'s index), then `similar` timed
in a fresh process once the index exists, with that process's peak memory.
`recall N`: footage dedup of N synthetic clips with the faiss index against exact search:
the duplicate pairs exact search finds that the index finds too.
"""

from __future__ import annotations

import sys
import time


def cost(rounds: int = 4, clips: int = 32) -> dict[str, float]:
    from model.toy.world import make_clips, render_clip
    from pipeline.annotate.annotator import Annotator
    from pipeline.annotate.checkpoint_info import toy_checkpoint_dir
    from pipeline.annotate.prompts import PromptSettings
    from pipeline.annotate.settings import AnnotateSettings
    from pipeline.clips.sampling import SamplingConfig
    from pipeline.clips.windows import ClipConfig

    settings = AnnotateSettings(
        run_id="bench", model_source=str(toy_checkpoint_dir()), prompts=PromptSettings(),
        clips=ClipConfig(mode="whole"), sampling=SamplingConfig(num_frames=8),
        dtype="float32", device="cpu", max_new_tokens=32,
    )  # fmt: skip
    rows = [
        {"video_uri": f"v{i}", "video_size": 1, "video_version": "1", "video_id": f"v{i}",
         "clip_index": 0, "status": "ok", "error": None,
         "frames": render_clip(c.spec, 8, 64)}
        for i, c in enumerate(make_clips(99, clips))
    ]  # fmt: skip
    on, off = Annotator(settings), Annotator(settings, embed=False)
    on.annotate(rows[:4]), off.annotate(rows[:4])  # warm
    seconds = {"on": 0.0, "off": 0.0}
    for _ in range(rounds):
        for name, annotator in (("off", off), ("on", on)):
            started = time.perf_counter()
            for start in range(0, clips, 8):
                annotator.annotate(rows[start : start + 8])
            seconds[name] += time.perf_counter() - started
    return {
        "clips_per_s_on": rounds * clips / seconds["on"],
        "clips_per_s_off": rounds * clips / seconds["off"],
        "slowdown": seconds["on"] / seconds["off"],
    }


def scale(n: int, out: str) -> dict[str, float]:
    import resource
    import subprocess

    from benchmarks.similar_corpus import write_corpus
    from pipeline.output.similar import dedup

    started = time.perf_counter()
    copies = write_corpus(out, n)
    written = time.perf_counter() - started
    started = time.perf_counter()
    summary = dedup(out, "footage")
    seconds = time.perf_counter() - started
    probe = (
        "import sys, time\n"
        "from pipeline.output.similar import similar\n"
        "times = []\n"
        "for clip in sys.argv[2:]:\n"
        "    t = time.perf_counter(); similar(sys.argv[1], clip, 10)\n"
        "    times.append(time.perf_counter() - t)\n"
        "peak = [ln for ln in open('/proc/self/status') if ln.startswith('VmHWM')][0]\n"
        "print(sorted(times)[len(times) // 2], max(times), int(peak.split()[1]) / 1024)\n"
    )
    clips = [f"c{i:07d}" for i in range(0, n, max(1, n // 5))]  # the first pays the imports
    run = subprocess.run(
        [sys.executable, "-c", probe, out, *clips], capture_output=True, text=True, check=True
    )
    median_s, worst_s, peak_mb = map(float, run.stdout.split())
    return {
        "clips": n, "copies": copies, "write_s": written, "dedup_s": seconds,
        "duplicates": summary.duplicates, "similar_median_s": median_s,
        "similar_worst_s": worst_s, "similar_peak_rss_mb": peak_mb,
        "dedup_peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }  # fmt: skip


def recall(n: int) -> dict[str, float]:
    import numpy as np

    from benchmarks.similar_corpus import vectors
    from pipeline.output.ann import GrowingIndex
    from pipeline.output.neighbours import ExactIndex, group_greedy
    from pipeline.output.similar import THRESHOLDS

    footage, _, _ = vectors(n, seed=7)
    keys = np.arange(n)
    timed = {}
    pairs = {}
    for name, index in (("exact", ExactIndex(footage.shape[1])), ("faiss", GrowingIndex(192))):
        started = time.perf_counter()
        grouping = group_greedy(keys, footage, THRESHOLDS["footage"], index)
        timed[name] = time.perf_counter() - started
        dup = grouping.duplicate_of
        pairs[name] = {(int(k), int(d)) for k, d in zip(keys, dup, strict=True) if d >= 0}
    found = len(pairs["exact"] & pairs["faiss"])
    return {
        "clips": n, "exact_pairs": len(pairs["exact"]), "faiss_pairs": len(pairs["faiss"]),
        "recall": found / max(1, len(pairs["exact"])),
        "precision": found / max(1, len(pairs["faiss"])),
        "exact_s": timed["exact"], "faiss_s": timed["faiss"],
    }  # fmt: skip


if __name__ == "__main__":
    if sys.argv[1:2] == ["cost"]:
        print(cost())
    elif sys.argv[1:2] == ["scale"]:
        print(scale(int(sys.argv[2]), sys.argv[3]))
    elif sys.argv[1:2] == ["recall"]:
        print(recall(int(sys.argv[2])))
    else:
        raise SystemExit(__doc__)
