"""Manifest parsing, entry by entry, against values written out by hand.

The three manifest forms must agree: a row whose `uri` is null or blank falls back to
`video_uri`, then `path`, in Parquet exactly as in JSONL; a row with none of them, a line that
is not JSON or not an object becomes a refused entry (an error row later), never a gap.
"""

from __future__ import annotations

import io
import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.input.manifests import (
    Refused,
    _jsonl_entries,
    _parquet_entries,
    _resolve_entry,
    _resolve_remote_entry,
    _text_entries,
)
from pipeline.input.names import _readable, _split_member

M = "/data/lists/m.jsonl"
ROWS = [
    {"uri": "a.mp4", "video_uri": "x.mp4", "path": "p.mp4"},  # uri wins
    {"uri": None, "video_uri": "b.mp4", "path": "p.mp4"},  # null uri -> video_uri
    {"uri": "  ", "video_uri": None, "path": "c.mp4"},  # blank uri, null video_uri -> path
    {"uri": " d.mp4 ", "video_uri": None, "path": None},  # trimmed
    {"uri": None, "video_uri": " ", "path": None},  # nothing -> refused
]
EXPECTED = ["a.mp4", "b.mp4", "c.mp4", "d.mp4", "refused"]


def jsonl(text: str) -> list:
    """Entries of a JSONL manifest `M` holding `text`, read line by line as the lister does."""
    return list(_jsonl_entries(io.StringIO(text), M))


def parquet(fh, uri: str) -> list:
    return list(_parquet_entries(fh, uri))


def text_lines(text: str) -> list:
    return list(_text_entries(io.StringIO(text)))


def _kinds(entries) -> list[str]:
    return [e if isinstance(e, str) else "refused" for e in entries]


def test_jsonl_rows_fall_back_column_by_column() -> None:
    text = "\n".join(json.dumps(r) for r in ROWS)
    entries = jsonl(text)
    assert _kinds(entries) == EXPECTED
    assert entries[4] == Refused(
        f"{M}#line-5",
        f"manifest {M} line 5: none of ['uri', 'video_uri', 'path'] has a value",
    )


def test_parquet_rows_fall_back_exactly_as_jsonl() -> None:
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(ROWS), buffer)
    entries = parquet(io.BytesIO(buffer.getvalue()), "/data/lists/m.parquet")
    assert _kinds(entries) == EXPECTED
    assert entries[4].label == "/data/lists/m.parquet#row-5"


def test_parquet_with_only_some_columns() -> None:
    buffer = io.BytesIO()
    pq.write_table(pa.table({"path": ["p1.mp4", None], "other": [1, 2]}), buffer)
    entries = parquet(io.BytesIO(buffer.getvalue()), "m.parquet")
    assert _kinds(entries) == ["p1.mp4", "refused"]


def test_parquet_without_any_uri_column_is_an_error_naming_them() -> None:
    buffer = io.BytesIO()
    pq.write_table(pa.table({"file": ["a.mp4"]}), buffer)
    with pytest.raises(RuntimeError, match=r"none of the columns \['uri', 'video_uri', 'path'\]"):
        parquet(io.BytesIO(buffer.getvalue()), "m.parquet")


def test_jsonl_bad_lines_are_refused_with_their_line_number() -> None:
    text = '{"uri": "a.mp4"}\n\n{not json\n[1, 2]\n"b.mp4"\n{"video_uri": "c.mp4"}\n'
    entries = jsonl(text)
    assert _kinds(entries) == ["a.mp4", "refused", "refused", "refused", "c.mp4"]
    assert entries[1].label == f"{M}#line-3"  # the blank line 2 is skipped, not counted out
    assert "line 3: invalid JSON" in entries[1].reason
    assert entries[2].label == f"{M}#line-4" and "has a value" in entries[2].reason
    assert entries[3].label == f"{M}#line-5"


def test_empty_manifests_list_nothing() -> None:
    assert jsonl("") == [] and jsonl("\n \n") == []
    assert text_lines("") == [] and text_lines("\n# only a comment\n") == []


def test_text_lines_comments_and_members() -> None:
    text = "  a.mp4  \n# comment\n\nshard.tar#clip 1.mp4\n s3://b/k.mp4\n#x.mp4\n"
    assert text_lines(text) == ["a.mp4", "shard.tar#clip 1.mp4", "s3://b/k.mp4"]


def test_local_manifest_entries_resolve_against_its_folder() -> None:
    home = os.path.expanduser("~")
    assert _resolve_entry("v/a.mp4", M) == "/data/lists/v/a.mp4"
    assert _resolve_entry("../b.mp4", M) == "/data/b.mp4"
    assert _resolve_entry("/abs/c.mp4", M) == "/abs/c.mp4"
    assert _resolve_entry("file:///abs/./d.mp4", M) == "/abs/d.mp4"
    assert _resolve_entry("~/e.mp4", M) == os.path.join(home, "e.mp4")
    assert _resolve_entry("s3://bucket/f.mp4", M) == "s3://bucket/f.mp4"
    refused = Refused("x", "y")
    assert _resolve_entry(refused, M) is refused


def test_remote_manifest_entries_stay_in_their_bucket() -> None:
    m = "s3://bkt/lists/day/m.txt"
    assert _resolve_entry("v.mp4", m) == "s3://bkt/lists/day/v.mp4"
    assert _resolve_entry("../../videos/v.mp4", m) == "s3://bkt/videos/v.mp4"
    assert _resolve_entry("s3://other/v.mp4", m) == "s3://other/v.mp4"  # explicit: allowed
    for entry, why in [
        ("../../../x.mp4", "leaves its bucket s3://bkt"),
        ("/etc/passwd", "local or unsupported path"),
        ("~/.aws/credentials", "local or unsupported path"),
        ("file:///home/u/.ray/auth_token", "local or unsupported path"),
        ("gs://b/x.mp4", "local or unsupported path"),
    ]:
        refused = _resolve_remote_entry(entry, m)
        assert isinstance(refused, Refused) and why in refused.reason, entry
        assert refused.label == entry


def test_manifest_at_the_bucket_root() -> None:
    assert _resolve_remote_entry("v.mp4", "s3://bkt/m.txt") == "s3://bkt/v.mp4"
    assert isinstance(_resolve_remote_entry("../v.mp4", "s3://bkt/m.txt"), Refused)
    assert isinstance(_resolve_remote_entry("..", "s3://bkt/m.txt"), Refused)  # the parent


def test_single_slash_file_uri_in_a_remote_manifest_is_refused() -> None:
    refused = _resolve_remote_entry("file:/etc/passwd", "s3://bkt/m.txt")
    assert isinstance(refused, Refused) and "local or unsupported path" in refused.reason


def test_undecodable_entries_are_shown_escaped() -> None:
    raw = b"caf\xe9.mp4".decode("utf-8", errors="surrogateescape")
    assert _readable(raw) == "caf\\xe9.mp4"
    assert _readable("café.mp4") == "café.mp4"
    refused = _resolve_remote_entry(raw, "s3://bkt/m.txt")
    assert isinstance(refused, Refused) and "not valid UTF-8" in refused.reason
    assert refused.label == "caf\\xe9.mp4"


def test_split_member() -> None:
    assert _split_member("s3://b/shard.tar#dir/clip.mp4") == ("s3://b/shard.tar", "dir/clip.mp4")
    assert _split_member("/x/S.TAR#a#b.mp4") == ("/x/S.TAR", "a#b.mp4")
    assert _split_member("/x/clip#1.mp4") is None
    # the first `.tar#` ends the shard name; a member may itself be named like a shard
    assert _split_member("/x/a.tar#in.tar#c.mp4") == ("/x/a.tar", "in.tar#c.mp4")
    assert _split_member(".tar#m.mp4") == (".tar", "m.mp4")
