"""Config mistakes through the real CLI process: a misspelt key says which one was meant, a
broken YAML file names the file, line and column in at most two lines, exit 2 every time."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.jobs.cli_process import run_clipnote


def _clipnote(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return run_clipnote(*args, cwd=cwd, columns=250)


def _error_lines(result: subprocess.CompletedProcess) -> list[str]:
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-3000:]
    assert "Traceback" not in result.stderr + result.stdout
    return [line.strip() for line in result.stderr.splitlines() if line.strip()]


def test_a_misspelt_key_names_the_key_that_was_meant(tmp_path: Path) -> None:
    (tmp_path / "typo.yaml").write_text(
        f"input: {tmp_path}\noutput: {tmp_path / 'out'}\nclips:\n  lenght_s: 3\n"
    )
    lines = _error_lines(_clipnote("run", "typo.yaml", cwd=tmp_path))
    assert lines == [
        "clipnote: invalid config:",
        "clips.lenght_s: unknown key; did you mean clips.length_s?",
    ]


def test_a_misspelt_override_and_section_are_named_too(tmp_path: Path) -> None:
    result = _clipnote(
        "run", "--input", str(tmp_path), "--output", str(tmp_path / "out"),
        "--set", "modle.batch_size=2", cwd=tmp_path,
    )  # fmt: skip
    assert _error_lines(result)[1:] == ["modle: unknown key; did you mean model?"]


def test_an_unknown_key_far_from_any_lists_the_valid_ones(tmp_path: Path) -> None:
    (tmp_path / "far.yaml").write_text(
        f"input: {tmp_path}\noutput: {tmp_path / 'out'}\ncommit:\n  zzz: 1\n"
    )
    lines = _error_lines(_clipnote("run", "far.yaml", cwd=tmp_path))
    assert lines[1].startswith("commit.zzz: unknown key; valid keys here: chunk_videos, ")


def test_broken_yaml_names_file_line_and_column_in_at_most_two_lines(tmp_path: Path) -> None:
    (tmp_path / "broken.yaml").write_text("input: a\noutput: b\nclips:\n  length_s: [1, 2\nx: 1\n")
    lines = _error_lines(_clipnote("run", "broken.yaml", cwd=tmp_path))
    assert len(lines) <= 2
    assert lines[0].startswith("clipnote: broken.yaml:5:2: not valid YAML: ")
    assert "<unicode string>" not in lines[0]
