"""The committed state of an output: which run and chunk records are visible, and so which
data files readers may read (the rules are in `pipeline.output.reading`).

Records are kept here as the JSON they are on disk: the `runs` view shows each one whole,
including keys this version does not know. Code that acts on a record parses it into
`pipeline.output.records`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pipeline.core.storage import StorageOptions, filesystem, join, strip_scheme
from pipeline.output.layout import RUNS_DIR, absolute_output, record_place


@dataclass
class Snapshot:
    """The committed state of an output at one moment: what readers may see."""

    output: str
    runs: dict[str, dict[str, Any]] = field(default_factory=dict)
    """run_id -> run record (attempts that ended)."""
    chunks: list[dict[str, Any]] = field(default_factory=list)
    """Visible chunk records of attempts no run record covers yet (running or crashed)."""

    def commits(self) -> list[dict[str, Any]]:
        """Every visible commit (run records and loose chunks), oldest first."""
        items = [dict(r, kind="run") for r in self.runs.values()]
        items += [dict(c, kind="chunk") for c in self.chunks]
        return sorted(items, key=lambda r: (r.get("committed_at", ""), r["run_id"]))

    @property
    def files(self) -> list[str]:
        """Visible data files, in commit order, each once."""
        seen: dict[str, None] = {}
        for commit in self.commits():
            for uri in commit.get("files", []):
                seen.setdefault(uri, None)
        return list(seen)


def _read_json(fs: Any, path: str) -> dict[str, Any] | None:
    try:
        with fs.open(path, "r") as fh:
            return json.load(fh)
    except FileNotFoundError:
        return None  # removed between listing and reading: a retired record


def _list_records(fs: Any, runs_dir: str) -> list[str]:
    """Every run and chunk record under `_runs/` (one paginated LIST on S3), by its place."""
    try:
        found = fs.find(runs_dir)
    except FileNotFoundError:
        return []
    return sorted(p for p in found if record_place(runs_dir, p) is not None)


def snapshot(output: str, options: StorageOptions | None = None) -> Snapshot:
    """Resolve what is committed under `output` now."""
    output = absolute_output(output)
    fs = filesystem(output, options)
    runs_dir = strip_scheme(join(output, RUNS_DIR))
    if hasattr(fs, "invalidate_cache"):
        fs.invalidate_cache()
    paths = _list_records(fs, runs_dir)
    snap = Snapshot(output)
    chunk_paths: list[tuple[str, str, str]] = []
    for path in paths:
        place = record_place(runs_dir, path)
        assert place is not None  # _list_records kept only records
        if place.attempt is None:
            record = _read_json(fs, path)
            if record is not None:
                snap.runs[record["run_id"]] = record
        else:
            chunk_paths.append((place.run_id, place.attempt, path))
    for run_id, attempt, path in chunk_paths:
        run = snap.runs.get(run_id, {})
        if attempt in run.get("attempts", ()) or attempt in run.get("retired", {}):
            continue  # covered by the run record, or withdrawn by a later attempt
        record = _read_json(fs, path)
        if record is not None:
            snap.chunks.append(record)
    return snap
