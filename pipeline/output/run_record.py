"""The run record an attempt writes when it ends, worked out without I/O.

Kept pure so the rules a reader relies on can be tested on hand-made records:

- the attempt that ends is always live;
- a resumed run (`resume`: nightly, retry) keeps every earlier attempt live, found in the
  previous run record or, for one that crashed before writing any, in its chunk records;
- a replacing run (`replace`: `clipnote run` again) retires every earlier live attempt, naming
  its files, so they are deleted only after a grace period (readers that listed them can still
  read them); an attempt retired once stays retired and never comes back to life.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Literal

from pipeline.output.records import AttemptWork, ChunkRecord, RetiredAttempt, RunDetails, RunRecord

CommitMode = Literal["replace", "resume"]

Chunks = Mapping[str, Sequence[ChunkRecord]]
"""Chunk records of a run id by attempt, each attempt's in commit order."""


def earlier_attempts(previous: RunRecord, chunks: Chunks, attempt: str) -> list[str]:
    """The run's attempts before `attempt` that are not retired: the previous record's live
    ones, then any whose chunk records no run record covers yet (it crashed)."""
    earlier = [a for a in previous.attempts if a != attempt]
    loose = [a for a in chunks if a not in earlier and a != attempt and a not in previous.retired]
    return earlier + loose


def attempt_files(attempt: str, chunks: Chunks, previous: RunRecord) -> list[str]:
    """An earlier attempt's files: from its chunk records, or, when those were already folded
    into the run record and removed, the previous record's files of that attempt."""
    files = [f for chunk in chunks.get(attempt, ()) for f in chunk.files]
    return files or [f for f in previous.files if f"/part-{attempt}-" in f]


def attempt_counts(attempt: str, chunks: Chunks, previous: RunRecord) -> Counter:
    """An earlier attempt's rows by status, from the same place as its files."""
    counts: Counter = Counter()
    for chunk in chunks.get(attempt, ()):
        counts.update(chunk.counts)
    if not chunks.get(attempt):
        counts.update(previous.attempt_counts.get(attempt, {}))
    return counts


def build_run_record(
    previous: RunRecord | None,
    chunks: Chunks,
    work: AttemptWork,
    mode: CommitMode,
    details: RunDetails,
    now: datetime,
) -> RunRecord:
    """The record that replaces `previous` (None: the first attempt) when `work` ends."""
    previous = previous or RunRecord(work.run_id)
    earlier = earlier_attempts(previous, chunks, work.attempt)
    retired = dict(previous.retired)
    live, files, counts = [work.attempt], list(work.files), Counter(work.counts)
    if mode == "resume":
        live = [*earlier, work.attempt]
        for attempt in earlier:  # each goes in front: the last earlier attempt's files first
            files = attempt_files(attempt, chunks, previous) + files
            counts.update(attempt_counts(attempt, chunks, previous))
    else:
        for attempt in earlier:
            retired[attempt] = RetiredAttempt(now, tuple(attempt_files(attempt, chunks, previous)))
    by_attempt = {**previous.attempt_counts, work.attempt: dict(work.counts)}
    return RunRecord(
        run_id=work.run_id,
        run_date=work.run_date,
        committed_at=now.isoformat(),
        attempt=work.attempt,
        attempts=tuple(live),
        retired=retired,
        files=tuple(files),
        counts=dict(counts),
        rows=sum(counts.values()),
        attempt_counts={a: by_attempt.get(a, {}) for a in live},
        chunks=work.chunks,
        details=details,
    )
