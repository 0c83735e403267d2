"""Rows on a terminal of any width: a table when it fits, one record per block when not.

A table squeezed into 80 columns cut run ids to "202…" and states to "fin…", and a wide
`SELECT *` became 76 lines of one-letter columns. So nothing here is ever cut: a table is
printed only when every value fits whole at the console's width; otherwise each row becomes a
block of `name  value` lines (as psql's expanded mode), and text too long for its line goes on
over the next lines. A word is never broken: one longer than the room beside the names (a
path, a URI) goes whole on a line of its own, unindented, so it can be copied; only such a
line is wider than the console.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import Any

from rich.cells import cell_len

MIN_VALUE_WIDTH = 24
"""Narrower than this beside the names, values go on their own lines, indented by two."""


def table_width(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> int:
    """Columns a rich table with the default box needs to show every cell whole."""
    widths = [cell_len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            longest = max((cell_len(line) for line in cell.split("\n")), default=0)
            widths[i] = max(widths[i], longest)
    return sum(widths) + 3 * len(widths) + 1


def wrap(text: str, width: int, indent: str = "", first: str = "") -> list[str]:
    """`first` + `text` in lines of at most `width` columns, continuation lines after
    `indent`; a word longer than a line is never broken: it gets a line of its own."""
    lines: list[str] = []
    for n, paragraph in enumerate(text.split("\n")):
        lead = first if n == 0 else indent
        room = max(width - max(len(lead), len(indent)), 1)
        parts = textwrap.wrap(paragraph, room, break_long_words=False, break_on_hyphens=False) or [
            ""
        ]
        lines.append(lead + parts[0])
        lines += [indent + part for part in parts[1:]]
    return [line.rstrip() for line in lines]


def record_lines(
    headers: Sequence[str], row: Sequence[str], width: int, indent: str = ""
) -> list[str]:
    """One record as `name  value` lines that fit `width`; a value holding a word too long
    for the room beside the names goes under its name, unindented, and whole."""
    key_width = max((len(h) for h in headers), default=0) + 2
    room = width - len(indent) - key_width
    lines: list[str] = []
    for name, value in zip(headers, row, strict=True):
        longest = max((cell_len(word) for word in value.split()), default=0)
        if room >= MIN_VALUE_WIDTH and longest <= room:
            first = indent + name.ljust(key_width)
            lines += wrap(value, width, indent=" " * len(first), first=first)
        elif longest <= width - len(indent) - 2:
            lines.append(indent + name)
            lines += wrap(value, width, indent=indent + "  ", first=indent + "  ")
        else:
            lines.append(indent + name)
            lines += wrap(value, width)
    return lines


def print_rows(
    console: Any,
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    right: Sequence[str] = (),
    title: str | None = None,
) -> None:
    """`rows` (strings) as a table if it fits the console, else one block per row."""
    width = console.width
    if table_width(headers, rows) <= width:
        from rich.table import Table

        table = Table(title=title)
        for name in headers:
            table.add_column(name, justify="right" if name in right else "left", no_wrap=True)
        for row in rows:
            table.add_row(*row)
        console.print(table, markup=False, highlight=False)
        return
    out: list[str] = [title] if title else []
    for n, row in enumerate(rows):
        out.append(f"-[ row {n + 1} ]" + "-" * 20)
        out += record_lines(headers, row, width)
    console.print("\n".join(out), soft_wrap=True, markup=False, highlight=False)
