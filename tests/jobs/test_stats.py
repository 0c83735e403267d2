"""`clipnote stats`: per-run health of a real pipeline's output (results_world, S3 on loopback)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from jobs.stats import collect_stats
from pipeline.core.storage import StorageOptions
from tests.jobs.cli_process import Ran, clipnote_here

pytestmark = pytest.mark.slow


def _stats_cli(world, *args: str) -> Ran:
    """The CLI in this interpreter (a fresh one per call cost a second or two: tests/jobs/
    test_cli_local_run.py runs `stats` as its own process)."""
    return clipnote_here(
        "stats", world.output, "--endpoint-url", world.endpoint, *args, cwd=Path.cwd()
    )


def test_stats_per_run(results_world):
    world = results_world
    stats = {s.run_id: s for s in collect_stats(world.output, StorageOptions(world.endpoint))}
    assert list(stats) == ["night-1", "night-2"]
    first, second = stats["night-1"], stats["night-2"]
    assert (first.state, first.videos_listed, first.videos) == ("finished", 8, 8)
    assert (first.clips_ok, first.error_rows) == (len(world.truth), 1)
    [kind] = first.errors
    assert kind.status == "decode_error" and kind.rows == 1
    assert "not a readable video" in kind.top_reasons[0][0] and kind.top_reasons[0][1] == 1
    truth_tags = Counter(t for clip in world.truth.values() for t in clip.tags)
    assert dict(first.top_tags) == dict(truth_tags.most_common(10)) or (
        # ties at the cut may fall either way; every count shown must be the truth's
        all(truth_tags[t] == n for t, n in first.top_tags)
    )
    assert (second.videos, second.clips_ok, second.error_rows) == (2, 2, 0)
    for s in (first, second):
        assert s.wall_s and s.wall_s > 0 and s.clips_per_s == pytest.approx(s.rows / s.wall_s)
        assert s.decode_s > 0 and s.annotate_s > 0 and s.tokens > 0
        assert s.tokens_per_clip == pytest.approx(s.tokens / s.clips_ok)
        assert s.decode_s_per_clip > 0 and s.annotate_s_per_clip > 0


def test_stats_cli_table_and_json(results_world):
    world = results_world
    done = _stats_cli(world)
    assert done.returncode == 0, done.stderr
    assert "night-1" in done.stdout and "night-2" in done.stdout
    assert "decode_error: 1" in done.stdout and "not a readable video" in done.stdout
    done = _stats_cli(world, "--json", "--run", "night-2")
    assert done.returncode == 0, done.stderr
    runs = json.loads(done.stdout)["runs"]
    assert [r["run_id"] for r in runs] == ["night-2"]
    assert runs[0]["clips_ok"] == 2 and runs[0]["errors"] == []
    assert {t["tag"] for t in runs[0]["top_tags"]} == {
        t for uri in world.rerun for t in world.truth[uri].tags
    }


def test_stats_unknown_run_is_exit_2(results_world):
    done = _stats_cli(results_world, "--run", "no-such-run")
    assert done.returncode == 2 and "no-such-run" in done.stderr
