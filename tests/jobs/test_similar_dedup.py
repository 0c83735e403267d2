"""`clipnote dedup`, `clipnote similar` and `duplicate_of`, through the CLI process, on a
corpus of duplicate footage the test generates (`jobs/toy/duplicates.py`): originals, their
re-encoded, rescaled, cropped and shifted copies, and different footage with the same caption.
The answers come from the corpus's own truth, not from the code under test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from jobs.toy.duplicates import CorpusVideo, duplicate_pairs, write_duplicate_corpus
from tests.jobs.cli_process import run_clipnote

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def corpus_output(tmp_path_factory) -> tuple[Path, list[CorpusVideo], Path]:
    root = tmp_path_factory.mktemp("dups")
    videos = write_duplicate_corpus(root / "videos", seed=11, originals=8, same_caption=3)
    config = root / "run.yaml"
    config.write_text(
        f"input: {root / 'videos'}\noutput: {root / 'out'}\nrun_id: dups\n"
        "clips: {mode: whole}\nsampling: {mode: uniform}\n"
        "model: {source: toy, dtype: float32, max_new_tokens: 16}\nprompts: {tag_mode: none}\n"
        "resources: {decode_cpus: 1, annotate_actors: 1, cpus_per_actor: 1, gpus_per_actor: 0}\n"
    )
    ran = run_clipnote("run", str(config), cwd=root, RAY_ADDRESS="")
    assert ran.returncode == 0, ran.stderr[-3000:]
    return root / "out", videos, root


def _query(out: Path, sql: str, cwd: Path) -> list[dict]:
    result = run_clipnote("query", str(out), sql, "--format", "json", cwd=cwd)
    assert result.returncode == 0, result.stderr[-2000:]
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def test_footage_dedup_finds_the_copies_and_only_them(corpus_output):
    """Pairs put in one group vs the corpus's same-footage pairs: precision and recall at
    least 0.95; a same-caption twin is never grouped with its original; a second dedup decides
    nothing again (each clip once)."""
    out, videos, cwd = corpus_output
    first = run_clipnote("dedup", str(out), cwd=cwd)
    assert first.returncode == 0, first.stderr[-2000:]
    assert f"decided {len(videos)} new clips" in first.stdout
    rows = _query(out, "SELECT video_uri, clip_id, duplicate_of FROM clips", cwd)
    name_of = {r["clip_id"]: Path(r["video_uri"]).name for r in rows}
    group = {
        name_of[r["clip_id"]]: name_of.get(r["duplicate_of"], name_of[r["clip_id"]]) for r in rows
    }
    assert len(group) == len(videos)
    predicted = {frozenset((a, b)) for a in group for b in group if a < b and group[a] == group[b]}
    truth = duplicate_pairs(videos)
    hits = len(predicted & truth)
    assert hits / max(len(predicted), 1) >= 0.95 and hits / len(truth) >= 0.95
    for video in videos:
        if video.kind == "same_caption":
            original = video.name.replace("same_caption", "original")
            assert group[video.name] != group[original]
    again = run_clipnote("dedup", str(out), cwd=cwd)
    assert again.returncode == 0 and "decided 0 new clips" in again.stdout


def test_a_copy_s_nearest_clip_is_its_original(corpus_output):
    """`clipnote similar COPY --k 1` names the copy's original, for every copy; the SQL macro
    agrees for one of them."""
    out, videos, cwd = corpus_output
    rows = _query(out, "SELECT video_uri, clip_id FROM clips", cwd)
    clip_of = {Path(r["video_uri"]).name: r["clip_id"] for r in rows}
    for video in videos:
        if video.source is None:
            continue
        result = run_clipnote(
            "similar", str(out), clip_of[video.name], "--k", "1", "--format", "json", cwd=cwd
        )
        assert result.returncode == 0, result.stderr[-2000:]
        (nearest,) = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
        assert Path(nearest["video_uri"]).name == video.source, video.name
    copy = next(v for v in videos if v.source)
    (sql,) = _query(
        out, f"SELECT video_uri FROM similar_clips('{clip_of[copy.name]}', k := 1)", cwd
    )
    assert Path(sql["video_uri"]).name == copy.source


def test_an_unknown_clip_is_one_line_and_exit_2(corpus_output):
    out, _videos, cwd = corpus_output
    result = run_clipnote("similar", str(out), "no-such-clip:0", cwd=cwd)
    assert result.returncode == 2 and "no-such-clip:0" in result.stderr


LOOKUP = """
import sys
from pipeline.output.similar import similar
print(similar(sys.argv[1], sys.argv[2], 1).num_rows)
"""


@pytest.mark.trials  # 80 fresh interpreters (about 40 s): among the long trials
def test_a_lookup_never_aborts_at_exit(corpus_output):
    """`similar` printed its answer, then the process aborted at exit ("terminate called
    without an active exception", exit -6): in 16 of 80 lookups run 4 at a time with Arrow's
    threaded reads from a Python file, and still in 3 of 80 on one thread, where an Arrow I/O
    thread freed a buffer read from the Python file during exit (a core dump showed it). 80
    lookups, 8 at a time, each in a fresh interpreter, all exit 0."""
    import os
    import subprocess
    import sys
    from concurrent.futures import ThreadPoolExecutor

    from tests.jobs.cli_process import ROOT

    out, _videos, cwd = corpus_output
    (clip,) = _query(out, "SELECT clip_id FROM clips ORDER BY clip_id LIMIT 1", cwd)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def lookup(_: int) -> tuple[int, str]:
        done = subprocess.run(
            [sys.executable, "-c", LOOKUP, str(out), clip["clip_id"]],
            env=env, cwd=cwd, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        return done.returncode, done.stderr.strip()[-200:]

    assert lookup(0) == (0, "")  # brings the saved index up to date before the crowd
    with ThreadPoolExecutor(8) as pool:
        failed = [r for r in pool.map(lookup, range(80)) if r[0] != 0]
    assert failed == []
