"""`clipnote run` as a user runs it: exit codes, the summary, config errors before any Ray."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from jobs.cli import app
from model.toy.video_io import write_toy_videos
from pipeline.output.committed import committed_runs, read_committed
from tests.jobs.cli_process import clipnote_here

ROOT = Path(__file__).resolve().parents[2]


def _clipnote(*args: str, cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess:
    """`python -m jobs.cli ...` in a fresh process, the way the console script runs it."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "COLUMNS": "250",  # a wide terminal: rich does not fold the paths in the summary
        "RAY_ADDRESS": "",  # never join a cluster another test started
        "RAY_DATA_DISABLE_PROGRESS_BARS": "1",
    }
    return subprocess.run(
        [sys.executable, "-m", "jobs.cli", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def _write_config(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture()
def tiny_run_config(tmp_path, tiny_checkpoint) -> tuple[Path, Path, Path]:
    videos = tmp_path / "videos"
    write_toy_videos(videos, seed=3, n=3)
    (videos / "broken.mp4").write_bytes(b"not a video at all")
    output = tmp_path / "output"
    config = _write_config(
        tmp_path / "run.yaml",
        f"""
        input: {videos}
        output: {output}
        run_id: cli-test
        clips: {{length_s: 1.0, stride_s: 1.0}}
        sampling: {{num_frames: 4}}
        model: {{source: {tiny_checkpoint}, max_new_tokens: 4, tag_max_new_tokens: 4}}
        resources: {{annotate_actors: 1, gpus_per_actor: 0}}
        """,
    )
    return config, videos, output


def test_run_exits_0_and_prints_counts_and_output(tiny_run_config, tmp_path, ray_session):
    """In this interpreter, on the session's Ray (tests/jobs/test_cli_local_run.py runs the
    real process and its own Ray)."""
    config, _videos, output = tiny_run_config
    result = clipnote_here("run", str(config), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "clipnote run cli-test" in out
    assert _summary_value(out, "videos") == "4"
    assert _summary_value(out, "clips ok") == "6"  # 3 toy videos x two 1 s clips
    assert _summary_value(out, "clips decode_error") == "1"
    assert _summary_value(out, "output") == str(output)
    assert str(output / "_runs" / "cli-test.json") in out
    # and the output is really there, committed
    (record,) = committed_runs(str(output))
    assert record.run_id == "cli-test" and record.rows == 7
    table = read_committed(str(output))
    assert table.num_rows == 7
    assert sorted(table.column("status").to_pylist()) == ["decode_error"] + ["ok"] * 6
    assert json.loads((output / "_runs" / "cli-test.json").read_text())["videos"] == 4


def _summary_value(out: str, key: str) -> str | None:
    """The value of `key` in the run summary: `  key  value` lines, and a path whole on the
    line after its `key:` line."""
    lines = out.splitlines()
    for n, line in enumerate(lines):
        if line == f"{key}:" and n + 1 < len(lines):
            return lines[n + 1]
        name, _, value = line.strip().partition("  ")
        if line.startswith("  ") and name == key:
            return value.strip()
    return None


def test_typo_key_exits_2_naming_the_field_before_any_ray_work(tmp_path):
    config = _write_config(
        tmp_path / "run.yaml",
        f"""
        input: {tmp_path / "videos"}
        output: {tmp_path / "output"}
        clips: {{lenght_s: 5}}
        """,
    )
    code = textwrap.dedent(
        f"""
        import sys
        from typer.testing import CliRunner
        from jobs.cli import app
        result = CliRunner().invoke(app, ["run", {str(config)!r}])
        print("EXIT", result.exit_code)
        print(result.output)
        print("RAY_IMPORTED", "ray" in sys.modules)
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "200"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "EXIT 2" in proc.stdout
    assert "clips.lenght_s" in proc.stdout
    assert "RAY_IMPORTED False" in proc.stdout
    assert not (tmp_path / "output").exists()


def test_typo_key_in_a_real_process_exits_2(tmp_path):
    config = _write_config(
        tmp_path / "run.yaml",
        f"input: {tmp_path / 'videos'}\noutput: {tmp_path / 'out'}\nclips: {{lenght_s: 5}}\n",
    )
    result = _clipnote("run", str(config), cwd=tmp_path, timeout=120)
    assert result.returncode == 2
    assert "clips.lenght_s" in result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--set", "clips.lenght_s=3"], "clips.lenght_s"),
        (["--set", "model.batch_size=0"], "model.batch_size"),
        (["--set", "sampling.mode=random"], "sampling.mode"),
        (["--set", "clips.length_s"], "key=value"),
        ([], "input"),
    ],
)
def test_bad_overrides_exit_2_naming_the_field(tmp_path, args, field):
    base = [] if not args else ["--input", str(tmp_path), "--output", str(tmp_path / "o")]
    result = CliRunner().invoke(app, ["run", *base, *args], env={"COLUMNS": "200"})
    assert result.exit_code == 2, result.output
    assert field in result.output
    assert not (tmp_path / "o").exists()


def test_yaml_syntax_error_exits_2(tmp_path):
    config = _write_config(tmp_path / "bad.yaml", "input: [unclosed\noutput: x\n")
    result = CliRunner().invoke(app, ["run", str(config)], env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert "not valid YAML" in result.output


def test_missing_config_file_exits_2(tmp_path):
    result = CliRunner().invoke(app, ["run", str(tmp_path / "nope.yaml")], env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert "nope.yaml" in result.output


def _committed_files(output: Path) -> list[str]:
    """Every file any record under `_runs/` names (chunk and run records alike)."""
    named: list[str] = []
    for record in sorted((output / "_runs").rglob("*.json")):
        named.extend(json.loads(record.read_text()).get("files", []))
    return named


def test_relative_paths_from_another_folder_commit_files_that_exist(
    tmp_path, tiny_checkpoint, ray_session
):
    """Caught: with `--output out` the sink's clean-up compared the record's relative names
    with fsspec's absolute paths and deleted the run's own Parquet; `--set clips.length_s`
    kept a 10 s stride; a non-UTF-8 file name crashed the run at the Arrow conversion. Run in
    this interpreter from `work/`, on the session's Ray."""
    data, work = tmp_path / "data", tmp_path / "work"
    write_toy_videos(data / "videos", seed=5, n=2)
    os.rename(data / "videos" / "clip_00000.mp4", os.fsencode(data / "videos") + b"/caf\xe9.mp4")
    (tmp_path / "conf").mkdir()
    work.mkdir()
    config = _write_config(
        tmp_path / "conf" / "run.yaml",
        """
        clips: {length_s: 1.0}
        sampling: {num_frames: 4}
        model: {max_new_tokens: 4, tag_max_new_tokens: 4}
        resources: {gpus_per_actor: 0}
        """,
    )
    result = clipnote_here(
        "run", "../conf/run.yaml", "--input", "../data/videos", "--output", "out",
        "--model", os.path.relpath(tiny_checkpoint, work), "--set", "clips.length_s=0.5",
        cwd=work,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert config.exists()
    output = work / "out"
    named = _committed_files(output)
    assert named, "no record names a file"
    for uri in named:
        assert os.path.isabs(uri) and uri.startswith(str(output)), uri
        assert pq.read_table(uri).num_rows > 0
    table = read_committed(str(output))
    rows = table.to_pylist()
    assert {Path(r["video_uri"]).name for r in rows} == {"caf\\xe9.mp4", "clip_00001.mp4"}
    assert all(r["status"] == "ok" for r in rows), [r["error"] for r in rows]
    # 0.5 s windows back to back over two 2 s videos: 4 clips each, every second covered.
    assert sorted((r["start_s"], r["end_s"]) for r in rows) == [
        (0.0, 0.5), (0.0, 0.5), (0.5, 1.0), (0.5, 1.0),
        (1.0, 1.5), (1.0, 1.5), (1.5, 2.0), (1.5, 2.0),
    ]  # fmt: skip
    assert _summary_value(result.stdout, "covered") == "4.0 of 4.0 video seconds (100%)"
