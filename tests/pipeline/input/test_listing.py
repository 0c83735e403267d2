"""Listing inputs: local dirs, S3 prefixes (real moto server), manifests, tar shards, globs."""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import tarfile
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from model.toy.video_io import write_mp4
from pipeline.core.errors import InputNotFound, InputUnsupported, SourceError
from pipeline.core.storage import StorageOptions
from pipeline.input.fetch import read_video
from pipeline.input.listing import iter_videos, list_videos
from pipeline.input.names import _glob_regex
from pipeline.input.problems import MISSING_VERSION, UNREADABLE_TAR_SUFFIX


def _mp4(path: Path, seed: int = 0) -> bytes:
    """A real 4-frame 32x32 H.264 MP4; the seed makes different content."""
    frames = np.random.default_rng(seed).integers(0, 256, (4, 32, 32, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_mp4(frames, path, fps=8)
    return path.read_bytes()


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _shard_bytes() -> bytes:
    """A shard with video members, hostile names, and members that are not regular files."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        _add(tar, "a.mp4", b"A" * 1000)
        _add(tar, "sub/b.MOV", os.urandom(3000))
        _add(tar, "notes.txt", b"not a video")
        _add(tar, "../../x.mp4", b"escape attempt")
        _add(tar, "/etc/passwd.mp4", b"absolute name")
        _add(tar, "long/" + "n" * 150 + ".mp4", b"long name via pax header")
        for kind, name in [(tarfile.DIRTYPE, "dir.mp4"), (tarfile.SYMTYPE, "link.mp4")]:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = "a.mp4"
            tar.addfile(info)
        hard = tarfile.TarInfo("hard.mp4")
        hard.type = tarfile.LNKTYPE
        hard.linkname = "a.mp4"
        tar.addfile(hard)
        fifo = tarfile.TarInfo("fifo.mp4")
        fifo.type = tarfile.FIFOTYPE
        tar.addfile(fifo)
    return buf.getvalue()


SHARD_VIDEO_MEMBERS = sorted(
    ["a.mp4", "sub/b.MOV", "../../x.mp4", "/etc/passwd.mp4", "long/" + "n" * 150 + ".mp4"]
)


def _members_in_memory(shard: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(shard), mode="r:") as tar:
        return {
            m.name: tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in tar.getmembers()
            if m.isreg()
        }


@pytest.fixture()
def bucket(s3_client: Any) -> str:
    name = f"src-{uuid.uuid4().hex[:12]}"
    s3_client.create_bucket(Bucket=name)
    return name


@pytest.fixture()
def s3_options(s3_endpoint: str) -> StorageOptions:
    return StorageOptions(endpoint_url=s3_endpoint)


def _etag(s3_client: Any, bucket: str, key: str) -> str:
    return s3_client.head_object(Bucket=bucket, Key=key)["ETag"].strip('"')


# -- local directories -------------------------------------------------------------------------


def test_local_directory_lists_videos_recursively_sorted_with_mtime_versions(
    tmp_path: Path,
) -> None:
    root = tmp_path / "videos"
    expected = {
        root / "b.mp4": _mp4(root / "b.mp4", seed=1),
        root / "A" / "deep" / "c.MOV": _mp4(root / "A" / "deep" / "c.MOV", seed=2),
        root / "z" / "d.webm": b"webm bytes",
        root / "e.m4v": b"m4v",
    }
    for path, data in list(expected.items())[2:]:
        _write(path, data)
    _write(root / "readme.txt", b"no")
    _write(root / "z" / "frame.png", b"no")
    _write(root / "mp4", b"no extension, just a name")

    refs = list_videos(str(root))

    assert [r.uri for r in refs] == sorted(str(p) for p in expected)
    for ref in refs:
        path = Path(ref.uri)
        assert ref.size == len(expected[path])
        assert ref.version == str(path.stat().st_mtime_ns)
        assert (ref.offset, ref.member, ref.shard_uri) == (None, None, None)
        assert read_video(ref) == expected[path]
    assert list_videos(str(root) + "/") == refs  # trailing slash, same listing
    assert [r.uri for r in list_videos(str(root), extensions=(".MP4",))] == [str(root / "b.mp4")]


def test_relative_local_input_lists_absolute_uris(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tmp_path / "in" / "a.mp4", b"a")
    monkeypatch.chdir(tmp_path)
    assert [r.uri for r in list_videos("in")] == [str(tmp_path / "in" / "a.mp4")]


def test_single_video_file_is_its_own_listing(tmp_path: Path) -> None:
    path = _write(tmp_path / "one.mkv", b"mkv")
    (ref,) = list_videos(str(path))
    assert (ref.uri, ref.size) == (str(path), 3)


def test_video_id_is_stable_across_listings_and_changes_with_content(tmp_path: Path) -> None:
    path = tmp_path / "v" / "a.mp4"
    _mp4(path, seed=1)
    first = list_videos(str(tmp_path / "v"))
    assert [r.video_id for r in list_videos(str(tmp_path / "v"))] == [r.video_id for r in first]

    _mp4(path, seed=2)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # coarse-mtime filesystems
    (changed,) = list_videos(str(tmp_path / "v"))
    assert changed.uri == first[0].uri
    assert changed.video_id != first[0].video_id


# -- S3 prefixes -------------------------------------------------------------------------------


def test_s3_prefix_lists_with_etag_versions_and_reads_exact_bytes(
    tmp_path: Path, s3_client: Any, bucket: str, s3_options: StorageOptions
) -> None:
    objects = {
        "in/a.mp4": _mp4(tmp_path / "a.mp4", seed=3),
        "in/nested/deeper/b.AVI": os.urandom(5000),
        "in/c.webm": b"webm",
    }
    for key, data in objects.items():
        s3_client.put_object(Bucket=bucket, Key=key, Body=data)
    s3_client.put_object(Bucket=bucket, Key="in/notes.txt", Body=b"no")
    s3_client.put_object(Bucket=bucket, Key="in2/sibling.mp4", Body=b"other prefix")
    s3_client.put_object(Bucket=bucket, Key="other/x.mp4", Body=b"other prefix")

    refs = list_videos(f"s3://{bucket}/in", s3_options)

    assert [r.uri for r in refs] == sorted(f"s3://{bucket}/{k}" for k in objects)
    for ref in refs:
        key = ref.uri.removeprefix(f"s3://{bucket}/")
        assert ref.size == len(objects[key])
        assert ref.version == _etag(s3_client, bucket, key)
        assert '"' not in ref.version
        assert read_video(ref, s3_options) == objects[key]
    assert list_videos(f"s3://{bucket}/in/", s3_options) == refs
    assert len(list_videos(f"s3://{bucket}", s3_options)) == len(objects) + 2


def test_s3_overwrite_changes_etag_and_video_id(
    s3_client: Any, bucket: str, s3_options: StorageOptions
) -> None:
    s3_client.put_object(Bucket=bucket, Key="v/a.mp4", Body=b"first")
    (before,) = list_videos(f"s3://{bucket}/v", s3_options)
    (again,) = list_videos(f"s3://{bucket}/v", s3_options)
    s3_client.put_object(Bucket=bucket, Key="v/a.mp4", Body=b"other")  # same size
    (after,) = list_videos(f"s3://{bucket}/v", s3_options)
    assert again.video_id == before.video_id
    assert after.version != before.version
    assert after.video_id != before.video_id


# -- manifests ---------------------------------------------------------------------------------


def _write_manifest(path: Path, entries: list[str], fmt: str, key: str = "uri") -> None:
    if fmt == "txt":
        lines = ["# a comment line", "", *entries[:2], "   ", *entries[2:]]
        path.write_text("\n".join(lines) + "\n")
    elif fmt == "jsonl":
        rows = [json.dumps({key: e, "extra": i}) for i, e in enumerate(entries)]
        path.write_text("\n".join([*rows[:2], "", *rows[2:]]) + "\n")
    else:
        table = pa.table({"other": list(range(len(entries))), key: entries})
        pq.write_table(table, path)


@pytest.mark.parametrize(
    ("fmt", "key"),
    [("txt", "uri"), ("jsonl", "uri"), ("jsonl", "video_uri"), ("parquet", "path")],
)
def test_manifest_lists_local_relative_s3_and_missing_entries_once(
    tmp_path: Path,
    s3_client: Any,
    bucket: str,
    s3_options: StorageOptions,
    fmt: str,
    key: str,
) -> None:
    absolute = _write(tmp_path / "elsewhere" / "abs.mp4", b"absolute")
    relative = _write(tmp_path / "lists" / "clips" / "rel.bin", b"relative; no video extension")
    s3_client.put_object(Bucket=bucket, Key="m/remote.mov", Body=b"remote")
    entries = [
        str(absolute),
        "clips/rel.bin",
        f"s3://{bucket}/m/remote.mov",
        "clips/../clips/rel.bin",  # the same file again, spelled differently
        "clips/gone.mp4",
        f"s3://{bucket}/m/gone.mp4",
        str(absolute),
    ]
    manifest = tmp_path / "lists" / f"manifest.{fmt}"
    _write_manifest(manifest, entries, fmt, key)

    refs = list_videos(str(manifest), s3_options)

    by_uri = {r.uri: r for r in refs}
    assert [r.uri for r in refs] == sorted(by_uri)
    assert set(by_uri) == {
        str(absolute),
        str(relative),
        f"s3://{bucket}/m/remote.mov",
        str(tmp_path / "lists" / "clips" / "gone.mp4"),
        f"s3://{bucket}/m/gone.mp4",
    }
    assert by_uri[str(absolute)].version == str(absolute.stat().st_mtime_ns)
    assert by_uri[f"s3://{bucket}/m/remote.mov"].version == _etag(s3_client, bucket, "m/remote.mov")
    for missing in (str(tmp_path / "lists" / "clips" / "gone.mp4"), f"s3://{bucket}/m/gone.mp4"):
        assert (by_uri[missing].size, by_uri[missing].version) == (-1, MISSING_VERSION)
        assert by_uri[missing].problem == f"object not found: {missing}"
        with pytest.raises(SourceError, match=r"object not found: .*gone\.mp4"):
            read_video(by_uri[missing], s3_options)
    assert read_video(by_uri[str(relative)], s3_options) == relative.read_bytes()


def test_manifest_in_s3_resolves_relative_entries_in_its_prefix(
    s3_client: Any, bucket: str, s3_options: StorageOptions
) -> None:
    s3_client.put_object(Bucket=bucket, Key="run/videos/a.mp4", Body=b"a")
    s3_client.put_object(Bucket=bucket, Key="shared/b.mp4", Body=b"bb")
    body = "videos/a.mp4\n../shared/b.mp4\nvideos/none.mp4\n"
    s3_client.put_object(Bucket=bucket, Key="run/list.txt", Body=body.encode())

    refs = list_videos(f"s3://{bucket}/run/list.txt", s3_options)

    assert [(r.uri, r.size) for r in refs] == [
        (f"s3://{bucket}/run/videos/a.mp4", 1),
        (f"s3://{bucket}/run/videos/none.mp4", -1),
        (f"s3://{bucket}/shared/b.mp4", 2),
    ]


def test_manifest_without_a_uri_column_is_an_error(tmp_path: Path) -> None:
    pq.write_table(pa.table({"name": ["a.mp4"]}), tmp_path / "m.parquet")
    with pytest.raises(SourceError, match=r"m\.parquet has none of the columns"):
        list_videos(str(tmp_path / "m.parquet"))


MANIFEST_ROWS = [
    {"uri": "a.mp4", "path": None},
    {"uri": None, "path": "b.mp4"},  # falls back to the next column, in both formats
    {"uri": "  ", "path": ""},  # nothing usable: an error row, not a silent gap
]


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
def test_manifest_rows_fall_back_per_row_the_same_in_both_formats(tmp_path: Path, fmt) -> None:
    """Caught: Parquet used only the first column and dropped rows whose cell was null or
    blank ([a, b, c] listed as [a]) while JSONL fell back to `path` ([a, b])."""
    for name in ("a.mp4", "b.mp4"):
        (tmp_path / name).write_bytes(b"v")
    manifest = tmp_path / f"m.{fmt}"
    if fmt == "parquet":
        pq.write_table(pa.Table.from_pylist(MANIFEST_ROWS), manifest)
    else:
        manifest.write_text("".join(json.dumps(row) + "\n" for row in MANIFEST_ROWS))
    refs = list_videos(str(manifest))
    where = "row 3" if fmt == "parquet" else "line 3"
    assert [r.uri for r in refs] == [
        str(tmp_path / "a.mp4"), str(tmp_path / "b.mp4"),
        f"{manifest}#{where.replace(' ', '-')}",
    ]  # fmt: skip
    with pytest.raises(SourceError) as err:
        read_video(refs[2])
    assert str(err.value) == (
        f"manifest {manifest} {where}: none of ['uri', 'video_uri', 'path'] has a value"
    )


def test_bad_jsonl_lines_are_error_rows_and_the_rest_is_listed(tmp_path: Path) -> None:
    (tmp_path / "a.mp4").write_bytes(b"v")
    manifest = tmp_path / "m.jsonl"
    manifest.write_bytes(b'{"uri": "a.mp4"}\n{not json\n["a.mp4"]\n{"uri": "caf\xe9"}\n\n')
    refs = list_videos(str(manifest))
    by_uri = {r.uri: r for r in refs}
    assert sorted(by_uri) == sorted(
        [str(tmp_path / "a.mp4")] + [f"{manifest}#line-{n}" for n in (2, 3, 4)]
    )
    messages = {}
    for n in (2, 3, 4):
        with pytest.raises(SourceError) as err:
            read_video(by_uri[f"{manifest}#line-{n}"])
        messages[n] = str(err.value)
    assert messages[2].startswith(f"manifest {manifest} line 2: invalid JSON")
    assert (
        messages[3]
        == f"manifest {manifest} line 3: none of ['uri', 'video_uri', 'path'] has a value"
    )
    assert messages[4].startswith(f"manifest {manifest} line 4: invalid JSON")


def test_empty_manifest_lists_nothing(tmp_path: Path) -> None:
    for name in ("m.txt", "m.jsonl"):
        (tmp_path / name).write_text("\n# only a comment\n" if name == "m.txt" else "\n")
        assert list_videos(str(tmp_path / name)) == []


def test_text_manifest_with_file_uri_home_and_non_utf8_names(tmp_path: Path, monkeypatch) -> None:
    """Caught: a non-UTF-8 `.txt` manifest raised a bare UnicodeDecodeError."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "h.mp4").write_bytes(b"home")
    (tmp_path / "f.mp4").write_bytes(b"file-uri")
    raw_name = os.fsencode(tmp_path) + b"/caf\xe9.mp4"
    with open(raw_name, "wb") as fh:
        fh.write(b"latin-1 name")
    manifest = tmp_path / "m.txt"
    manifest.write_bytes(
        b"~/h.mp4\nfile://" + os.fsencode(tmp_path / "f.mp4") + b"\n" + raw_name + b"\n"
    )
    refs = list_videos(str(manifest))
    assert [r.uri for r in refs] == [
        f"{tmp_path}/caf\\xe9.mp4",
        str(tmp_path / "f.mp4"),
        str(tmp_path / "home" / "h.mp4"),
    ]
    assert [read_video(r) for r in refs] == [b"latin-1 name", b"file-uri", b"home"]
    pa.Table.from_pylist([r.to_row() for r in refs])  # Arrow takes every field


# -- names that are not UTF-8, symlinks ----------------------------------------------------


def test_non_utf8_names_list_readably_and_read_by_raw_name(tmp_path: Path) -> None:
    """Caught: `caf\\xe9.mp4` in a folder crashed the whole run at the Arrow conversion."""
    folder = os.fsencode(tmp_path / "videos")
    os.makedirs(folder + b"/d\xfcr")
    with open(folder + b"/caf\xe9.mp4", "wb") as fh:
        fh.write(b"one")
    with open(folder + b"/d\xfcr/ok.mp4", "wb") as fh:
        fh.write(b"two")
    refs = list_videos(str(tmp_path / "videos"))
    base = tmp_path / "videos"
    assert [r.uri for r in refs] == [f"{base}/caf\\xe9.mp4", f"{base}/d\\xfcr/ok.mp4"]
    assert [read_video(r) for r in refs] == [b"one", b"two"]
    table = pa.Table.from_pylist([r.to_row() for r in refs])
    from pipeline.core.records import VideoRef

    back = [VideoRef.from_row(row) for row in table.to_pylist()]
    assert [read_video(r) for r in back] == [b"one", b"two"]


def test_latin1_tar_member_names_become_readable_uris(tmp_path: Path) -> None:
    shard = tmp_path / "s.tar"
    with tarfile.open(shard, "w", format=tarfile.GNU_FORMAT, encoding="latin-1") as tar:
        _add(tar, "caf\u00e9.mp4", b"member bytes")
    refs = list_videos(str(shard))
    assert [r.uri for r in refs] == [f"{shard}#caf\\xe9.mp4"]
    assert read_video(refs[0]) == b"member bytes"
    pa.Table.from_pylist([r.to_row() for r in refs])


def test_symlinked_folders_are_followed_once_and_loops_end(tmp_path: Path) -> None:
    """Caught: a symlinked sub-folder was silently skipped by the directory listing."""
    real = tmp_path / "elsewhere"
    real.mkdir()
    (real / "linked.mp4").write_bytes(b"l")
    videos = tmp_path / "videos"
    (videos / "sub").mkdir(parents=True)
    (videos / "sub" / "own.mp4").write_bytes(b"o")
    (videos / "link").symlink_to(real, target_is_directory=True)
    (videos / "sub" / "loop").symlink_to(videos, target_is_directory=True)
    refs = list_videos(str(videos))
    assert [r.uri for r in refs] == [
        str(videos / "link" / "linked.mp4"),
        str(videos / "sub" / "own.mp4"),
    ]


# -- what a remote manifest may name ---------------------------------------------------------


def test_remote_manifest_may_not_name_local_files_or_leave_its_bucket(
    s3_client: Any, bucket: str, s3_options: StorageOptions, tmp_path: Path
) -> None:
    """Caught: an S3 manifest naming `~/.aws/credentials` or `../../other-bucket/x.mp4` made
    workers read them (the row even said whether the file existed and its size)."""
    secret = tmp_path / "credentials"
    secret.write_text("aws_secret_access_key = x")
    s3_client.put_object(Bucket=bucket, Key="lists/ok.mp4", Body=b"ok")
    entries = [
        "ok.mp4", str(secret), "~/.aws/credentials", f"file://{secret}",
        "../../other-bucket/x.mp4", "/home/ubuntu/.ray/auth_token",
    ]  # fmt: skip
    s3_client.put_object(Bucket=bucket, Key="lists/m.txt", Body="\n".join(entries).encode())
    refs = list_videos(f"s3://{bucket}/lists/m.txt", s3_options)
    by_uri = {r.uri: r for r in refs}
    assert set(by_uri) == {f"s3://{bucket}/lists/ok.mp4", *entries[1:]}
    assert read_video(by_uri[f"s3://{bucket}/lists/ok.mp4"], s3_options) == b"ok"
    for entry in entries[1:]:
        ref = by_uri[entry]
        assert ref.size == -1
        with pytest.raises(SourceError) as err:
            read_video(ref, s3_options)
        expected = "leaves its bucket" if entry.startswith("..") else "names a local"
        assert expected in str(err.value) and entry in str(err.value)


def test_manifest_can_list_shards_and_single_members(tmp_path: Path) -> None:
    shard = _write(tmp_path / "data" / "s.tar", _shard_bytes())
    manifest = tmp_path / "list.txt"
    manifest.write_text(
        "data/s.tar\n"
        f"{shard}#a.mp4\n"  # also listed through the shard: once in the result
        "data/s.tar#sub/b.MOV\n"
        "data/s.tar#not-there.mp4\n"
    )
    refs = list_videos(str(manifest))
    members = [r.member for r in refs if r.member is not None]
    assert sorted(members) == SHARD_VIDEO_MEMBERS
    (missing,) = [r for r in refs if r.member is None]
    assert (missing.uri, missing.version) == (f"{shard}#not-there.mp4", MISSING_VERSION)
    (only,) = list_videos(f"{shard}#sub/b.MOV")
    assert read_video(only) == _members_in_memory(shard.read_bytes())["sub/b.MOV"]


# -- tar shards --------------------------------------------------------------------------------


def _assert_shard_listing(refs: list[Any], shard_uri: str, shard: bytes, version: str) -> None:
    expected = _members_in_memory(shard)
    assert [r.member for r in refs] == SHARD_VIDEO_MEMBERS  # uri order == member order here
    for ref in refs:
        assert ref.uri == f"{shard_uri}#{ref.member}"
        assert ref.shard_uri == shard_uri
        assert ref.size == len(expected[ref.member])
        assert ref.version == f"{version}:{ref.member}"
        assert shard[ref.offset : ref.offset + ref.size] == expected[ref.member]


def test_local_shard_members_located_and_read_without_extraction(tmp_path: Path) -> None:
    shard = _shard_bytes()
    shard_path = _write(tmp_path / "shards" / "s.tar", shard)

    refs = list_videos(str(tmp_path / "shards"))

    version = str(shard_path.stat().st_mtime_ns)
    _assert_shard_listing(refs, str(shard_path), shard, version)
    expected = _members_in_memory(shard)
    before = sorted(p for p in tmp_path.rglob("*"))
    for ref in refs:
        assert read_video(ref) == expected[ref.member]
    assert sorted(p for p in tmp_path.rglob("*")) == before
    for folder in (tmp_path, tmp_path.parent, tmp_path.parent.parent, Path.cwd()):
        assert not (folder / "x.mp4").exists()
    assert not list(tmp_path.parent.parent.rglob("x.mp4"))
    assert not Path("/etc/passwd.mp4").exists()


def test_s3_shard_members_read_by_range(
    s3_client: Any, bucket: str, s3_options: StorageOptions
) -> None:
    shard = _shard_bytes()
    s3_client.put_object(Bucket=bucket, Key="shards/000.tar", Body=shard)
    shard_uri = f"s3://{bucket}/shards/000.tar"

    refs = list_videos(f"s3://{bucket}/shards", s3_options)

    _assert_shard_listing(refs, shard_uri, shard, _etag(s3_client, bucket, "shards/000.tar"))
    expected = _members_in_memory(shard)
    for ref in refs:
        assert read_video(ref, s3_options) == expected[ref.member]
    assert list_videos(shard_uri, s3_options) == refs


def test_real_mp4_member_round_trips_through_a_shard(tmp_path: Path) -> None:
    video = _mp4(tmp_path / "clip.mp4", seed=5)
    with tarfile.open(tmp_path / "s.tar", "w") as tar:
        _add(tar, "clip.mp4", video)
    (ref,) = list_videos(str(tmp_path / "s.tar"))
    assert read_video(ref) == video


def test_duplicate_member_name_lists_the_last_copy(tmp_path: Path) -> None:
    with tarfile.open(tmp_path / "s.tar", "w") as tar:
        _add(tar, "a.mp4", b"old")
        _add(tar, "a.mp4", b"newer")
    (ref,) = list_videos(str(tmp_path / "s.tar"))
    assert read_video(ref) == b"newer"


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(os.urandom(4096), id="random-bytes"),
        pytest.param(b"", id="empty"),
        pytest.param(gzip.compress(_shard_bytes()), id="gzip-compressed"),
    ],
)
def test_unreadable_shard_is_listed_once_for_an_error_row(tmp_path: Path, content: bytes) -> None:
    path = _write(tmp_path / "bad.tar", content)
    _write(tmp_path / "ok.mp4", b"fine")

    refs = list_videos(str(tmp_path))

    assert [r.uri for r in refs] == [str(path), str(tmp_path / "ok.mp4")]
    bad = refs[0]
    assert bad.size == len(content)
    assert bad.version == str(path.stat().st_mtime_ns) + UNREADABLE_TAR_SUFFIX
    assert bad.problem == f"not a readable (uncompressed) tar shard: {path}"
    assert bad.member is None
    assert refs[1].problem is None
    with pytest.raises(SourceError, match=r"bad\.tar"):
        read_video(bad)


def test_damaged_shard_keeps_good_members_and_flags_the_shard(
    tmp_path: Path, s3_client: Any, bucket: str, s3_options: StorageOptions
) -> None:
    shard = _shard_bytes()
    offsets = {r.member: r.offset for r in list_videos(str(_write(tmp_path / "s.tar", shard)))}
    truncated = shard[: offsets["sub/b.MOV"] + 100]  # cut inside the second member's data
    garbage_tail = shard[: offsets["../../x.mp4"] - 512] + os.urandom(2048)
    s3_client.put_object(Bucket=bucket, Key="t.tar", Body=truncated)
    _write(tmp_path / "g.tar", garbage_tail)

    refs = list_videos(f"s3://{bucket}/t.tar", s3_options)
    assert [r.member for r in refs] == [None, "a.mp4", "sub/b.MOV"]  # "t.tar" < "t.tar#..."
    assert (refs[0].uri, refs[0].size) == (f"s3://{bucket}/t.tar", len(truncated))
    assert refs[0].version.endswith(UNREADABLE_TAR_SUFFIX)
    assert read_video(refs[1], s3_options) == b"A" * 1000
    with pytest.raises(SourceError, match="size changed since listing"):
        read_video(refs[2], s3_options)  # the truncated member: a short read is an error

    refs = list_videos(str(tmp_path / "g.tar"))
    assert [r.member for r in refs] == [None, "a.mp4", "sub/b.MOV"]
    assert refs[0].uri == str(tmp_path / "g.tar")


# -- globs and errors --------------------------------------------------------------------------


def test_local_glob(tmp_path: Path) -> None:
    _write(tmp_path / "day1" / "a.mp4", b"a")
    _write(tmp_path / "day1" / "b.txt", b"b")
    _write(tmp_path / "day2" / "deep" / "c.mp4", b"c")
    _write(tmp_path / "night" / "d.mp4", b"d")
    _write(tmp_path / "day2" / "s.tar", _shard_bytes())

    assert [r.uri for r in list_videos(str(tmp_path / "day*" / "*.mp4"))] == [
        str(tmp_path / "day1" / "a.mp4")
    ]
    dirs = [r.uri for r in list_videos(str(tmp_path / "day*"))]
    assert dirs[:2] == [str(tmp_path / "day1" / "a.mp4"), str(tmp_path / "day2" / "deep/c.mp4")]
    assert len(dirs) == 2 + len(SHARD_VIDEO_MEMBERS)
    recursive = list_videos(str(tmp_path / "**" / "*.mp4"))
    assert [Path(r.uri).name for r in recursive] == ["a.mp4", "c.mp4", "d.mp4"]


def test_s3_glob(s3_client: Any, bucket: str, s3_options: StorageOptions) -> None:
    for key in ("2024/01/a.mp4", "2024/02/b.mp4", "2024/02/c.txt", "2025/01/d.mp4"):
        s3_client.put_object(Bucket=bucket, Key=key, Body=key.encode())
    s3_client.put_object(Bucket=bucket, Key="2024/03/s.tar", Body=_shard_bytes())

    refs = list_videos(f"s3://{bucket}/2024/*/*.mp4", s3_options)
    assert [r.uri for r in refs] == [f"s3://{bucket}/2024/01/a.mp4", f"s3://{bucket}/2024/02/b.mp4"]
    assert refs[0].version == _etag(s3_client, bucket, "2024/01/a.mp4")
    months = list_videos(f"s3://{bucket}/2024/*", s3_options)
    assert len(months) == 2 + len(SHARD_VIDEO_MEMBERS)


def test_s3_glob_across_folders_and_classes(
    s3_client: Any, bucket: str, s3_options: StorageOptions
) -> None:
    for key in ("a/x.mp4", "a/b/y.mp4", "a/b/c/z.mp4", "a/b/c/z.txt", "q1/w.mp4", "q2/w.mp4"):
        s3_client.put_object(Bucket=bucket, Key=key, Body=key.encode())

    def names(pattern: str) -> list[str]:
        refs = list_videos(f"s3://{bucket}/{pattern}", s3_options)
        return [r.uri.split(f"{bucket}/", 1)[1] for r in refs]

    assert names("a/**/*.mp4") == ["a/b/c/z.mp4", "a/b/y.mp4", "a/x.mp4"]
    assert names("a/*/y.mp4") == ["a/b/y.mp4"]
    assert names("q[1]/*") == ["q1/w.mp4"]
    assert names("q?/*.mp4") == ["q1/w.mp4", "q2/w.mp4"]  # `*` makes a glob; then `?` too
    with pytest.raises(SourceError, match="no match"):
        names("zz*/x.mp4")


@pytest.mark.parametrize(
    ("pattern", "yes", "no"),
    [
        ("a/*.mp4", ["a/x.mp4", "a/.mp4"], ["a/b/x.mp4", "b/x.mp4", "a/x.mp4.txt"]),
        ("a/**/x.mp4", ["a/x.mp4", "a/b/x.mp4", "a/b/c/x.mp4"], ["ab/x.mp4", "a/b/y.mp4"]),
        ("a/**", ["a/x", "a/b/c"], ["b/a"]),
        ("v?.mp4", ["v1.mp4"], ["v12.mp4", "v/.mp4"]),
        ("d[0-2]/*", ["d0/x", "d2/y"], ["d3/x", "d/x"]),
        ("d[!0]/*", ["d1/x"], ["d0/x"]),
        ("a+b (1).mp4", ["a+b (1).mp4"], ["aab (1).mp4"]),
    ],
)
def test_glob_patterns_mean_what_fsspec_means(pattern: str, yes: list[str], no: list[str]) -> None:
    regex = _glob_regex(pattern)
    assert all(regex.match(key) for key in yes), pattern
    assert not any(regex.match(key) for key in no), pattern


def test_s3_prefix_listing_streams_page_by_page(
    s3_client: Any, bucket: str, s3_options: StorageOptions, monkeypatch
) -> None:
    """More keys than one ListObjectsV2 page (1,000): every one listed once, in key order,
    and the first videos arrive after one page was requested, not the whole listing. (Two
    pages prove the continuation; each key is a put to moto, about 10 ms on 2 cores.)"""
    import pipeline.input.listing as sources

    keys = [f"in/{i:05d}.mp4" for i in range(1050)]
    for key in keys:
        s3_client.put_object(Bucket=bucket, Key=key, Body=b"v")
    s3_client.put_object(Bucket=bucket, Key="in/notes.txt", Body=b"not a video")
    pages, real_client = [], sources.s3_client

    def observed_client(options):  # the real client, with a listener on its list requests
        client = real_client(options)
        client.meta.events.register("before-call.s3.ListObjectsV2", lambda **_: pages.append(1))
        return client

    monkeypatch.setattr(sources, "s3_client", observed_client)
    stream = iter_videos(f"s3://{bucket}/in", s3_options)
    first = next(stream)
    assert first.uri == f"s3://{bucket}/in/00000.mp4" and first.size == 1
    assert len(pages) == 1
    rest = list(stream)
    assert len(pages) == 2
    assert [r.uri for r in [first, *rest]] == [f"s3://{bucket}/{k}" for k in keys]


def test_a_manifest_naming_a_video_twice_lists_it_once(tmp_path: Path) -> None:
    a, b = _write(tmp_path / "a.mp4", b"a"), _write(tmp_path / "b.mp4", b"b")
    lines = [str(a), str(b), str(a), "./b.mp4", str(a)] * 700  # several entry pages
    (tmp_path / "m.txt").write_text("\n".join(lines))
    assert [r.uri for r in iter_videos(str(tmp_path / "m.txt"))] == [str(a), str(b)]


def test_nonexistent_inputs_raise_naming_the_uri(
    tmp_path: Path, s3_client: Any, bucket: str, s3_options: StorageOptions
) -> None:
    cases = [
        str(tmp_path / "nope"),
        str(tmp_path / "nope" / "*.mp4"),
        f"s3://{bucket}/nope",
        f"s3://{bucket}/nope/*.mp4",
        f"s3://no-such-bucket-{uuid.uuid4().hex[:8]}/x",
    ]
    for uri in cases:
        with pytest.raises(InputNotFound, match="not found") as err:
            list_videos(uri, s3_options)
        assert uri in str(err.value)
        assert os.environ["AWS_SECRET_ACCESS_KEY"] not in str(err.value)
    _write(tmp_path / "data.csv", b"uri\na.mp4\n")
    with pytest.raises(InputUnsupported, match=r"unsupported input: .*data\.csv"):
        list_videos(str(tmp_path / "data.csv"))


def test_read_video_of_a_deleted_object_names_it(
    tmp_path: Path, s3_client: Any, bucket: str, s3_options: StorageOptions
) -> None:
    s3_client.put_object(Bucket=bucket, Key="a.mp4", Body=b"a")
    (remote,) = list_videos(f"s3://{bucket}/a.mp4", s3_options)
    s3_client.delete_object(Bucket=bucket, Key="a.mp4")
    with pytest.raises(SourceError, match=re.escape(f"object not found: s3://{bucket}/a.mp4")):
        read_video(remote, s3_options)

    (local,) = list_videos(str(_write(tmp_path / "b.mp4", b"b")))
    (tmp_path / "b.mp4").unlink()
    with pytest.raises(SourceError, match=re.escape(f"object not found: {tmp_path / 'b.mp4'}")):
        read_video(local)
