"""Where everything lives under an output: data files, chunk and run records, the lease, work
plans. Readers and writers agree on these names and nothing else.
"""

from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass

from pipeline.core.storage import is_remote, join

RUNS_DIR = "_runs"


CLIPS_DIR = "clips"


LEASE_DIR = "_lease"


PLAN_DIR = "plan"


CHUNK_PREFIX = "chunk-"


RUN_ID_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
"""Every run id, set or made: a letter or digit, then up to 127 letters, digits, `.`, `_`, `-`.
No `/` and no leading `.`, so a run id is always one name inside `_runs/`, never `..`."""

_RUN_ID = re.compile(RUN_ID_PATTERN)
_CHUNK_NAME = re.compile(rf"{CHUNK_PREFIX}[0-9]{{6,}}\.json")


def valid_run_id(run_id: str) -> bool:
    return _RUN_ID.fullmatch(run_id) is not None


@dataclass(frozen=True)
class RecordPlace:
    """Where a record sits in `_runs/`: a run record (`<run>.json`) or a chunk record
    (`<run>/<attempt>/chunk-NNNNNN.json`)."""

    run_id: str
    attempt: str | None = None


def record_place(runs_dir: str, path: str) -> RecordPlace | None:
    """What `path` is by its place under `runs_dir` alone, or None for anything else (leases,
    plans, temporary files). Matched on the parts relative to the output's own `_runs/`, never
    on the whole path: an output under `~/.tmp/` or `/_lease/` once hid every record."""
    rel = posixpath.relpath(path, runs_dir)
    parts = rel.split("/")
    if len(parts) == 1 and parts[0].endswith(".json"):
        run_id = parts[0].removesuffix(".json")
        return RecordPlace(run_id) if valid_run_id(run_id) else None
    chunk = len(parts) == 3 and _CHUNK_NAME.fullmatch(parts[2]) is not None
    if chunk and valid_run_id(parts[0]) and parts[1] not in (LEASE_DIR, ".", ".."):
        return RecordPlace(parts[0], parts[1])
    return None


def absolute_output(output: str) -> str:
    """Local outputs as absolute paths: listings return absolute names, and a relative root
    compared with them once made the sink delete its own files."""
    return output if is_remote(output) else os.path.abspath(output)


def run_record_uri(output: str, run_id: str) -> str:
    return join(output, RUNS_DIR, f"{run_id}.json")


def chunk_record_uri(output: str, run_id: str, attempt: str, seq: int) -> str:
    return join(output, RUNS_DIR, run_id, attempt, f"{CHUNK_PREFIX}{seq:06d}.json")


def work_key_of(fingerprint: str | None) -> str:
    """The work key part of a `<work key>:<clip_index>` fingerprint."""
    return (fingerprint or "").split(":", 1)[0]
