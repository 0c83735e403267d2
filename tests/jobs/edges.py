"""A small committed output made by hand (no Ray), whose tags and names sit at the edges the
report and the query must hold (issue 18): a tag holding `\\x1f`, `%`, `,`, `&`, `#`, `<`, and a
tar member's URI with a folder and a space."""

from __future__ import annotations

from pipeline.core.storage import StorageOptions

EDGE_TAGS = ["a\x1fb", "%", "100%", "a,b", "x&y=z", "#hash", "<b>"]
MEMBER_URI = "/data/a.tar#dir/b c.mp4"


def edge_output(output: str, options: StorageOptions | None = None) -> str:
    """Commit two ok clips (run `edges`) to `output`; returns `output`."""
    import pyarrow as pa

    from pipeline.output.chunks import ChunkTracker
    from pipeline.output.commit import RunCommitter
    from pipeline.output.part_writer import VIDEO_ROWS, write_part
    from pipeline.output.records import RunDetails
    from pipeline.output.schema import rows_to_table
    from tests.pipeline.output.parts import DAY

    rows = [
        {"run_id": "edges", "video_uri": uri, "video_id": f"id{i}", "clip_id": f"id{i}:0",
         "clip_index": 0, "fingerprint": f"W{i}:0", "status": "ok", "caption": f"clip {i}",
         "tags": tags, "tag_scores": [], "frame_indices": [], "frame_times_s": [],
         "start_s": 0.0, "end_s": 1.0}
        for i, (uri, tags) in enumerate([(MEMBER_URI, EDGE_TAGS[:3]), ("/d/v.mp4", EDGE_TAGS[3:])])
    ]  # fmt: skip
    table = rows_to_table(rows).append_column(VIDEO_ROWS, pa.array([1, 1], pa.int32()))
    committer = RunCommitter(output, "edges", "att1", DAY, options or StorageOptions())
    committer.on_write_start()
    tracker = ChunkTracker(chunk_videos=1, chunk_seconds=1e9)
    tracker.add(write_part(table, committer.target))
    committer.commit_chunk(tracker.take(force=True))
    committer.on_write_complete(RunDetails(videos=2))
    return output
