"""A run's stages joined: plan pieces in, each video's rows out with its total on the last row,
only the clips a retry names; driven here by hand, without Ray or a real decoder."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow.parquet as pq

from pipeline.core.records import VideoRef
from pipeline.core.stage import Row, RowStage
from pipeline.output.part_writer import VIDEO_ROWS
from pipeline.run_stages import PlannedDecode, select_redo, with_video_total
from pipeline.work_plan import work_table


class ThreeClips(RowStage):
    """A stand-in decoder: three clip rows per video (none for `empty.mp4`)."""

    def __init__(self) -> None:
        self.set_up = 0

    def setup(self) -> None:
        self.set_up += 1

    def process(self, item: Row) -> Iterator[Row]:
        clips = 0 if item["uri"].endswith("empty.mp4") else 3
        for i in range(clips):
            yield {"video_uri": item["uri"], "clip_index": i}


def _page(tmp_path, work: list[tuple[str, str]]) -> str:
    path = tmp_path / "page-000000.parquet"
    pq.write_table(work_table([(VideoRef(uri, 10, "v1"), redo) for uri, redo in work]), path)
    return str(path)


def test_a_piece_of_a_plan_page_becomes_its_videos_rows_with_totals(tmp_path):
    page = _page(tmp_path, [("a.mp4", ""), ("b.mp4", "2"), ("empty.mp4", ""), ("c.mp4", "")])
    decode = ThreeClips()
    stage = PlannedDecode(decode).ready()
    rows = list(stage.process({"page": page, "start": 1, "stop": 4}))  # b, empty, c
    assert [(r["video_uri"], r["clip_index"], r[VIDEO_ROWS]) for r in rows] == [
        ("b.mp4", 2, 1),  # the retry redoes clip 2 only
        ("c.mp4", 0, 0), ("c.mp4", 1, 0), ("c.mp4", 2, 3),
    ]  # fmt: skip
    stage.ready()
    assert decode.set_up == 1
    assert (stage.resources, stage.retries) == (decode.resources, decode.retries)


def test_rows_leave_decode_one_by_one_with_the_total_on_the_last():
    produced: list[int] = []

    def clips():
        for i in range(3):
            produced.append(i)
            yield {"clip_index": i}

    stream = with_video_total(clips())
    first = next(stream)
    assert first == {"clip_index": 0, VIDEO_ROWS: 0} and produced == [0, 1]  # one ahead only
    assert [row[VIDEO_ROWS] for row in stream] == [0, 3]
    assert list(with_video_total([])) == []
    assert list(with_video_total([{"clip_index": -1}])) == [{"clip_index": -1, VIDEO_ROWS: 1}]


def test_select_redo():
    rows = [{"clip_index": i} for i in range(3)]
    assert select_redo(rows, "1") == [{"clip_index": 1}]
    assert select_redo(rows, "") == rows
    assert select_redo(rows, "7") == rows  # the plan changed: redo the whole video
    assert select_redo([{"clip_index": -1}], "1") == [{"clip_index": -1}]
