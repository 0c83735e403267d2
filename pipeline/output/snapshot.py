"""The committed state of an output: which run and chunk records are visible, and so which
data files readers may read (the rules are in `pipeline.output.reading`).

Records are kept here as the JSON they are on disk: the `runs` view shows each one whole,
including keys this version does not know. Code that acts on a record parses it into
`pipeline.output.records`.
"""

from __future__ import annotations

import json
import posixpath
from dataclasses import dataclass, field
from typing import Any

from pipeline.core.storage import StorageOptions, filesystem, join, strip_scheme
from pipeline.output.layout import CHUNK_PREFIX, LEASE_DIR, RUNS_DIR, absolute_output


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
    """Every `.json` under `_runs/` (one paginated LIST on S3), leases excluded."""
    try:
        found = fs.find(runs_dir)
    except FileNotFoundError:
        return []
    return sorted(
        p for p in found if p.endswith(".json") and f"/{LEASE_DIR}/" not in p and ".tmp" not in p
    )


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
        rel = posixpath.relpath(path, runs_dir)
        parts = rel.split("/")
        if len(parts) == 1:
            record = _read_json(fs, path)
            if record is not None:
                snap.runs[record["run_id"]] = record
        elif len(parts) == 3 and parts[2].startswith(CHUNK_PREFIX):
            chunk_paths.append((parts[0], parts[1], path))
    for run_id, attempt, path in chunk_paths:
        run = snap.runs.get(run_id, {})
        if attempt in run.get("attempts", ()) or attempt in run.get("retired", {}):
            continue  # covered by the run record, or withdrawn by a later attempt
        record = _read_json(fs, path)
        if record is not None:
            snap.chunks.append(record)
    return snap
