"""Nightly runs for real (local Ray, toy model, PyAV-made videos): incremental, resumable,
one writer at a time, retry of failed videos, and what the reading path shows after each."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from jobs.nightly import main as nightly_main
from jobs.nightly import night_config, run_nightly, run_retry
from model.toy.video_io import write_toy_videos
from pipeline.annotate.fingerprint import prompt_id
from pipeline.config import build_config
from pipeline.core.errors import CommitError, RunLocked
from pipeline.output.lease import RunLease
from pipeline.output.reading import read_all, read_latest

pytestmark = pytest.mark.slow

NIGHT = date(2026, 3, 1)


def _config(videos: Path, output: Path, **extra):
    raw = {
        "input": str(videos),
        "output": str(output),
        "clips": {"mode": "window", "length_s": 1.0, "stride_s": 1.0},
        "sampling": {"num_frames": 4},
        "model": {"source": "toy", "max_new_tokens": 8, "tag_max_new_tokens": 4},
        "output_options": {"rows_per_file": 3},
        "commit": {"chunk_videos": 1},
    }
    raw.update(extra)
    return build_config(raw)


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("nightly-videos")
    write_toy_videos(root, seed=21, n=3, num_frames=48, size=64)  # 2 clips each
    return root


def _clip_keys(table) -> list[tuple[str, int]]:
    return sorted(zip(table["video_uri"].to_pylist(), table["clip_index"].to_pylist(), strict=True))


def test_second_run_of_a_night_does_no_annotation(ray_session, videos, tmp_path):
    out = tmp_path / "out"
    first = run_nightly(_config(videos, out), NIGHT)
    assert (first.videos, first.skipped, first.processed) == (3, 0, 3)
    assert first.counts == {"ok": 6} and first.run_id == "nightly-2026-03-01"
    assert first.covered_s == first.video_s > 0  # back-to-back windows over whole videos
    assert not list(out.glob("_runs/*/*/plan"))  # the work plan is gone with the attempt
    assert list(out.glob("_runs/*/*/chunk-*.json"))
    before = read_all(str(out))
    second = run_nightly(_config(videos, out), NIGHT)
    assert (second.videos, second.skipped, second.processed) == (3, 3, 0)
    assert second.counts == {} and second.files == [] and second.chunks == 0
    after = read_all(str(out))
    assert after.num_rows == before.num_rows == 6  # no new row was written
    assert _clip_keys(read_latest(str(out))) == _clip_keys(before)
    # a new video arriving: only it is processed
    write_toy_videos(tmp_path / "more", seed=22, n=1, num_frames=48, size=64)
    new = next((tmp_path / "more").glob("*.mp4"))
    extra = videos.parent / f"{videos.name}-plus"
    extra.mkdir(exist_ok=True)
    for path in [*videos.glob("*.mp4"), new]:
        (extra / (path.name if path != new else "new.mp4")).write_bytes(path.read_bytes())
    third = run_nightly(_config(extra, out), date(2026, 3, 2))
    assert third.processed == 4  # other URIs: the copies are other videos to the pipeline
    fourth = run_nightly(_config(extra, out), date(2026, 3, 3))
    assert fourth.processed == 0


def test_changed_prompt_reannotates_every_clip_once(ray_session, videos, tmp_path):
    out = tmp_path / "out"
    run_nightly(_config(videos, out), NIGHT)
    changed = _config(videos, out, prompts={"caption": "Say what moves."})
    summary = run_nightly(changed, date(2026, 3, 2))
    assert summary.processed == 3 and summary.counts == {"ok": 6}
    latest = read_latest(str(out))
    assert latest.num_rows == 6 and len(set(_clip_keys(latest))) == 6
    assert set(latest["prompt_id"].to_pylist()) == {prompt_id(changed.prompts)}
    assert read_all(str(out)).num_rows == 12  # history kept: both annotations committed
    assert run_nightly(changed, date(2026, 3, 3)).processed == 0


def test_retry_redoes_only_failed_videos(ray_session, videos, tmp_path):
    out = tmp_path / "out"
    inputs = tmp_path / "in"
    inputs.mkdir()
    good = sorted(videos.glob("*.mp4"))[0]
    (inputs / "good.mp4").write_bytes(good.read_bytes())
    (inputs / "later.mp4").write_bytes(b"not yet a video")
    config = _config(inputs, out)
    first = run_nightly(config, NIGHT)
    assert first.counts == {"ok": 2, "decode_error": 1}
    (inputs / "later.mp4").write_bytes(good.read_bytes())  # the object is fixed
    nothing = run_nightly(config.model_copy(update={"input": str(inputs / "good.mp4")}), NIGHT)
    assert nothing.processed == 0
    summary = run_retry(config)
    assert summary.run_id.startswith("retry-") and (summary.skipped, summary.processed) == (1, 1)
    latest = read_latest(str(out)).to_pylist()
    assert sorted((Path(r["video_uri"]).name, r["clip_index"], r["status"]) for r in latest) == [
        ("good.mp4", 0, "ok"), ("good.mp4", 1, "ok"),
        ("later.mp4", 0, "ok"), ("later.mp4", 1, "ok"),
    ]  # fmt: skip
    again = run_retry(config)
    assert again.processed == 0


def test_a_second_concurrent_writer_of_the_night_is_refused(ray_session, videos, tmp_path):
    out = tmp_path / "out"
    config = _config(videos, out)
    lease = RunLease(str(out), night_config(config, NIGHT).run_id, ttl_s=60)
    lease.acquire()
    try:
        with pytest.raises(RunLocked, match="is being written by"):
            run_nightly(config, NIGHT)
    finally:
        lease.release()
    assert read_all(str(out)).num_rows == 0


def test_a_run_that_cannot_write_says_so_and_keeps_what_was_committed(ray_session, videos,
                                                                       tmp_path):  # fmt: skip
    out = tmp_path / "out"
    run_nightly(_config(videos, out), NIGHT)
    before = read_latest(str(out))
    blocked = out / "clips" / "run_date=2026-03-02" / "run_id=nightly-2026-03-02"
    blocked.parent.mkdir(parents=True)
    blocked.write_text("a file where the run's folder must go")
    changed = _config(videos, out, prompts={"caption": "Say what moves."})
    with pytest.raises(CommitError, match=r"could not write .*run_id=nightly-2026-03-02"):
        run_nightly(changed, date(2026, 3, 2))
    assert read_latest(str(out)).equals(before)


def test_job_entry_point_says_what_it_did(ray_session, videos, tmp_path, capsys):
    out = tmp_path / "out"
    args = [
        "--input", str(videos), "--output", str(out), "--date", "2026-03-04",
        "--set", "clips.mode=whole", "--set", "sampling.num_frames=4",
        "--set", "model.max_new_tokens=4", "--set", "model.tag_max_new_tokens=2",
    ]  # fmt: skip
    assert nightly_main(args) == 0
    first = capsys.readouterr().out
    assert "listed 3 videos, 0 skipped as done, 3 processed" in first
    assert nightly_main(args) == 0
    second = capsys.readouterr().out
    assert "listed 3 videos, 3 skipped as done, 0 processed" in second
    assert "nothing to do" in second
    record = json.loads((out / "_runs" / "nightly-2026-03-04.json").read_text())
    assert record["rows"] == 3 and len(record["attempts"]) == 2


@pytest.mark.slow
def test_nightly_job_reads_the_config_clipnote_submit_sends(
    ray_session, tmp_path, monkeypatch, capsys
):
    """`clipnote submit --nightly` runs `python -m jobs.nightly --config-env VAR --date D`."""
    from jobs.submit import CONFIG_ENV

    videos, out = tmp_path / "videos", tmp_path / "out"
    write_toy_videos(videos, seed=9, n=2, num_frames=24, size=64)
    config = _config(videos, out)
    monkeypatch.setenv(CONFIG_ENV, json.dumps(config.model_dump(mode="json")))
    assert nightly_main(["--config-env", CONFIG_ENV, "--date", "2026-03-05"]) == 0
    printed = capsys.readouterr().out
    assert "run nightly-2026-03-05: listed 2 videos, 0 skipped as done, 2 processed" in printed
    assert (out / "_runs" / "nightly-2026-03-05.json").exists()


def test_a_night_that_processed_clips_marks_them_against_those_before(ray_session, tmp_path,
                                                                       capsys):  # fmt: skip
    """Night 1 (2 videos) and night 2 (a third, the byte-for-byte copy of the first) through
    the job entry point: each night's footage dedup decides only that night's clips, and
    night 2's copy is marked a duplicate of the clip night 1 kept. A night with nothing to
    do decides nothing (no dedup line)."""
    from pipeline.output.dedup_store import read_decisions

    videos, out = tmp_path / "videos", tmp_path / "out"
    made = write_toy_videos(videos, seed=5, n=2, num_frames=24, size=64)
    common = [
        "--input", str(videos), "--output", str(out), "--set", "clips.mode=whole",
        "--set", "sampling.num_frames=4", "--set", "model.max_new_tokens=4",
        "--set", "prompts.tag_mode=none",
    ]  # fmt: skip
    assert nightly_main([*common, "--date", "2026-03-06"]) == 0
    assert "dedup footage (threshold 0.17): decided 2 new clips" in capsys.readouterr().out
    first = sorted(path for path, _ in made)[0]
    (videos / f"copy-{first.name}").write_bytes(first.read_bytes())
    assert nightly_main([*common, "--date", "2026-03-07"]) == 0
    printed = capsys.readouterr().out
    assert "decided 1 new clips: 0 kept, 1 duplicates" in printed
    assert nightly_main([*common, "--date", "2026-03-07"]) == 0
    assert "dedup" not in capsys.readouterr().out
    decided = read_decisions(str(out), "footage")
    uri_of = dict(zip(decided["clip_id"].to_pylist(), decided["video_uri"].to_pylist(),
                      strict=True))  # fmt: skip
    pairs = {
        Path(uri).name: (Path(uri_of[dup]).name if dup else None)
        for uri, dup in zip(decided["video_uri"].to_pylist(),
                            decided["duplicate_of"].to_pylist(), strict=True)
    }  # fmt: skip
    assert pairs[f"copy-{first.name}"] == first.name
    assert sum(v is None for v in pairs.values()) == 2
