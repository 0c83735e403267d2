"""Reading what a run committed, through the one reading path."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.core.storage import StorageOptions
from pipeline.output.reading import read_all, read_latest, snapshot
from pipeline.output.records import RunRecord


def committed_runs(output: str, options: StorageOptions | None = None) -> list[RunRecord]:
    """Run records under `output`, oldest first (attempts that ended)."""
    records = [RunRecord.from_dict(r) for r in snapshot(output, options).runs.values()]
    return sorted(records, key=lambda r: r.committed_at or "")


def read_committed(
    output: str, options: StorageOptions | None = None, *, latest: bool = True
) -> pa.Table:
    """Committed rows: each clip's latest annotation once (`latest=False`: every committed row
    with its run). Uncommitted files are never read."""
    if latest:
        return read_latest(output, options)
    return read_all(output, options)


def rows_of_run(table: pa.Table, run_id: str) -> pa.Table:
    return table.filter(pc.equal(table["run_id"], run_id))
