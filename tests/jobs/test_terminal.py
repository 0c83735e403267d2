"""Rows at any terminal width (`jobs.terminal`): a table only when every value fits whole,
else one block per row; words (ids, paths) are never cut nor broken."""

from __future__ import annotations

import io

from rich.console import Console

from jobs.terminal import print_rows, record_lines, table_width, wrap


def _console(width: int) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=width, color_system=None), out


def test_table_width_counts_cells_padding_and_borders():
    """What rich's default table needs to print every cell whole (checked: 17 columns)."""
    # widths 5 ("run-2") and 5 ("state"), each +2 padding, and 3 borders: 5+5+4+3 = 17
    assert table_width(["run", "state"], [["r1", "done"], ["run-2", "open"]]) == 17
    assert table_width(["a"], [["x\nlonger"]]) == 6 + 2 + 2  # the longest line of a cell


def test_wrap_breaks_at_spaces_and_never_inside_a_word():
    assert wrap("a b c d", 3) == ["a b", "c d"]
    assert wrap("one two", 20, indent="  ", first="- ") == ["- one two"]
    assert wrap("one two three", 8, indent="  ", first="- ") == ["- one", "  two", "  three"]
    assert wrap("s3://bucket/a/very/long/key.mp4 next", 10) == [
        "s3://bucket/a/very/long/key.mp4", "next",
    ]  # fmt: skip


def test_record_lines_put_values_beside_names_under_them_or_alone():
    headers, row = ["id", "caption"], ["r1", "a red circle moves left"]
    assert record_lines(headers, row, 80) == ["id       r1", "caption  a red circle moves left"]
    # 9 columns beside the names is less than MIN_VALUE_WIDTH: values under their names
    assert record_lines(headers, row, 18) == [
        "id", "  r1", "caption", "  a red circle", "  moves left",
    ]  # fmt: skip
    path = "/" + "x" * 40
    # too long for the room beside the names: under the name, whole and unindented
    assert record_lines(["uri"], [path], 30) == ["uri", path]


def test_print_rows_is_a_table_when_it_fits_and_blocks_when_not():
    headers, rows = ["run", "state"], [["20261204T114741Z-30b94c", "finished"]]
    wide, out = _console(80)
    print_rows(wide, headers, rows)
    assert "│ 20261204T114741Z-30b94c │ finished │" in out.getvalue()
    narrow, out = _console(30)
    print_rows(narrow, headers, rows)
    assert out.getvalue().splitlines() == [
        "-[ row 1 ]--------------------",
        "run",
        "  20261204T114741Z-30b94c",
        "state",
        "  finished",
    ]
