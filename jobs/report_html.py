"""`clipnote report OUTPUT --out report.html`: one self-contained HTML contact sheet.

One file, nothing external: thumbnails are data URIs, styles and script are inline (vanilla
JS), charts are inline SVG, so it opens from disk, from a bucket or any static host, offline.
A card per clip (thumbnail, time range, caption, tags with their scores, a link to the source
at the clip's time range); a tag filter (clips having every selected tag), a status filter and
a text search over captions, tags and URIs (the words as typed, as a phrase: "left to
right" does not find "right to left"), all in the page; the filter lives in the URL's `#` part
(`#tags=red,circle&q=left`), so a filtered view is a link. Above the cards, a run
summary: a table per run (from `jobs.stats`) and charts of rows by status and throughput.

Rows come from the `clips` view (each clip's latest committed annotation, `jobs.query`);
`--where` is a SQL condition on it, `--limit` caps the cards (the page says how many matched).
Smooth with thousands of cards: cards off screen are neither laid out (`content-visibility`)
nor decoded (`loading=lazy`), and filtering only flips the `hidden` attribute of cards whose
visibility changes.
"""

from __future__ import annotations

import base64
import html
import json
import os
import posixpath
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

from jobs.report_assets import CSS, SCRIPT
from jobs.stats import RunStats, run_stats
from pipeline.core.status import STATUS_OK
from pipeline.core.storage import StorageOptions

DEFAULT_LIMIT = 2000
CARD_COLUMNS = (
    "clip_id", "video_uri", "clip_index", "start_s", "end_s", "caption", "tags", "tag_scores",
    "thumbnail", "status", "error", "run_id", "duplicate_of",
)  # fmt: skip


@dataclass
class ReportData:
    output: str
    clips: list[dict[str, Any]]
    matched: int
    """Clips the condition matched (cards shown: at most the limit)."""
    runs: list[RunStats]
    where: str | None
    generated_at: str
    endpoint_url: str | None = None


def load_report_data(
    output: str,
    options: StorageOptions | None = None,
    where: str | None = None,
    limit: int = DEFAULT_LIMIT,
    allow_files: bool = False,
) -> ReportData:
    """The cards' rows (streamed from DuckDB, at most `limit`) and every run's stats.

    `where` is bound as one expression on the `clips` relation, never pasted into SQL: a
    `--where` holding `1) ; COPY ...` once ran the `COPY`."""
    from jobs.query import QueryError, connect, iter_batches, record_batches, sql_errors

    if limit < 1:
        raise QueryError("--limit: must be at least 1")
    con = connect(output, options, allow_files=allow_files)
    try:
        with sql_errors():
            rel = con.table("clips")
            if where and where.strip():
                rel = rel.filter(where)
            [(matched,)] = rel.aggregate("count(*)").fetchall()
            cards = rel.project(", ".join(CARD_COLUMNS)).order("video_uri, clip_index")
            cards = cards.limit(int(limit))
        clips = [row for batch in iter_batches(record_batches(cards)) for row in batch.to_pylist()]
        runs = run_stats(con)
    finally:
        con.close()
    return ReportData(
        output=output, clips=clips, matched=int(matched), runs=runs, where=where,
        generated_at=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        endpoint_url=(options or StorageOptions()).endpoint_url,
    )  # fmt: skip


def write_report(
    output: str,
    out: str,
    options: StorageOptions | None = None,
    where: str | None = None,
    limit: int = DEFAULT_LIMIT,
    allow_files: bool = False,
) -> ReportData:
    """Build the report of `output` and write it to `out` (a path or `s3://` URI).

    A local `out` is made absolute first: a bare `report.html` once had its own name taken
    for its folder, leaving a directory `report.html` and an `IsADirectoryError`."""
    from pipeline.core.storage import is_remote, write_bytes

    data = load_report_data(output, options, where, limit, allow_files)
    target = out if is_remote(out) else os.path.abspath(os.path.expanduser(out))
    write_bytes(target, render_html(data).encode("utf-8"), options)
    return data


# -- pure rendering --------------------------------------------------------------------------


def _e(text: Any) -> str:
    return html.escape("" if text is None else str(text), quote=True)


def _member_of(uri: str) -> tuple[str, str | None]:
    """(`shard.tar`, member) of a `shard.tar#member` URI, or (uri, None)."""
    index = uri.lower().find(".tar#")
    if index < 0:
        return uri, None
    return uri[: index + 4], uri[index + 5 :]


def source_link(uri: str, start_s: float | None, end_s: float | None, endpoint: str | None) -> str:
    """A URL that opens the source video at the clip's time range; a tar member's opens its
    shard, with the member's name (encoded whole) as the fragment, so the link names it."""
    base, member = _member_of(uri)
    if base.startswith("s3://"):
        bucket, _, key = base[len("s3://") :].partition("/")
        if endpoint:
            url = f"{endpoint.rstrip('/')}/{bucket}/{quote(key)}"
        else:
            url = f"https://{bucket}.s3.amazonaws.com/{quote(key)}"
    elif base.startswith(("http://", "https://", "file://")):
        url = base
    else:
        url = "file://" + quote(posixpath.abspath(base) if base.startswith("/") else base)
    if member is not None:
        url += "#" + quote(member, safe="")
    elif start_s is not None and end_s is not None:
        url += f"#t={start_s:.2f},{end_s:.2f}"
    return url


def _scores(row: dict[str, Any]) -> dict[str, float]:
    return {s["tag"]: float(s["score"]) for s in row.get("tag_scores") or []}


def group_duplicates(rows: list[dict[str, Any]]) -> list[tuple[dict, list[dict]]]:
    """Each card's row with the rows that duplicate it (`duplicate_of`, footage dedup), in the
    rows' order. A duplicate whose kept clip is not among `rows` keeps a card of its own."""
    shown = {row.get("clip_id") for row in rows}
    under: dict[Any, list[dict]] = {}
    for row in rows:
        kept = row.get("duplicate_of")
        if kept is not None and kept in shown:
            under.setdefault(kept, []).append(row)
    return [
        (row, under.get(row.get("clip_id"), []))
        for row in rows
        if row.get("duplicate_of") is None or row["duplicate_of"] not in shown
    ]


def _duplicates_list(rows: list[dict[str, Any]], endpoint: str | None) -> str:
    if not rows:
        return ""
    items = "".join(_duplicate_item(r, endpoint) for r in rows)
    noun = "duplicate" if len(rows) == 1 else "duplicates"
    return f'<details class="dups"><summary>{len(rows)} {noun}</summary><ul>{items}</ul></details>'


def _duplicate_item(row: dict[str, Any], endpoint: str | None) -> str:
    link = source_link(row["video_uri"], row.get("start_s"), row.get("end_s"), endpoint)
    return (
        f'<li><a href="{_e(link)}" title="{_e(row["video_uri"])}">'
        f'{_e(_display_name(row["video_uri"]))}</a> <span class="time">{_e(_span(row))}</span></li>'
    )


def _display_name(uri: str) -> str:
    shard, member = _member_of(uri)
    return member if member is not None else shard.rsplit("/", 1)[-1]


def _span(row: dict[str, Any]) -> str:
    start, end = row.get("start_s"), row.get("end_s")
    return f"{start:.2f}–{end:.2f} s" if start is not None and end is not None else ""


def render_card(
    row: dict[str, Any], endpoint: str | None = None, duplicates: list[dict] | None = None
) -> str:
    """One clip's card; `duplicates`: the clips footage dedup found to be the same footage,
    listed under it instead of as cards of their own."""
    tags = list(row.get("tags") or [])
    scores = _scores(row)
    status = row.get("status") or STATUS_OK
    thumb = row.get("thumbnail")
    name = _display_name(row["video_uri"])
    if thumb:
        data = base64.b64encode(thumb).decode("ascii")
        media = (
            f'<img src="data:image/jpeg;base64,{data}" alt="{_e(name)}" loading="lazy" '
            'decoding="async">'
        )
    else:
        media = '<div class="nothumb">no thumbnail</div>'
    start, end, span = row.get("start_s"), row.get("end_s"), _span(row)
    tag_items = "".join(
        f'<li data-tag="{_e(t)}">{_e(t)}'
        + (f' <span class="score">{scores[t]:.2f}</span>' if t in scores else "")
        + "</li>"
        for t in tags
    )
    if status == STATUS_OK:
        body = f'<p class="caption">{_e(row.get("caption"))}</p>'
    else:
        body = f'<p class="caption error"><b>{_e(status)}</b> {_e(row.get("error"))}</p>'
    link = source_link(row["video_uri"], start, end, endpoint)
    return (
        f'<article class="card" data-tags="{_e(json.dumps(tags))}" data-status="{_e(status)}"'
        f' data-clip="{_e(row.get("clip_id"))}">{media}'
        f'<div class="meta"><a class="src" href="{_e(link)}" title="{_e(row["video_uri"])}">'
        f'{_e(name)}</a> <span class="time">{_e(span)}</span></div>'
        f'{body}<ul class="tags">{tag_items}</ul>{_duplicates_list(duplicates or [], endpoint)}'
        f"{_kept_elsewhere(row)}</article>"
    )


def _kept_elsewhere(row: dict[str, Any]) -> str:
    """A duplicate shown on its own (its kept clip is not on the page) says which it copies."""
    kept = row.get("duplicate_of")
    return f'<p class="dupof">duplicate of <code>{_e(kept)}</code></p>' if kept else ""


CHART_RUNS = 30
"""The charts show the latest this many runs (the table shows every run)."""


def _bar_chart(
    title: str, runs: list[str], series: list[tuple[str, str, list[float]]], note: str = ""
) -> str:
    """A stacked bar chart in HTML, one bar per run under its whole name, one colour per
    series. HTML, not SVG: an SVG scales its text down with it, which made the labels
    unreadable on a phone, and run names under the bars had to be cut to fit."""
    totals = [sum(s[2][i] for s in series) for i in range(len(runs))]
    peak = max(totals, default=0) or 1.0
    bars = []
    for i, run in enumerate(runs):
        segments = "".join(
            f'<span class="seg" style="width:{100 * values[i] / peak:.2f}%;background:{colour}"'
            f' title="{_e(run)}: {_e(name)} {values[i]:.4g}"></span>'
            for name, colour, values in series
            if values[i] > 0
        )
        bars.append(
            f'<div class="bar"><span class="run">{_e(run)}</span>'
            f'<span class="track">{segments}</span><span class="num">{totals[i]:.4g}</span></div>'
        )
    legend = "".join(
        f'<span><i style="background:{colour}"></i>{_e(name)}</span>' for name, colour, _ in series
    )
    caption = _e(title) + (f' <span class="note">{_e(note)}</span>' if note else "")
    return (
        f'<figure class="chart" aria-label="{_e(title)}"><figcaption>{caption}</figcaption>'
        f'{"".join(bars)}<div class="legend">{legend}</div></figure>'
    )


_ERROR_COLOURS = ("#d64545", "#e08a2c", "#8e44ad", "#555555")


def render_summary(runs: list[RunStats]) -> str:
    if not runs:
        return '<section class="summary"><p>No committed runs.</p></section>'
    charted = runs[-CHART_RUNS:]
    note = f"(latest {len(charted)} of {len(runs)} runs)" if len(charted) < len(runs) else ""
    names = [r.run_id for r in charted]
    kinds = sorted({e.status for r in charted for e in r.errors})
    series = [(STATUS_OK, "#2e9e5b", [float(r.clips_ok) for r in charted])]
    for n, kind in enumerate(kinds):
        rows = [float(sum(e.rows for e in r.errors if e.status == kind)) for r in charted]
        series.append((kind, _ERROR_COLOURS[min(n, len(_ERROR_COLOURS) - 1)], rows))
    speed = [("clips/s", "#3b6fd6", [r.clips_per_s or 0 for r in charted])]
    charts = _bar_chart("rows by status", names, series, note) + _bar_chart(
        "throughput (clips/s)", names, speed, note
    )
    head = (
        "<tr><th>run</th><th>state</th><th>date</th><th>videos</th><th>clips ok</th>"
        "<th>errors</th><th>clips/s</th><th>wall s</th><th>tokens/clip</th></tr>"
    )
    body = []
    for r in runs:
        cps = "-" if r.clips_per_s is None else f"{r.clips_per_s:.2f}"
        wall = "-" if r.wall_s is None else f"{r.wall_s:.1f}"
        tok = "-" if r.tokens_per_clip is None else f"{r.tokens_per_clip:.1f}"
        body.append(
            f"<tr><td>{_e(r.run_id)}</td><td>{_e(r.state)}</td><td>{_e(r.run_date or '-')}</td>"
            f"<td>{r.videos}</td><td>{r.clips_ok}</td><td>{r.error_rows}</td><td>{cps}</td>"
            f"<td>{wall}</td><td>{tok}</td></tr>"
        )
    reasons = [
        f"<li><b>{_e(r.run_id)}</b> {_e(e.status)} ({e.rows}): "
        + "; ".join(f"{n}× {_e(reason or '(no message)')}" for reason, n in e.top_reasons)
        + "</li>"
        for r in runs
        for e in r.errors
    ]
    errors = f'<ul class="reasons">{"".join(reasons)}</ul>' if reasons else ""
    return (
        '<section class="summary"><h2>Runs</h2>'
        f'<div class="charts">{charts}</div>'
        f'<div class="scroll"><table class="runs">{head}{"".join(body)}</table></div>{errors}'
        "</section>"
    )


def render_html(data: ReportData) -> str:
    """The whole page: summary, controls, cards, inline style and script."""
    groups = group_duplicates(data.clips)
    cards = "".join(render_card(row, data.endpoint_url, dups) for row, dups in groups)
    shown = len(data.clips)
    capped = (
        f" (first {shown} of {data.matched} matching clips; raise --limit for more)"
        if data.matched > shown
        else ""
    )
    where = f" where <code>{_e(data.where)}</code>" if data.where else ""
    title = f"clipnote report: {data.output}"
    meta = json.dumps({"output": data.output, "matched": data.matched, "cards": shown})
    # JSON inside <script> is not HTML-escaped (JSON.parse would see `&quot;`): `<`, `>` and
    # `&` become JSON escapes instead, so no `</script>` can end it early.
    meta = meta.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body>"
        f"<h1>{_e(title)}</h1>"
        f'<div class="sub">{shown} clips{where}{_e(capped)} · generated {_e(data.generated_at)}'
        "</div>"
        f"{render_summary(data.runs)}"
        '<div class="controls"><input id="q" type="search" placeholder="search captions, tags, '
        'files" aria-label="search">'
        '<select id="status" aria-label="status"><option value="">all</option>'
        '<option value="ok">ok</option><option value="error">errors</option></select>'
        f'<span id="count">{len(groups)} of {len(groups)} clips shown</span>'
        '<div id="chips" class="chips" aria-label="filter by tag"></div></div>'
        f'<main class="grid" id="cards">{cards}</main>'
        f'<script type="application/json" id="report-meta">{meta}</script>'
        f"<script>{SCRIPT}</script></body></html>\n"
    )
