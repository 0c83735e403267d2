"""Where everything lives under an output: data files, chunk and run records, the lease, work
plans. Readers and writers agree on these names and nothing else.
"""

from __future__ import annotations

import os

from pipeline.core.storage import is_remote, join

RUNS_DIR = "_runs"


CLIPS_DIR = "clips"


LEASE_DIR = "_lease"


PLAN_DIR = "plan"


CHUNK_PREFIX = "chunk-"


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
