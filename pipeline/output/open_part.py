"""The Parquet part being filled on the driver, and when it must close (pure: no I/O).

Why the driver decides: Ray Data bundles rows by count only, so a part cut on the workers
closed at `rows_per_file` (or `chunk_videos`) rows and never on time: a slow night of a few
videos wrote one part, and so committed one chunk, at its very end, whatever
`commit.chunk_seconds` said. Here a part closes at its row limit, or `max_seconds` after its
first row, whichever comes first, so the chunk tracker is fed on time too; the driver asks
`wait_s` how long it may wait for more rows before the part is due (`take_due`).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pyarrow as pa


class OpenPart:
    """Output rows gathered for the next part: at most `max_rows` rows, open at most
    `max_seconds` (measured on `clock`) from its first row."""

    def __init__(
        self,
        max_rows: int,
        max_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_rows < 1 or not max_seconds > 0:
            raise ValueError(f"a part needs rows and time: {max_rows} rows, {max_seconds} s")
        self.max_rows = max_rows
        self.max_seconds = max_seconds
        self.clock = clock
        self._tables: list[pa.Table] = []
        self._rows = 0
        self._opened: float | None = None  # when its first row came; None: empty

    @property
    def rows(self) -> int:
        return self._rows

    def add(self, table: pa.Table) -> list[pa.Table]:
        """Append `table`'s rows; the parts they fill, `max_rows` rows each, in order (the
        rest stays open). A part filled here is closed whatever its age."""
        full = []
        while table.num_rows:
            if self._opened is None:
                self._opened = self.clock()
            room = self.max_rows - self._rows
            head, table = table.slice(0, room), table.slice(room)
            self._tables.append(head)
            self._rows += head.num_rows
            if self._rows >= self.max_rows:
                full.append(self._close())
        return full

    def wait_s(self) -> float | None:
        """Seconds left before the part is due by time (0: due now); None while it is empty,
        when there is nothing to close and the driver may wait for rows as long as it takes."""
        if self._opened is None:
            return None
        return max(0.0, self._opened + self.max_seconds - self.clock())

    def take_due(self) -> pa.Table | None:
        """The open rows as one table if the part has been open `max_seconds`, closing it
        (None: empty, or still within its time)."""
        return self._close() if self.wait_s() == 0.0 else None

    def take(self) -> pa.Table | None:
        """The open rows as one table, closing the part (None: it is empty)."""
        return self._close() if self._rows else None

    def _close(self) -> pa.Table:
        # Blocks of one run share the clips schema; `default` promotion only reconciles a
        # column that is all null (type null) in one block with its real type in another.
        table = pa.concat_tables(self._tables, promote_options="default")
        self._tables, self._rows, self._opened = [], 0, None
        return table
