"""The part the driver fills (pure): when it closes, on its rows or its age, on a fake clock.

Tables here are one-column tables whose values are row numbers, so which rows went into which
part can be read straight off them.
"""

from __future__ import annotations

import pyarrow as pa
import pytest

from pipeline.output.open_part import OpenPart


def _rows(first: int, n: int) -> pa.Table:
    return pa.table({"n": list(range(first, first + n))})


def _values(table: pa.Table | None) -> list[int] | None:
    return None if table is None else table["n"].to_pylist()


def test_a_part_is_due_its_seconds_after_its_first_row_not_its_last():
    """max 60 s: first row at t=100 -> due at 160, whatever came at 150; the next part's
    clock starts at its own first row (t=170 -> due at 230), not when the last one closed."""
    now = [100.0]
    part = OpenPart(max_rows=1000, max_seconds=60, clock=lambda: now[0])
    assert part.wait_s() is None and part.take_due() is None  # empty: nothing to wait for
    assert part.add(_rows(0, 2)) == []
    now[0] = 150.0
    assert part.add(_rows(2, 1)) == []
    assert part.wait_s() == 10.0 and part.take_due() is None
    now[0] = 159.9
    assert part.take_due() is None
    now[0] = 160.0  # exactly max_seconds after the first row: due (inclusive)
    assert part.wait_s() == 0.0
    assert _values(part.take_due()) == [0, 1, 2]
    assert part.wait_s() is None and part.rows == 0
    now[0] = 170.0
    part.add(_rows(3, 1))
    now[0] = 229.0
    assert part.wait_s() == 1.0 and part.take_due() is None
    now[0] = 300.0  # long overdue (the driver was busy): still 0, never negative
    assert part.wait_s() == 0.0 and _values(part.take_due()) == [3]


def test_rows_fill_parts_of_max_rows_and_the_rest_stays_open():
    """max 4 rows: 3 rows, then 7 -> parts [0..3] and [4..7], rows 8-9 open since t=5 (the
    block that filled the earlier parts came then), closed at the end by `take`."""
    now = [0.0]
    part = OpenPart(max_rows=4, max_seconds=60, clock=lambda: now[0])
    assert part.add(_rows(0, 3)) == []
    now[0] = 5.0
    full = part.add(_rows(3, 7))
    assert [_values(t) for t in full] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert part.rows == 2 and part.wait_s() == 60.0
    assert _values(part.take()) == [8, 9]
    assert part.take() is None and part.wait_s() is None


def test_a_block_of_exactly_max_rows_leaves_nothing_open():
    part = OpenPart(max_rows=2, max_seconds=1, clock=lambda: 0.0)
    assert [_values(t) for t in part.add(_rows(0, 2))] == [[0, 1]]
    assert part.wait_s() is None and part.add(_rows(2, 0)) == []


def test_blocks_with_an_all_null_column_join_blocks_that_have_values():
    part = OpenPart(max_rows=10, max_seconds=1, clock=lambda: 0.0)
    part.add(pa.table({"n": [0], "caption": pa.array([None], pa.null())}))
    part.add(pa.table({"n": [1], "caption": ["a cat"]}))
    table = part.take()
    assert table.schema.field("caption").type == pa.string()
    assert table["caption"].to_pylist() == [None, "a cat"]


@pytest.mark.parametrize(("rows", "seconds"), [(0, 1.0), (1, 0.0), (1, -1.0)])
def test_a_part_needs_rows_and_time(rows, seconds):
    with pytest.raises(ValueError):
        OpenPart(max_rows=rows, max_seconds=seconds)
