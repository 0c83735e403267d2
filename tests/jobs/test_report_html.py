"""`clipnote report`: the HTML contact sheet, opened in a real headless Chromium.

The report of `results_world` (the toy model's real output in S3 on loopback) is written by the
CLI, then Chromium loads it from disk: the cards render with their thumbnails decoded, the tag
filter shows exactly the clips whose truth has the tag, the text search finds captions, and
the page asks for nothing but itself and its data URIs. A screenshot is kept as an artifact
(`$CLIPNOTE_TEST_ARTIFACTS` when set, else the test's temp dir). Without Chromium those tests
skip, saying so; CI installs it (`apt-get install -y chromium`).
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from jobs.report_html import ReportData, render_card, render_html, source_link
from jobs.stats import RunStats
from tests.jobs.chromium import chromium_path, with_page
from tests.jobs.conftest import clipnote_env
from tests.jobs.edges import EDGE_TAGS, MEMBER_URI, edge_output

needs_chromium = pytest.mark.skipif(
    chromium_path() is None,
    reason="chromium is not installed (Debian: apt-get install -y chromium; CI installs it)",
)


def _artifacts(tmp_path: Path) -> Path:
    root = os.environ.get("CLIPNOTE_TEST_ARTIFACTS")
    return Path(root) if root else tmp_path


def _jpeg(colour=(200, 40, 40), size=(96, 60)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, colour).save(buf, format="JPEG")
    return buf.getvalue()


def _row(i: int, tags: list[str], caption: str, **extra) -> dict:
    row = {
        "clip_id": f"v{i}:0", "video_uri": f"/data/videos/v{i}.mp4", "clip_index": 0,
        "start_s": 0.0, "end_s": 2.0, "caption": caption, "tags": tags,
        "tag_scores": [{"tag": t, "score": 0.9} for t in tags], "thumbnail": _jpeg(),
        "status": "ok", "error": None, "run_id": "r1",
    }  # fmt: skip
    row.update(extra)
    return row


def _run(run_id="r1", ok=3, errors=1) -> RunStats:
    from jobs.stats import ErrorKind

    return RunStats(
        run_id=run_id, state="finished", run_date="2026-01-01", committed_at=None,
        videos_listed=ok + errors, videos=ok + errors, rows=ok + errors, clips_ok=ok,
        errors=[ErrorKind("decode_error", errors, [("not a readable video", errors)])],
        top_tags=[], wall_s=10.0, clips_per_s=0.4, decode_s=1.0, annotate_s=2.0,
        decode_s_per_clip=0.1, annotate_s_per_clip=0.2, tokens=30, tokens_per_clip=10.0,
    )  # fmt: skip


def _data(rows, runs=None) -> ReportData:
    return ReportData(
        output="s3://b/out", clips=rows, matched=len(rows), runs=runs or [_run()], where=None,
        generated_at="now",
    )  # fmt: skip


# -- pure rendering ------------------------------------------------------------------------


def test_text_is_escaped_and_thumbnails_are_embedded():
    row = _row(1, ["a<b", "dog"], "<script>alert(1)</script> & more")
    card = render_card(row)
    assert "<script>" not in card and "&lt;script&gt;" in card and "&amp; more" in card
    assert 'src="data:image/jpeg;base64,' in card
    assert 'data-tags="[&quot;a&lt;b&quot;, &quot;dog&quot;]"' in card
    assert '<span class="score">0.90</span>' in card


def test_error_rows_show_their_reason():
    card = render_card(
        _row(2, [], None, status="decode_error", error="not a readable video", thumbnail=None)
    )
    assert "decode_error" in card and "not a readable video" in card and "no thumbnail" in card


@pytest.mark.parametrize(
    "uri,endpoint,expected",
    [
        ("/v/a b.mp4", None, "file:///v/a%20b.mp4#t=1.00,2.50"),
        ("s3://bk/x/y.mp4", None, "https://bk.s3.amazonaws.com/x/y.mp4#t=1.00,2.50"),
        (
            "s3://bk/x/y.mp4",
            "http://127.0.0.1:9000/",
            "http://127.0.0.1:9000/bk/x/y.mp4#t=1.00,2.50",
        ),
        ("s3://bk/s.tar#m/v.mp4", None, "https://bk.s3.amazonaws.com/s.tar#m%2Fv.mp4"),
        ("https://h/v.mp4", None, "https://h/v.mp4#t=1.00,2.50"),
    ],
)
def test_source_links_open_the_clip(uri, endpoint, expected):
    assert source_link(uri, 1.0, 2.5, endpoint) == expected


def test_page_is_self_contained():
    page = render_html(_data([_row(i, ["red"], f"clip {i}") for i in range(3)]))
    assert page.startswith("<!DOCTYPE html>")
    # every src is a data URI; the only http(s)/file URLs are the links to the sources
    assert all(s.startswith("data:") for s in re.findall(r'\ssrc="([^"]*)"', page))
    hrefs = re.findall(r'\shref="([^"]*)"', page)
    assert hrefs == [source_link(f"/data/videos/v{i}.mp4", 0.0, 2.0, None) for i in range(3)]
    assert "<link" not in page and "@import" not in page and "url(" not in page
    assert page.count('<figure class="chart"') == 2
    assert "rows by status" in page and "throughput" in page


# -- in Chromium --------------------------------------------------------------------------

_VISIBLE = "[...document.querySelectorAll('.card')].filter(c => !c.hidden && "
_VISIBLE += "c.getBoundingClientRect().height > 0).map(c => c.dataset.clip).sort()"
_IMAGES_READY = """
new Promise(resolve => {
  const done = () => [...document.images].every(i => i.complete && i.naturalWidth > 0);
  const t0 = Date.now();
  (function poll() {
    if (done() || Date.now() - t0 > 20000) { resolve([...document.images].map(i =>
      [i.complete, i.naturalWidth])); } else { setTimeout(poll, 50); }
  })();
})
"""


def _click_tag(tag: str) -> str:
    return f"document.querySelector('.chip[data-tag={json.dumps(tag)}]').click()"


def _search(text: str) -> str:
    return (
        f"(() => {{ const q = document.getElementById('q'); q.value = {json.dumps(text)};"
        " q.dispatchEvent(new Event('input')); return new Promise(r => setTimeout(r, 300)); })()"
    )


@pytest.fixture(scope="module")
def world_report(results_world, tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """The CLI's report of the world, and clip_id -> video_uri of its cards."""
    from jobs.query import query_arrow
    from pipeline.core.storage import StorageOptions

    world = results_world
    out = tmp_path_factory.mktemp("report") / "report.html"
    done = subprocess.run(
        [sys.executable, "-m", "jobs.cli", "report", world.output, "--out", str(out),
         "--endpoint-url", world.endpoint],
        env=clipnote_env(world), capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    ids = query_arrow(
        world.output, "SELECT clip_id, video_uri FROM clips", StorageOptions(world.endpoint)
    ).to_pylist()
    return out, {r["clip_id"]: r["video_uri"] for r in ids}


@pytest.mark.slow
@needs_chromium
def test_report_in_chromium(results_world, world_report, tmp_path):
    world = results_world
    path, uri_of = world_report
    truth = world.truth
    all_ids = sorted(uri_of)

    def ids_where(pred) -> list[str]:
        return sorted(cid for cid, uri in uri_of.items() if uri in truth and pred(truth[uri]))

    shot = _artifacts(tmp_path) / "report-chromium.png"

    async def scenario(page):
        await page.open(path.as_uri())
        seen = {"cards": await page.evaluate(_VISIBLE)}
        seen["images"] = await page.evaluate(_IMAGES_READY)
        seen["count"] = await page.evaluate("document.getElementById('count').textContent")
        await page.screenshot(shot)
        await page.evaluate(_click_tag("red"))
        seen["red"] = await page.evaluate(_VISIBLE)
        seen["hash"] = await page.evaluate("location.hash")
        await page.evaluate(_click_tag("circle"))
        seen["red_circle"] = await page.evaluate(_VISIBLE)
        await page.evaluate(_click_tag("red"))
        await page.evaluate(_click_tag("circle"))
        await page.evaluate(_search("left to right"))
        seen["search"] = await page.evaluate(_VISIBLE)
        await page.evaluate(_search(""))
        seen["cleared"] = await page.evaluate(_VISIBLE)
        await page.open("about:blank")  # a fresh load: the filter comes from the link alone
        await page.open(path.as_uri() + "#tags=still&status=ok")
        seen["from_link"] = await page.evaluate(_VISIBLE)
        seen["requests"] = list(page.requests)
        return seen

    seen = with_page(tmp_path / "profile", scenario)
    assert seen["cards"] == all_ids
    assert len(seen["images"]) == len(truth)  # the broken video's card has no thumbnail
    assert all(complete and width > 0 for complete, width in seen["images"]), seen["images"]
    assert seen["count"] == f"{len(all_ids)} of {len(all_ids)} clips shown"
    assert seen["red"] == ids_where(lambda c: "red" in c.tags) and seen["red"]
    assert seen["hash"] == "#tags=red"
    assert seen["red_circle"] == ids_where(lambda c: {"red", "circle"} <= set(c.tags))
    assert seen["search"] == ids_where(lambda c: c.spec.motion == "right") and seen["search"]
    assert seen["cleared"] == all_ids
    assert seen["from_link"] == ids_where(lambda c: "still" in c.tags)
    # the page asked for itself only (thumbnails are data URIs)
    assert {u for u in seen["requests"] if not u.startswith("data:")} <= {path.as_uri()}
    image = Image.open(shot)
    assert image.width >= 1000 and len(set(image.convert("L").getdata())) > 20


@pytest.mark.slow
@needs_chromium
def test_five_thousand_cards_filter_in_chromium(tmp_path):
    """5,000 cards: the page opens, and the tag filter and search give exactly the right cards.
    Timings go to an artifact (never asserted: this machine is shared)."""
    colours = ["red", "green", "blue", "yellow"]
    rows = [
        _row(i, [colours[i % 4], "circle" if i % 3 == 0 else "cross"],
             f"a {colours[i % 4]} shape number {i}", thumbnail=_jpeg((i % 256, 80, 160)))
        for i in range(5000)
    ]  # fmt: skip
    path = tmp_path / "big.html"
    path.write_text(render_html(_data(rows)), encoding="utf-8")
    want_blue_circle = sorted(
        r["clip_id"] for r in rows if "blue" in r["tags"] and "circle" in r["tags"]
    )
    timing = _artifacts(tmp_path) / "report-5000-timing.json"

    async def scenario(page):
        await page.open(path.as_uri())
        t = {"load_ms": await page.evaluate("performance.now()")}
        t["cards"] = await page.evaluate("document.querySelectorAll('.card').length")
        start = await page.evaluate("performance.now()")
        await page.evaluate(_click_tag("blue"))
        await page.evaluate(_click_tag("circle"))
        t["filter_ms"] = await page.evaluate("performance.now()") - start
        t["blue_circle"] = await page.evaluate(_VISIBLE)
        await page.evaluate(_click_tag("blue"))
        await page.evaluate(_click_tag("circle"))
        await page.evaluate(_search("number 4321"))
        t["search"] = await page.evaluate(_VISIBLE)
        await page.screenshot(_artifacts(tmp_path) / "report-5000.png")
        return t

    seen = with_page(tmp_path / "profile", scenario, size=(1280, 1000))
    timing.write_text(json.dumps({k: seen[k] for k in ("load_ms", "filter_ms")}))
    assert seen["cards"] == 5000
    assert seen["blue_circle"] == want_blue_circle
    assert seen["search"] == ["v4321:0"]


# -- issue 18, case 3: the README's own command, and the page's edges -------------------------


def _edge_output(root: Path) -> str:
    return edge_output(str(root / "out"))


def _report_cli(output: str, out: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    return subprocess.run(
        [sys.executable, "-m", "jobs.cli", "report", output, "--out", out],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_report_out_as_bare_relative_and_absolute_names_writes_a_file(tmp_path):
    """`clipnote report OUT --out report.html` (the README's command) once failed with
    `IsADirectoryError`, leaving a directory named `report.html`."""
    output = _edge_output(tmp_path)
    work = tmp_path / "work"
    (work / "sub").mkdir(parents=True)
    for out, where in [
        ("report.html", work / "report.html"),
        ("sub/r.html", work / "sub" / "r.html"),
        (str(tmp_path / "abs.html"), tmp_path / "abs.html"),
    ]:
        done = _report_cli(output, out, work)
        assert done.returncode == 0, done.stderr
        assert where.is_file(), out
        assert where.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
        said = done.stdout.splitlines()
        assert said == ["wrote a report of 2 of 2 clips and 1 run to", str(where.resolve())]


_HASH_ROUND_TRIP = """
(async () => {
  const out = {};
  for (const tag of TAGS) {
    const chip = [...document.querySelectorAll('.chip')].find(b => b.dataset.tag === tag);
    chip.click();                                  // the page writes the filter to the hash
    const hash = location.hash;
    chip.click();                                  // cleared again
    await new Promise(r => { addEventListener('hashchange', r, {once: true});
                             location.hash = hash; });   // the link, followed
    out[tag] = [...document.querySelectorAll('.chip[aria-pressed=true]')].map(b => b.dataset.tag);
    chip.click();                                  // and cleared for the next tag
  }
  return out;
})()
"""


@needs_chromium
def test_report_edges_in_chromium(tmp_path):
    """Case 3 in the browser: the page's JSON parses, `#q=%` throws nothing, a tag holding
    `\\x1f` is one chip, every tag round-trips through the `#` link, a tar member's link and
    name are the member's."""
    output = _edge_output(tmp_path)
    done = _report_cli(output, "report.html", tmp_path)
    assert done.returncode == 0, done.stderr
    url = (tmp_path / "report.html").as_uri()

    async def scenario(page):
        await page.open(url + "#q=%")
        seen = {"q": await page.evaluate("document.getElementById('q').value")}
        seen["meta"] = await page.evaluate(
            "JSON.parse(document.getElementById('report-meta').textContent)"
        )
        seen["chips"] = await page.evaluate(
            "[...document.querySelectorAll('.chip')].map(b => b.dataset.tag).sort()"
        )
        seen["round_trip"] = await page.evaluate(
            _HASH_ROUND_TRIP.replace("TAGS", json.dumps(EDGE_TAGS))
        )
        seen["link"] = await page.evaluate(
            "(() => { const a = [...document.querySelectorAll('.src')]"
            f".find(a => a.title === {json.dumps(MEMBER_URI)});"
            " return [a.textContent, a.href]; })()"
        )
        seen["errors"] = [e for e in page.events if e.get("method") == "Runtime.exceptionThrown"]
        return seen

    seen = with_page(tmp_path / "profile", scenario)
    assert seen["errors"] == []
    assert seen["q"] == "%"
    assert seen["meta"] == {"output": output, "matched": 2, "cards": 2}
    assert seen["chips"] == sorted(EDGE_TAGS)
    assert seen["round_trip"] == {tag: [tag] for tag in EDGE_TAGS}
    assert seen["link"] == ["dir/b c.mp4", "file:///data/a.tar#dir%2Fb%20c.mp4"]


# -- issue 19, case 11: narrow screens ------------------------------------------------------

_LAYOUT = """
(() => {
  const W = innerWidth, charts = document.querySelector('.charts');
  const seen = {page: document.documentElement.scrollWidth, width: W, small: [], outside: []};
  const walker = document.createTreeWalker(charts, NodeFilter.SHOW_TEXT);
  const range = document.createRange();
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (!n.textContent.trim()) { continue; }
    range.selectNodeContents(n);
    for (const r of range.getClientRects()) {
      if (r.height < 11) { seen.small.push([n.textContent, r.height]); }
      if (r.left < 0 || r.right > W + 0.5) { seen.outside.push([n.textContent, r.left, r.right]); }
    }
  }
  seen.chartText = charts.textContent;
  const table = document.querySelector('table.runs');
  seen.table = [table.getBoundingClientRect().width,
                table.parentElement.getBoundingClientRect().right];
  return seen;
})()
"""


@needs_chromium
def test_report_is_readable_at_390_600_and_1400_px(tmp_path):
    """At 390 px the SVG charts' text was unreadable and ran off the page, run names under
    the bars were cut to 13 characters and "…", and the runs table (688 px) made even a
    600 px window scroll sideways. Now at every width: the page never scrolls sideways (the
    table scrolls in its own box), chart text is at least 11 px tall and inside the window,
    and every run's whole name is in each chart."""
    run_ids = ["20261204T114741Z-30b94c", "nightly-2026-12-04", "retry-20261205T010203Z-9f"]
    runs = [_run(run_id, ok=3 + i, errors=i) for i, run_id in enumerate(run_ids)]
    runs[2].errors[0].top_reasons = [("decode: " + "x" * 150, 2)]  # a long word in a reason
    rows = [_row(i, ["red", "circle"], f"a red circle number {i}") for i in range(6)]
    path = tmp_path / "narrow.html"
    path.write_text(render_html(_data(rows, runs)), encoding="utf-8")

    async def scenario(page):
        seen = {}
        for width in (390, 600, 1400):
            await page.call(
                "Emulation.setDeviceMetricsOverride", width=width, height=900,
                deviceScaleFactor=1, mobile=width < 500,
            )  # fmt: skip
            await page.open(path.as_uri())
            seen[width] = await page.evaluate(_LAYOUT)
            await page.screenshot(_artifacts(tmp_path) / f"report-{width}px.png")
        return seen

    seen = with_page(tmp_path / "profile", scenario)
    for width, layout in seen.items():
        assert layout["width"] == width
        assert layout["page"] <= width, (width, layout["page"])
        assert layout["small"] == [], (width, layout["small"])
        assert layout["outside"] == [], (width, layout["outside"])
        assert layout["table"][1] <= width + 0.5, (width, layout["table"])
        for run_id in run_ids:
            assert layout["chartText"].count(run_id) == 2, (width, run_id)  # both charts
