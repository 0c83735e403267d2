"""The report groups duplicate footage under the clip dedup kept (issue 20)."""

from __future__ import annotations

import re

from jobs.report_html import ReportData, group_duplicates, render_html


def _row(name: str, duplicate_of: str | None = None) -> dict:
    return {
        "clip_id": f"{name}:0", "video_uri": f"/data/{name}.mp4", "clip_index": 0,
        "start_s": 0.0, "end_s": 2.0, "caption": f"caption of {name}", "tags": [],
        "tag_scores": [], "thumbnail": None, "status": "ok", "error": None, "run_id": "r1",
        "duplicate_of": duplicate_of,
    }  # fmt: skip


ROWS = [
    _row("a"), _row("b", "a:0"), _row("c"), _row("d", "a:0"), _row("e", "x:0"),
]  # fmt: skip
"""a kept with b and d; c alone; e copies x, which is not on the page."""


def test_duplicates_are_listed_under_their_kept_clip_not_as_cards():
    groups = group_duplicates(ROWS)
    assert [(row["clip_id"], [d["clip_id"] for d in dups]) for row, dups in groups] == [
        ("a:0", ["b:0", "d:0"]), ("c:0", []), ("e:0", []),
    ]  # fmt: skip


def test_the_page_shows_three_cards_and_the_kept_clips_duplicates_inside_it():
    page = render_html(ReportData("out", ROWS, 5, [], None, "now"))
    cards = re.findall(r'<article class="card".*?</article>', page)
    assert [re.search(r'data-clip="([^"]+)"', c).group(1) for c in cards] == ["a:0", "c:0", "e:0"]
    kept = cards[0]
    assert "<summary>2 duplicates</summary>" in kept
    assert re.findall(r'title="/data/([a-z]).mp4">', kept) == ["a", "b", "d"]
    assert "duplicate of" not in cards[1] and "<details" not in cards[1]
    assert "duplicate of <code>x:0</code>" in cards[2]
    assert "3 of 3 clips shown" in page
