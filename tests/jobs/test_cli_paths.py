"""Reading commands on a wrong path, and what `--out` wrote, through the real `clipnote`
process (issue 19, case 4): `query`, `stats` and `report` on a path that does not exist
answered "0 rows", "no committed runs" or an empty report, with exit 0; `query --out` said
nothing at all. The commands run in this interpreter (`clipnote_here`), a second each saved."""

from __future__ import annotations

from pathlib import Path

import pyarrow.csv as pacsv
import pytest

from tests.jobs.cli_process import clipnote_here
from tests.jobs.edges import edge_output


def _clipnote(*args: str, cwd: Path):
    return clipnote_here(*args, cwd=cwd, columns=120)


COMMANDS = {
    "query": ["SELECT count(*) FROM clips"],
    "stats": [],
    "report": ["--out", "report.html"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_path_that_does_not_exist_exits_2_in_one_line(command, tmp_path):
    missing = tmp_path / "no-such-output"
    done = _clipnote(command, str(missing), *COMMANDS[command], cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.splitlines() == [f"clipnote: output: no such folder: {missing}"]
    assert done.stdout == "" and not (tmp_path / "report.html").exists()


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_folder_without_clipnote_output_exits_2_in_one_line(command, tmp_path):
    videos = tmp_path / "videos"  # the input, given for the output
    videos.mkdir()
    (videos / "a.mp4").write_bytes(b"a video")
    done = _clipnote(command, str(videos), *COMMANDS[command], cwd=tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.splitlines() == [
        f"clipnote: output: no clipnote output in {videos} (no _runs/ folder)"
    ]
    assert done.stdout == "" and not (tmp_path / "report.html").exists()


def test_query_out_says_how_many_rows_it_wrote_and_where(tmp_path):
    output = edge_output(str(tmp_path / "out"))
    work = tmp_path / "work"
    work.mkdir()
    done = _clipnote(
        "query", output, "SELECT clip_id FROM clips ORDER BY 1", "--format", "csv",
        "--out", "sub/ids.csv", cwd=work,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    written = work / "sub" / "ids.csv"
    assert done.stdout.splitlines() == ["wrote 2 rows (csv) to", str(written)]
    assert pacsv.read_csv(written).column("clip_id").to_pylist() == ["id0:0", "id1:0"]


def test_an_empty_output_is_still_an_output(tmp_path):
    """An output whose first run has not committed yet (only `_runs/`) is no mistake."""
    output = tmp_path / "out"
    (output / "_runs").mkdir(parents=True)
    done = _clipnote("stats", str(output), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["no committed runs"]
    assert Path(output).is_dir()
