"""`clipnote stats OUTPUT`: the health of each run, read from the committed output.

Per run: videos listed and written, clip rows by status, errors by kind with their most
frequent reasons, the most frequent tags, clips per second of wall time, seconds spent per
stage (decode CPU seconds and annotate seconds, in total and per clip) and tokens generated.
Everything comes from the `clips_all` and `runs` views (`jobs.query`), so it reads only
committed files and works the same on a local folder or S3. Aggregation happens in DuckDB:
memory does not grow with the number of rows.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import duckdb

from pipeline.core.storage import StorageOptions
from pipeline.output.records import ChunkRecord, RunRecord

TOP_REASONS = 3
TOP_TAGS = 10
REASON_CHARS = 200


@dataclass
class ErrorKind:
    status: str
    rows: int
    top_reasons: list[tuple[str, int]] = field(default_factory=list)


@dataclass
class RunStats:
    run_id: str
    state: str
    """"finished" (a run record) or "open" (chunks only: running, or crashed and resumable)."""
    run_date: str | None
    committed_at: str | None
    videos_listed: int | None
    videos: int
    """Videos with rows in this run's committed files."""
    rows: int
    clips_ok: int
    errors: list[ErrorKind]
    top_tags: list[tuple[str, int]]
    wall_s: float | None
    """Wall seconds of the run's last attempt (from its run record)."""
    clips_per_s: float | None
    """Rows the last attempt wrote per wall second."""
    decode_s: float
    annotate_s: float
    decode_s_per_clip: float | None
    annotate_s_per_clip: float | None
    tokens: int
    tokens_per_clip: float | None

    @property
    def error_rows(self) -> int:
        return sum(e.rows for e in self.errors)


_PER_RUN = """
SELECT run_id,
    count(DISTINCT video_uri) AS videos,
    count(*) AS rows,
    count(*) FILTER (WHERE status = 'ok') AS clips_ok,
    coalesce(sum(decode_s), 0) AS decode_s,
    coalesce(sum(annotate_s) FILTER (WHERE status = 'ok'), 0) AS annotate_s,
    coalesce(sum(generated_tokens), 0) AS tokens,
    count(*) FILTER (WHERE decode_s > 0) AS decoded
FROM clips_all {where} GROUP BY run_id
"""
_ERRORS = """
SELECT run_id, status, left(coalesce(error, ''), {chars}) AS reason, count(*) AS n
FROM clips_all WHERE status <> 'ok' {and_where} GROUP BY ALL
ORDER BY run_id, status, n DESC, reason
"""
_TAGS = """
SELECT run_id, tag, count(*) AS n
FROM (SELECT run_id, unnest(tags) AS tag FROM clips_all WHERE status = 'ok' {and_where})
GROUP BY ALL ORDER BY run_id, n DESC, tag
"""


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    cursor = con.execute(sql, params)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


@dataclass
class _Seen:
    """What a run's commit records say: its run record once an attempt ended, else the dates
    of its newest chunk."""

    record: RunRecord | None = None
    run_date: str | None = None
    committed_at: str | None = None

    @property
    def state(self) -> str:
        return "finished" if self.record is not None else "open"


def _run_records(con: duckdb.DuckDBPyConnection) -> dict[str, _Seen]:
    """run_id -> what its commit records say (the newest run record wins over chunks)."""
    out: dict[str, _Seen] = {}
    for row in _rows(con, "SELECT run_id, kind, record FROM runs ORDER BY committed_at", []):
        raw = json.loads(row["record"])
        seen = out.setdefault(row["run_id"], _Seen())
        if row["kind"] == "run":
            seen.record = RunRecord.from_dict(raw)
        else:
            chunk = ChunkRecord.from_dict(raw)
            seen.run_date = seen.run_date or chunk.run_date
            seen.committed_at = chunk.committed_at
    return out


def run_stats(con: duckdb.DuckDBPyConnection, run_id: str | None = None) -> list[RunStats]:
    """Stats of every run with committed files (or of `run_id`), oldest commit first."""
    where, and_where, params = "", "", []
    if run_id is not None:
        where, and_where, params = "WHERE run_id = ?", "AND run_id = ?", [run_id]
    per_run = {r["run_id"]: r for r in _rows(con, _PER_RUN.format(where=where), params)}
    errors: dict[str, dict[str, ErrorKind]] = {}
    for r in _rows(con, _ERRORS.format(and_where=and_where, chars=REASON_CHARS), params):
        kind = errors.setdefault(r["run_id"], {}).setdefault(r["status"], ErrorKind(r["status"], 0))
        kind.rows += r["n"]
        if len(kind.top_reasons) < TOP_REASONS:
            kind.top_reasons.append((r["reason"], r["n"]))
    tags: dict[str, list[tuple[str, int]]] = {}
    for r in _rows(con, _TAGS.format(and_where=and_where), params):
        listed = tags.setdefault(r["run_id"], [])
        if len(listed) < TOP_TAGS:
            listed.append((r["tag"], r["n"]))
    records = _run_records(con)
    order = [r for r in records if r in per_run] + sorted(set(per_run) - set(records))
    return [_one(rid, per_run[rid], records.get(rid, _Seen()), errors, tags) for rid in order]


def _one(run_id, agg, seen: _Seen, errors, tags) -> RunStats:
    record = seen.record
    wall = record.details.seconds if record else None
    attempt_rows = record.last_attempt_rows if record else 0
    rows, ok = int(agg["rows"]), int(agg["clips_ok"])
    by_kind = sorted(errors.get(run_id, {}).values(), key=lambda e: (-e.rows, e.status))
    return RunStats(
        run_id=run_id,
        state=seen.state,
        run_date=(record.run_date if record else None) or seen.run_date,
        committed_at=(record.committed_at if record else None) or seen.committed_at,
        videos_listed=record.details.videos if record else None,
        videos=int(agg["videos"]),
        rows=rows,
        clips_ok=ok,
        errors=by_kind,
        top_tags=tags.get(run_id, []),
        wall_s=wall,
        clips_per_s=(attempt_rows or rows) / wall if wall else None,
        decode_s=float(agg["decode_s"]),
        annotate_s=float(agg["annotate_s"]),
        decode_s_per_clip=float(agg["decode_s"]) / agg["decoded"] if agg["decoded"] else None,
        annotate_s_per_clip=float(agg["annotate_s"]) / ok if ok else None,
        tokens=int(agg["tokens"]),
        tokens_per_clip=int(agg["tokens"]) / ok if ok else None,
    )


def stats_json(stats: list[RunStats]) -> str:
    runs = []
    for s in stats:
        item = asdict(s)
        item["error_rows"] = s.error_rows
        item["errors"] = [
            {"status": e.status, "rows": e.rows,
             "top_reasons": [{"reason": r, "rows": n} for r, n in e.top_reasons]}
            for e in s.errors
        ]  # fmt: skip
        item["top_tags"] = [{"tag": t, "clips": n} for t, n in s.top_tags]
        runs.append(item)
    return json.dumps({"runs": runs}, indent=1)


def _num(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


STATS_COLUMNS = ("run", "state", "date", "videos", "clips ok", "errors", "clips/s", "wall s",
                 "decode s/clip", "annotate s/clip", "tokens/clip")  # fmt: skip


def _detail_lines(s: RunStats, width: int) -> list[str]:
    """A run's errors by kind with their top reasons, and its top tags, wrapped to `width`."""
    from jobs.terminal import wrap

    lines = []
    for e in s.errors:
        lines.append(f"  {e.status}: {e.rows}")
        for reason, n in e.top_reasons:
            first = f"    {n} x "
            lines += wrap(reason or "(no message)", width, " " * len(first), first)
    if s.top_tags:
        tags = ", ".join(f"{t} ({n})" for t, n in s.top_tags)
        lines += wrap(tags, width, " " * 4, "  top tags: ")
    return lines


def print_stats(stats: list[RunStats], console: Any) -> None:
    """All runs as one table when it fits the console whole, then each run's errors and tags;
    on a narrower console one block per run, its errors and tags inside (`jobs.terminal`)."""
    from jobs.terminal import print_rows, record_lines, table_width

    if not stats:
        console.print("no committed runs")
        return
    rows = []
    for s in stats:
        videos = f"{s.videos}" + (f"/{s.videos_listed}" if s.videos_listed is not None else "")
        rows.append([
            s.run_id, s.state, s.run_date or "-", videos, str(s.clips_ok), str(s.error_rows),
            _num(s.clips_per_s), _num(s.wall_s, 1), _num(s.decode_s_per_clip, 3),
            _num(s.annotate_s_per_clip, 3), _num(s.tokens_per_clip, 1),
        ])  # fmt: skip
    width = console.width
    blocks = []
    if table_width(STATS_COLUMNS, rows) <= width:
        print_rows(console, STATS_COLUMNS, rows, right=STATS_COLUMNS[3:], title="runs")
        for s in stats:
            details = _detail_lines(s, width)
            blocks += [s.run_id, *details] if details else []
    else:
        for s, row in zip(stats, rows, strict=True):
            blocks.append(f"run {s.run_id}")
            blocks += record_lines(STATS_COLUMNS[1:], row[1:], width, indent="  ")
            blocks += _detail_lines(s, width)
    if blocks:
        console.print("\n".join(blocks), soft_wrap=True, markup=False, highlight=False)


def collect_stats(
    output: str, options: StorageOptions | None = None, run_id: str | None = None
) -> list[RunStats]:
    from jobs.query import connect

    con = connect(output, options)
    try:
        return run_stats(con, run_id)
    finally:
        con.close()
