"""`benchmarks.reliability.write_report` rewrites its table and trials, never the sections
written by hand after them (RELIABILITY.md's cases tried on purpose)."""

from __future__ import annotations

from benchmarks.reliability import Outcome, write_report

CASES = (
    "## Cases tried on purpose\n\n| case | before | after |\n|---|---|---|\n| a | lost | kept |\n"
)


def _outcome(found: int) -> Outcome:
    return Outcome("driver SIGKILL", "moto", 6, found, 0, 6 - found, 0, {"killed": True})


def test_a_new_report_keeps_the_hand_written_sections_and_replaces_the_trials(tmp_path):
    path = tmp_path / "RELIABILITY.md"
    write_report([_outcome(4)], path, "python -m benchmarks.reliability", 60.0)
    path.write_text(path.read_text() + "\n" + CASES)
    write_report([_outcome(6)], path, "python -m benchmarks.reliability", 120.0)
    text = path.read_text()
    assert text.count("## Trials") == 1 and text.count("## Cases tried on purpose") == 1
    assert text.endswith(CASES)
    assert '"found": 6' in text and '"found": 4' not in text
    assert "(2.0 min on a 2-core CPU machine" in text


def test_a_first_report_has_no_other_section(tmp_path):
    path = tmp_path / "R.md"
    write_report([_outcome(6)], path, "cmd", 60.0)
    text = path.read_text()
    assert [line for line in text.splitlines() if line.startswith("## ")] == ["## Trials"]
    assert "| driver SIGKILL | moto | 1 |" in text
