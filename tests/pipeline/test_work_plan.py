"""The run's work plan: what is skipped or redone, the pages it is written to, the blocks."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.annotate.fingerprint import work_key
from pipeline.core.records import VideoRef
from pipeline.work_plan import (
    PAGE_VIDEOS,
    DoneIndex,
    block_slices,
    decide,
    read_page,
    unwritten_videos,
    write_work_plan,
)


def _latest(rows: list[tuple[str, int, str, str]]) -> pa.Table:
    """A `clips` view excerpt: (video_uri, clip_index, fingerprint, status)."""
    names = ["video_uri", "clip_index", "fingerprint", "status"]
    return pa.table({n: [r[i] for r in rows] for i, n in enumerate(names)})


REFS = [VideoRef(f"s3://b/v{i}.mp4", 10, "e") for i in range(5)]
KEY = {r.uri: work_key(r.uri, r.size, r.version, "S") for r in REFS}
LATEST = _latest(
    [
        (REFS[0].uri, 0, f"{KEY[REFS[0].uri]}:0", "ok"),  # done
        (REFS[0].uri, 1, f"{KEY[REFS[0].uri]}:1", "ok"),
        (REFS[1].uri, 0, f"{KEY[REFS[1].uri]}:0", "ok"),  # clip 2 failed, same settings
        (REFS[1].uri, 2, f"{KEY[REFS[1].uri]}:2", "annotate_error"),
        (REFS[2].uri, 1, "otherkey:1", "decode_error"),  # failed under other settings
        (REFS[3].uri, -1, f"{KEY[REFS[3].uri]}:-1", "decode_error"),  # whole video failed
        # v4 never seen
    ]
)


def test_incremental_skips_videos_whose_latest_work_is_this_work():
    index = DoneIndex.from_latest(LATEST.to_batches(max_chunksize=2))  # a video split over batches
    assert not index.failed  # a night asks only what is done
    work, skipped = decide(REFS, index, "S", "incremental")
    # v1 and v3 are "done" too: their latest work is this work (retry is what redoes errors)
    assert [(ref.uri, redo) for ref, redo in work] == [(REFS[2].uri, ""), (REFS[4].uri, "")]
    assert skipped == 3


def test_a_changed_video_or_setting_is_not_done():
    index = DoneIndex.from_latest([LATEST])
    changed = [VideoRef(REFS[0].uri, 11, "e2")]  # new size and ETag under the same uri
    assert decide(changed, index, "S", "incremental") == ([(changed[0], "")], 0)
    assert decide(REFS[:1], index, "S2", "incremental") == ([(REFS[0], "")], 0)


def test_retry_redoes_failed_clips_or_whole_videos():
    index = DoneIndex.from_latest(LATEST.to_batches(max_chunksize=3), mode="retry")
    assert not len(index.done)  # a retry asks only about failures
    work, skipped = decide(REFS, index, "S", "retry")
    assert [(ref.uri, redo) for ref, redo in work] == [
        (REFS[1].uri, "2"),  # just the failed clip
        (REFS[2].uri, ""),  # other settings now: the whole video
        (REFS[3].uri, ""),  # the video failed as a whole
    ]
    assert skipped == 2


def test_all_takes_everything_and_an_empty_index_skips_nothing():
    assert decide(REFS, DoneIndex.from_latest([LATEST]), "S", "all") == ([(r, "") for r in REFS], 0)
    work, skipped = decide(REFS, DoneIndex(), "S", "incremental")
    assert len(work) == 5 and skipped == 0
    assert decide(REFS, DoneIndex(), "S", "retry") == ([], 5)


@pytest.mark.parametrize(
    ("pages", "blocks", "expected"),
    [
        ([("p0", 4)], 2, [[("p0", 0, 2)], [("p0", 2, 4)]]),
        ([("p0", 3), ("p1", 3)], 2, [[("p0", 0, 3)], [("p1", 0, 3)]]),
        ([("p0", 2), ("p1", 3)], 2, [[("p0", 0, 2), ("p1", 0, 1)], [("p1", 1, 3)]]),
        ([("p0", 5)], 2, [[("p0", 0, 3)], [("p0", 3, 5)]]),
        ([("p0", 2)], 8, [[("p0", 0, 1)], [("p0", 1, 2)]]),  # never an empty block
        ([], 4, []),
    ],
)
def test_blocks_are_even_runs_of_consecutive_videos(pages, blocks, expected):
    assert block_slices(pages, blocks) == expected


def test_block_slices_cover_every_video_once():
    pages = [(f"p{i}", n) for i, n in enumerate([1024, 1024, 17, 1024, 3])]
    slices = block_slices(pages, 64)
    covered = [(page, i) for block in slices for page, a, b in block for i in range(a, b)]
    assert covered == [(page, i) for page, n in pages for i in range(n)]
    sizes = [sum(b - a for _, a, b in block) for block in slices]
    assert len(slices) == 64 and max(sizes) - min(sizes) <= max(sizes)  # last one may be short
    assert set(sizes[:-1]) == {sizes[0]}


def test_the_plan_is_written_in_pages_and_read_back(tmp_path):
    refs = [VideoRef(f"/v/{i:05d}.mp4", i, f"m{i}") for i in range(2 * PAGE_VIDEOS + 5)]
    done_uri = refs[3].uri
    index = DoneIndex.from_latest(
        [_latest([(done_uri, 0, f"{work_key(done_uri, 3, 'm3', 'S')}:0", "ok")])]
    )
    seen = []
    plan = write_work_plan(
        iter(refs), index, "S", "incremental", str(tmp_path / "plan"),
        on_page=lambda p: seen.append((p.listed, p.skipped, p.queued)),
    )  # fmt: skip
    assert (plan.listed, plan.skipped, plan.queued) == (len(refs), 1, len(refs) - 1)
    assert seen == [
        (PAGE_VIDEOS, 1, PAGE_VIDEOS - 1),
        (2 * PAGE_VIDEOS, 1, 2 * PAGE_VIDEOS - 1),
        (len(refs), 1, len(refs) - 1),
    ]
    assert [rows for _, rows in plan.pages] == [PAGE_VIDEOS - 1, PAGE_VIDEOS, 5]
    back = [VideoRef.from_row(r) for page, rows in plan.pages for r in read_page(page, 0, rows)]
    assert back == [r for r in refs if r.uri != done_uri]
    page, _ = plan.pages[1]
    assert [r["uri"] for r in read_page(page, 10, 12)] == [
        refs[PAGE_VIDEOS + i].uri for i in (10, 11)
    ]


def test_a_plan_with_nothing_to_do_writes_no_page(tmp_path):
    plan = write_work_plan(iter(REFS), DoneIndex(), "S", "retry", str(tmp_path / "plan"))
    assert (plan.listed, plan.skipped, plan.queued, plan.pages) == (5, 5, 0, [])
    assert not (tmp_path / "plan").exists()


def test_unwritten_videos_are_the_planned_ones_with_no_row(tmp_path):
    plan = write_work_plan(iter(REFS), DoneIndex(), "S", "all", str(tmp_path / "plan"))
    part = tmp_path / "part.parquet"
    pq.write_table(pa.table({"video_uri": [REFS[1].uri, REFS[3].uri], "clip_index": [0, 0]}), part)
    assert unwritten_videos(plan, [str(part)]) == [REFS[0], REFS[2], REFS[4]]
    assert unwritten_videos(plan, []) == REFS


def test_a_ref_with_a_listing_problem_survives_the_plan_page(tmp_path):
    """The decode tasks read refs back from the plan's pages: the reason an input cannot be
    read must come back with it (else decode would try to read a refused entry), and
    everything else must come back unchanged. Catches: the field dropped from the page's
    columns, or `from_row` ignoring it."""
    from pipeline.input.problems import listing_error, missing_ref, refused_ref

    refs = [
        REFS[0],
        missing_ref("/data/gone.mp4"),
        refused_ref("/data/m.jsonl#line-2", "manifest /data/m.jsonl line 2: invalid JSON"),
        VideoRef("/data/s.tar#a.mp4", 1000, "7:a.mp4", 512, "a.mp4", "/data/s.tar"),
    ]
    plan = write_work_plan(iter(refs), DoneIndex(), "S", "all", str(tmp_path / "plan"))
    ((page, rows),) = plan.pages
    back = [VideoRef.from_row(row) for row in read_page(page, 0, rows)]
    assert back == refs
    assert [listing_error(ref) for ref in back] == [
        None,
        "object not found: /data/gone.mp4",
        "manifest /data/m.jsonl line 2: invalid JSON",
        None,
    ]
    assert back[1].video_id == "444591eb2f7d1bfb"  # the id the video had before the field
