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
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from jobs.stats import RunStats, run_stats
from pipeline.core.status import STATUS_OK
from pipeline.core.storage import StorageOptions

DEFAULT_LIMIT = 2000
CARD_COLUMNS = (
    "clip_id", "video_uri", "clip_index", "start_s", "end_s", "caption", "tags", "tag_scores",
    "thumbnail", "status", "error", "run_id",
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
        generated_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
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


def render_card(row: dict[str, Any], endpoint: str | None = None) -> str:
    tags = list(row.get("tags") or [])
    scores = _scores(row)
    status = row.get("status") or STATUS_OK
    thumb = row.get("thumbnail")
    shard, member = _member_of(row["video_uri"])
    name = member if member is not None else shard.rsplit("/", 1)[-1]
    if thumb:
        data = base64.b64encode(thumb).decode("ascii")
        media = (
            f'<img src="data:image/jpeg;base64,{data}" alt="{_e(name)}" loading="lazy" '
            'decoding="async">'
        )
    else:
        media = '<div class="nothumb">no thumbnail</div>'
    start, end = row.get("start_s"), row.get("end_s")
    span = f"{start:.2f}–{end:.2f} s" if start is not None and end is not None else ""
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
        f'{body}<ul class="tags">{tag_items}</ul></article>'
    )


def _bar_chart(title: str, runs: list[str], series: list[tuple[str, str, list[float]]]) -> str:
    """A stacked bar chart as inline SVG: one bar per run, one colour per series."""
    width, height, left, bottom, top = 560, 200, 48, 40, 24
    totals = [sum(s[2][i] for s in series) for i in range(len(runs))]
    peak = max(totals, default=0) or 1.0
    slot = (width - left - 8) / max(len(runs), 1)
    bar = max(min(slot * 0.6, 60), 2)
    scale = (height - bottom - top) / peak
    parts = [
        f'<svg class="chart" role="img" aria-label="{_e(title)}" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">',
        f'<text x="{left}" y="14" class="ct">{_e(title)}</text>',
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - 4}" y2="{height - bottom}" '
        'class="axis"/>',
        f'<text x="{left - 6}" y="{top + 4}" text-anchor="end" class="ax">{peak:.3g}</text>',
        f'<text x="{left - 6}" y="{height - bottom}" text-anchor="end" class="ax">0</text>',
    ]
    for i, run in enumerate(runs):
        x = left + i * slot + (slot - bar) / 2
        y = height - bottom
        for name, colour, values in series:
            h = values[i] * scale
            if h > 0:
                y -= h
                parts.append(
                    f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                    f'fill="{colour}"><title>{_e(run)}: {_e(name)} {values[i]:.4g}</title></rect>'
                )
        label = run if len(run) <= 14 else run[:13] + "…"
        parts.append(
            f'<text x="{x + bar / 2:.1f}" y="{height - bottom + 14}" text-anchor="middle" '
            f'class="ax">{_e(label)}</text>'
        )
    legend_x = left
    for name, colour, _ in series:
        parts.append(
            f'<rect x="{legend_x}" y="{height - 14}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{legend_x + 14}" y="{height - 5}" class="ax">{_e(name)}</text>'
        )
        legend_x += 24 + 7 * len(name)
    parts.append("</svg>")
    return "".join(parts)


_ERROR_COLOURS = ("#d64545", "#e08a2c", "#8e44ad", "#555555")


def render_summary(runs: list[RunStats]) -> str:
    if not runs:
        return '<section class="summary"><p>No committed runs.</p></section>'
    names = [r.run_id for r in runs]
    kinds = sorted({e.status for r in runs for e in r.errors})
    series = [(STATUS_OK, "#2e9e5b", [float(r.clips_ok) for r in runs])]
    for n, kind in enumerate(kinds):
        rows = [float(sum(e.rows for e in r.errors if e.status == kind)) for r in runs]
        series.append((kind, _ERROR_COLOURS[min(n, len(_ERROR_COLOURS) - 1)], rows))
    charts = _bar_chart("rows by status", names, series) + _bar_chart(
        "throughput (clips/s)", names, [("clips/s", "#3b6fd6", [r.clips_per_s or 0 for r in runs])]
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
        f'<table class="runs">{head}{"".join(body)}</table>{errors}</section>'
    )


_CSS = """
:root{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:#1d2330;
background:#f5f6f8}
body{margin:0;padding:16px 20px}
h1{font-size:20px;margin:0 0 4px}h2{font-size:16px;margin:12px 0 6px}
.sub{color:#5b6475;font-size:13px;margin-bottom:10px}
.summary{background:#fff;border:1px solid #dde1e8;border-radius:8px;padding:8px 14px;
margin-bottom:14px}
.charts{display:flex;flex-wrap:wrap;gap:12px}
.chart .ct{font-size:13px;font-weight:600;fill:#1d2330}.chart .ax{font-size:11px;fill:#5b6475}
.chart .axis{stroke:#9aa3b2}
table.runs{border-collapse:collapse;font-size:13px;margin-top:6px}
table.runs td,table.runs th{border-bottom:1px solid #e6e9ef;padding:3px 10px;text-align:right}
table.runs td:first-child,table.runs th:first-child{text-align:left}
.reasons{font-size:12px;color:#7a2b2b}
.controls{position:sticky;top:0;background:#f5f6f8;padding:8px 0;z-index:2;
border-bottom:1px solid #dde1e8;margin-bottom:10px}
.controls input[type=search]{width:320px;padding:6px 8px;font-size:14px}
.controls select{padding:5px;font-size:14px;margin-left:6px}
#count{margin-left:10px;font-size:13px;color:#5b6475}
.chips{margin-top:8px;display:flex;flex-wrap:wrap;gap:5px}
.chip{border:1px solid #b8c0cc;background:#fff;border-radius:14px;padding:2px 10px;
font-size:12px;cursor:pointer}
.chip[aria-pressed=true]{background:#3b6fd6;color:#fff;border-color:#3b6fd6}
.chip span{opacity:.7;margin-left:3px}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(220px,1fr));gap:12px}
.card{background:#fff;border:1px solid #dde1e8;border-radius:8px;overflow:hidden;
display:flex;flex-direction:column;content-visibility:auto;contain-intrinsic-size:auto 300px}
.card[hidden]{display:none!important}
.card img{width:100%;aspect-ratio:16/10;object-fit:contain;background:#111;display:block}
.nothumb{aspect-ratio:16/10;background:#30343c;color:#c9ced8;display:flex;
align-items:center;justify-content:center;font-size:12px}
.meta{padding:6px 10px 0;font-size:12px;color:#5b6475;display:flex;justify-content:space-between;
gap:6px}
.meta a{color:#2b58b5;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.caption{margin:6px 10px;font-size:14px;line-height:1.35}
.caption.error{color:#a12d2d;font-size:12px;word-break:break-word}
.tags{list-style:none;margin:0 10px 10px;padding:0;display:flex;flex-wrap:wrap;gap:4px}
.tags li{background:#eef1f6;border-radius:10px;padding:1px 8px;font-size:12px}
.tags .score{color:#5b6475;font-variant-numeric:tabular-nums}
"""

_JS = r"""
(function () {
  "use strict";
  function decoded(v) {  // a hand-typed `#q=%` is not valid percent-encoding: keep it as typed
    try { return decodeURIComponent(v); } catch (e) { return v; }
  }
  var cards = Array.prototype.slice.call(document.querySelectorAll(".card"));
  var items = cards.map(function (el) {
    var cap = el.querySelector(".caption");
    var src = el.querySelector(".src");
    var tags = JSON.parse(el.getAttribute("data-tags") || "[]");  // a list: never split
    return {
      el: el,
      tags: new Set(tags),
      status: el.getAttribute("data-status"),
      text: [cap ? cap.textContent : "", tags.join(" "), src ? src.title : ""]
        .join(" ").toLowerCase()
    };
  });
  var q = document.getElementById("q");
  var statusBox = document.getElementById("status");
  var count = document.getElementById("count");
  var chipsBox = document.getElementById("chips");
  var selected = new Set();
  var tally = new Map();
  items.forEach(function (it) {
    it.tags.forEach(function (t) { tally.set(t, (tally.get(t) || 0) + 1); });
  });
  Array.from(tally.keys()).sort(function (a, b) {
    return tally.get(b) - tally.get(a) || (a < b ? -1 : 1);
  }).forEach(function (tag) {
    var b = document.createElement("button");
    b.type = "button";
    b.className = "chip";
    b.setAttribute("data-tag", tag);
    b.setAttribute("aria-pressed", "false");
    b.textContent = tag;
    var n = document.createElement("span");
    n.textContent = tally.get(tag);
    b.appendChild(n);
    b.addEventListener("click", function () {
      if (selected.has(tag)) { selected.delete(tag); } else { selected.add(tag); }
      apply(true);
    });
    chipsBox.appendChild(b);
  });

  function apply(updateHash) {
    var words = [q.value.toLowerCase().replace(/\s+/g, " ").trim()].filter(Boolean);
    var want = statusBox.value;
    var shown = 0;
    for (var i = 0; i < items.length; i++) {
      var it = items[i];
      var ok = true;
      selected.forEach(function (t) { if (ok && !it.tags.has(t)) { ok = false; } });
      if (ok && want) { ok = want === "ok" ? it.status === "ok" : it.status !== "ok"; }
      for (var w = 0; ok && w < words.length; w++) { ok = it.text.indexOf(words[w]) >= 0; }
      if (it.el.hidden === ok) { it.el.hidden = !ok; }
      if (ok) { shown++; }
    }
    count.textContent = shown + " of " + items.length + " clips shown";
    Array.prototype.forEach.call(chipsBox.children, function (b) {
      b.setAttribute("aria-pressed", selected.has(b.getAttribute("data-tag")) ? "true" : "false");
    });
    if (updateHash) {
      var parts = [];
      if (selected.size) {
        parts.push("tags=" + Array.from(selected).map(encodeURIComponent).join(","));
      }
      if (q.value) { parts.push("q=" + encodeURIComponent(q.value)); }
      if (want) { parts.push("status=" + encodeURIComponent(want)); }
      history.replaceState(null, "", parts.length ? "#" + parts.join("&") : location.pathname);
    }
  }

  function fromHash() {
    selected.clear();
    var h = location.hash.replace(/^#/, "");
    h.split("&").forEach(function (kv) {
      var i = kv.indexOf("=");
      if (i < 0) { return; }
      var k = kv.slice(0, i), v = kv.slice(i + 1);
      if (k === "tags") {
        v.split(",").filter(Boolean).forEach(function (t) { selected.add(decoded(t)); });
      } else if (k === "q") { q.value = decoded(v); }
      else if (k === "status") { statusBox.value = decoded(v); }
    });
    apply(false);
  }

  var timer = null;
  q.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(function () { apply(true); }, items.length > 1000 ? 150 : 0);
  });
  statusBox.addEventListener("change", function () { apply(true); });
  window.addEventListener("hashchange", fromHash);
  fromHash();
})();
"""


def render_html(data: ReportData) -> str:
    """The whole page: summary, controls, cards, inline style and script."""
    cards = "".join(render_card(row, data.endpoint_url) for row in data.clips)
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
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{_e(title)}</h1>"
        f'<div class="sub">{shown} clips{where}{_e(capped)} · generated {_e(data.generated_at)}'
        "</div>"
        f"{render_summary(data.runs)}"
        '<div class="controls"><input id="q" type="search" placeholder="search captions, tags, '
        'files" aria-label="search">'
        '<select id="status" aria-label="status"><option value="">all</option>'
        '<option value="ok">ok</option><option value="error">errors</option></select>'
        f'<span id="count">{shown} of {shown} clips shown</span>'
        '<div id="chips" class="chips" aria-label="filter by tag"></div></div>'
        f'<main class="grid" id="cards">{cards}</main>'
        f'<script type="application/json" id="report-meta">{meta}</script>'
        f"<script>{_JS}</script></body></html>\n"
    )
