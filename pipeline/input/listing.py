"""Which videos a run covers: turning an input URI into a stream of versioned `VideoRef`.

Listing is pure (no Ray) and streams: a run writes what it lists into its work plan
(`pipeline.work_plan`) page by page, so no process ever holds the whole listing, and the plan
is the run's input of record: every listed video gets an output row, captioned or failed.
That is why nothing that was asked for is dropped here. A manifest entry that does not exist is
listed with `size=-1`, and a `.tar` shard that cannot be parsed is listed as one ref for the
shard itself; both carry the reason in `VideoRef.problem` (`pipeline.input.problems`),
`read_video` raises it as a `SourceError`, and the decode stage turns that into an error row.

Inputs, by what `input_uri` names:
- a local directory or an `s3://bucket/prefix`: recursive; videos by extension, and `.tar`
  shards expanded into their video members;
- a glob (`*` in the URI), local or S3: each match is handled like a directory, video or shard;
- a manifest (`.parquet` / `.jsonl` / `.txt`): explicit entries, local or S3, relative entries
  resolved against the manifest's folder. Entries are not filtered by extension (the user asked
  for them); `.tar` entries are expanded, and `shard.tar#member` entries name one member;
- a single video file or `.tar` shard.

Names are data: a local name that is not UTF-8 is listed with its odd bytes escaped and read
by its raw name; symlinked folders are followed, each real folder once (loops end). A manifest
in object storage may only name objects: a local or absolute path, `~`, `file://` or a `..`
that climbs out of its bucket is refused as an error row, as is a manifest row with no usable
URI or an invalid JSON line: one bad row never stops the listing, and never vanishes.

Tar members are located, never extracted: the ref carries the member's data offset and size in
the shard and `read_video` does one ranged read. Member names are data only (never joined to
a filesystem path), so `../../x.mp4` in a shard is harmless. Only uncompressed tar is supported,
because offsets into a compressed stream cannot be read with a range request.
"""

from __future__ import annotations

import glob as globlib
import itertools
import os
import re
import tarfile
import threading
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pipeline.core.errors import InputNotFound, InputUnreadable, InputUnsupported
from pipeline.core.records import VideoRef
from pipeline.core.storage import (
    StorageOptions,
    filesystem,
    is_remote,
    open_for_arrow,
    s3_client,
    strip_scheme,
)
from pipeline.input.manifests import (
    Entry,
    Refused,
    _jsonl_entries,
    _parquet_entries,
    _resolve_entry,
    _text_entries,
)
from pipeline.input.names import (
    _MEMBER_SEP,
    JSONL_MANIFEST_EXTENSIONS,
    MANIFEST_EXTENSIONS,
    SHARD_EXTENSIONS,
    VIDEO_EXTENSIONS,
    _glob_regex,
    _normalize,
    _once_each,
    _readable,
    _readable_ref,
    _split_member,
    _suffix,
    in_pages,
)
from pipeline.input.problems import missing_ref, unreadable_shard_ref

_TAR_HEADER_BLOCK = 2**16  # S3 read-ahead while walking headers: small, so member data is skipped


_STAT_WORKERS = 16  # manifest entries are stat'ed concurrently: one HEAD each on S3


_ENTRY_PAGE = 1024  # manifest entries expanded at a time (bounds what a listing holds)


def iter_videos(
    input_uri: str,
    options: StorageOptions | None = None,
    extensions: Sequence[str] = VIDEO_EXTENSIONS,
) -> Iterator[VideoRef]:
    """Every video `input_uri` names, once each, streamed in listing order.

    Nothing is held whole: S3 prefixes are read page by page (1,000 keys a request), folders
    walked as they go, manifests read line by line (Parquet: batch by batch) and expanded a
    page of entries at a time. Only manifests and globs can name a video twice; for those a
    16-byte digest per video listed so far is kept to drop repeats (`_once_each`: about 75
    bytes a video, against some 2 KB for a held `VideoRef`).
    """
    lister = _Lister(options, extensions)
    uri = _normalize(input_uri)
    refs = lister.iter_glob(uri) if "*" in uri else lister.iter_input(uri)
    yield from (_readable_ref(ref) for ref in refs)


def list_videos(
    input_uri: str,
    options: StorageOptions | None = None,
    extensions: Sequence[str] = VIDEO_EXTENSIONS,
) -> list[VideoRef]:
    """`iter_videos` collected and sorted by uri, for callers that want the whole list (a
    sample to plan from, tests). Runs stream the listing instead (`pipeline.work_plan`)."""
    return sorted(iter_videos(input_uri, options, extensions), key=lambda ref: ref.uri)


class _Lister:
    """One listing: the options, the extension filter and one filesystem per scheme."""

    def __init__(self, options: StorageOptions | None, extensions: Sequence[str]) -> None:
        self.options = options
        self.extensions = tuple(
            e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions
        )
        self._fs: dict[bool, Any] = {}
        self._s3: Any = None
        self._shards: dict[str, dict[str, VideoRef]] = {}
        self._shard_locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        self._fs_lock = threading.Lock()

    def fs(self, uri: str) -> Any:
        remote = is_remote(uri)
        with self._fs_lock:
            if remote not in self._fs:
                self._fs[remote] = filesystem(uri, self.options)
        return self._fs[remote]

    def stat(self, uri: str) -> dict[str, Any] | None:
        """`{"type", "size", "version"}` for `uri`, or None when nothing is there."""
        try:
            info = self.fs(uri).info(strip_scheme(uri))
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise InputUnreadable(f"cannot stat {uri}: {type(exc).__name__}: {exc}") from exc
        return self.stat_from_info(uri, info)

    def stat_from_info(self, uri: str, info: dict[str, Any]) -> dict[str, Any]:
        if info["type"] == "directory":
            return {"type": "directory", "size": 0, "version": ""}
        return {"type": "file", "size": int(info["size"]), "version": self.version(uri, info)}

    def version(self, uri: str, info: dict[str, Any]) -> str:
        """ETag in S3 (content-derived); mtime in ns locally (float seconds would round)."""
        if is_remote(uri):
            etag = info.get("ETag") or info.get("etag")
            return str(etag).strip('"') if etag else str(info.get("LastModified", ""))
        return str(os.stat(uri).st_mtime_ns)

    # -- what an input URI names ------------------------------------------------------------

    def iter_input(self, uri: str) -> Iterator[VideoRef]:
        member = _split_member(uri)
        if member is not None:
            found = self.shard_member(*member)
            if found is None:
                raise InputNotFound(f"input not found: {uri}")
            yield found
            return
        stat = self.stat(uri)
        if stat is None:
            raise InputNotFound(f"input not found: {uri}")
        suffix = _suffix(uri)
        if stat["type"] == "directory":
            yield from self.walk(uri)
        elif suffix in MANIFEST_EXTENSIONS:
            yield from self.expand_manifest(uri)
        elif suffix in SHARD_EXTENSIONS:
            yield from self.list_shard(uri, stat)
        elif suffix in self.extensions:
            yield VideoRef(uri=uri, size=stat["size"], version=stat["version"])
        else:
            raise InputUnsupported(
                f"unsupported input: {uri} (expected a directory, prefix, glob, video, .tar "
                "shard, or a .parquet/.jsonl/.txt manifest)"
            )

    def iter_glob(self, pattern: str) -> Iterator[VideoRef]:
        """Matches are taken like a directory's contents: directories, videos and shards,
        each video once (a folder and a file inside it can both match)."""
        yield from _once_each(self.iter_matches(pattern))

    def iter_matches(self, pattern: str) -> Iterator[VideoRef]:
        matched = False
        if is_remote(pattern):
            for file_uri, size, version in self.remote_glob(pattern):
                matched = True
                yield from self.listed_file(file_uri, size, version)
        else:
            for path in globlib.iglob(pattern, recursive=True):
                stat = self.stat(path)
                if stat is None:
                    continue
                matched = True
                uri = os.path.abspath(path)
                if stat["type"] == "directory":
                    yield from self.walk(uri)
                else:
                    yield from self.listed_file(uri, stat["size"], stat["version"])
        if not matched:
            raise InputNotFound(f"input not found: no match for {pattern}")

    def remote_glob(self, pattern: str) -> Iterator[tuple[str, int, str]]:
        """Objects a glob names, from one paged listing under its literal prefix: keys that
        match, and keys inside a "folder" that matches."""
        bucket, _, key_pattern = strip_scheme(pattern).partition("/")
        literal = re.split(r"[*?\[]", key_pattern, maxsplit=1)[0]
        matches = _glob_regex(key_pattern).match
        for file_uri, size, version in self.s3_objects(bucket, literal.rpartition("/")[0]):
            key = file_uri[len(f"s3://{bucket}/") :]
            folders = itertools.accumulate(key.split("/")[:-1], lambda a, b: f"{a}/{b}")
            if matches(key) or any(matches(folder) for folder in folders):
                yield file_uri, size, version

    def walk(self, uri: str) -> Iterator[VideoRef]:
        """Every video and shard under a directory or prefix, as the listing goes."""
        for file_uri, size, version in self.files_under(uri):
            yield from self.listed_file(file_uri, size, version)

    def files_under(self, uri: str) -> Iterator[tuple[str, int, str]]:
        if is_remote(uri):
            bucket, _, key = strip_scheme(uri).partition("/")
            yield from self.s3_objects(bucket, key.rstrip("/"))
            return
        seen: set[tuple[int, int]] = set()
        for root, dirs, files in os.walk(uri, followlinks=True):
            try:
                folder = os.stat(root)
            except OSError:
                dirs[:] = []
                continue
            if (folder.st_dev, folder.st_ino) in seen:  # a symlink back to a folder walked
                dirs[:] = []
                continue
            seen.add((folder.st_dev, folder.st_ino))
            dirs.sort()
            for name in sorted(files):
                path = os.path.join(root, name)
                try:
                    st = os.stat(path)
                except FileNotFoundError:
                    continue  # dangling symlink, or removed mid-walk
                yield path, st.st_size, str(st.st_mtime_ns)

    def s3_objects(self, bucket: str, folder: str) -> Iterator[tuple[str, int, str]]:
        """`(uri, size, ETag)` of every object under `folder/` (the bucket when empty), page
        by page: one ListObjectsV2 request per 1,000 keys, retried like every S3 call."""
        from botocore.exceptions import BotoCoreError, ClientError

        prefix = f"{folder}/" if folder else ""
        pages = self.s3().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        try:
            for page in pages:
                for item in page.get("Contents", []):
                    if not item["Key"].endswith("/"):  # "folder" marker objects
                        etag = str(item.get("ETag", "")).strip('"')
                        yield f"s3://{bucket}/{item['Key']}", int(item["Size"]), etag
        except (BotoCoreError, ClientError) as exc:
            raise InputUnreadable(
                f"cannot list s3://{bucket}/{prefix}: {type(exc).__name__}: {exc}"
            ) from exc

    def s3(self) -> Any:
        with self._fs_lock:
            if self._s3 is None:
                self._s3 = s3_client(self.options)
        return self._s3

    def listed_file(self, uri: str, size: int, version: str) -> list[VideoRef]:
        """A file met while walking: a video, a shard to expand, or not ours."""
        suffix = _suffix(uri)
        if suffix in SHARD_EXTENSIONS:
            return self.list_shard(uri, {"size": size, "version": version})
        if suffix in self.extensions:
            return [VideoRef(uri=uri, size=size, version=version)]
        return []

    # -- tar shards ---------------------------------------------------------------------------

    def list_shard(self, shard_uri: str, stat: dict[str, Any]) -> list[VideoRef]:
        """Video members of an uncompressed tar, found by walking headers (data is seeked over).

        A shard that cannot be parsed at all, or whose tail is corrupt or truncated, also gets
        one ref for the shard itself so the problem shows up as an error row, not a gap.
        """
        unreadable = unreadable_shard_ref(shard_uri, stat["size"], stat["version"])
        members: dict[str, VideoRef] = {}
        fs = self.fs(shard_uri)
        try:
            with fs.open(strip_scheme(shard_uri), "rb", block_size=_TAR_HEADER_BLOCK) as fh:
                intact = self._read_members(fh, shard_uri, stat, members)
        except FileNotFoundError as exc:
            raise InputNotFound(f"object not found: {shard_uri}") from exc
        except (tarfile.TarError, EOFError):
            intact = False
        refs = list(members.values())
        return refs if intact else [*refs, unreadable]

    def _read_members(
        self, fh: Any, shard_uri: str, stat: dict[str, Any], members: dict[str, VideoRef]
    ) -> bool:
        """Fill `members` (a later duplicate name wins, as on extraction); False if damaged."""
        with tarfile.open(fileobj=fh, mode="r:") as tar:
            for info in tar:
                if not info.isreg() or info.issparse():
                    continue  # dirs, links, devices; sparse data is not one contiguous range
                if _suffix(info.name) not in self.extensions:
                    continue
                members[info.name] = VideoRef(
                    uri=f"{shard_uri}{_MEMBER_SEP}{info.name}",
                    size=info.size,
                    version=f"{stat['version']}:{info.name}",
                    offset=info.offset_data,
                    member=info.name,
                    shard_uri=shard_uri,
                )
            # tarfile ends quietly at a bad header after the first; only zeros (or EOF) are a
            # clean end of archive.
            fh.seek(tar.offset)
            tail = fh.read(tarfile.BLOCKSIZE)
        return not tail.strip(b"\0")

    # -- manifests ----------------------------------------------------------------------------

    def expand_manifest(self, manifest_uri: str) -> Iterator[VideoRef]:
        """Entries in manifest order, each video once, a page at a time: each page's entries
        are stat'ed concurrently (one HEAD each on S3), then the next page is read."""
        yield from _once_each(self.expand_entries(manifest_uri))

    def expand_entries(self, manifest_uri: str) -> Iterator[VideoRef]:
        listed = self.read_manifest_entries(manifest_uri)
        entries = (_resolve_entry(entry, manifest_uri) for entry in listed)
        with ThreadPoolExecutor(max_workers=_STAT_WORKERS) as pool:
            for page in in_pages(entries, _ENTRY_PAGE):
                for group in pool.map(self.expand_resolved, page):
                    yield from group

    def expand_resolved(self, entry: Entry) -> Iterable[VideoRef]:
        """One entry, stat'ed here (in the pool); a folder's walk is returned unstarted and
        runs as the listing reaches it."""
        return [entry.ref()] if isinstance(entry, Refused) else self.expand_entry(entry)

    def expand_entry(self, uri: str) -> Iterable[VideoRef]:
        """One manifest entry; missing entries stay in the list so they get an error row."""
        member = _split_member(uri)
        if member is not None:
            return [self.shard_member(*member) or missing_ref(uri)]
        stat = self.stat(uri)
        if stat is None:
            return [missing_ref(uri)]
        if stat["type"] == "directory":
            return self.walk(uri)
        if _suffix(uri) in SHARD_EXTENSIONS:
            return self.list_shard(uri, stat)
        return [VideoRef(uri=uri, size=stat["size"], version=stat["version"])]

    def shard_member(self, shard_uri: str, member: str) -> VideoRef | None:
        """One member named by a `shard.tar#member` entry (e.g. re-running failed rows).

        Each shard is listed once per listing, however many of its members are named.
        """
        with self._lock:
            shard_lock = self._shard_locks.setdefault(shard_uri, threading.Lock())
        with shard_lock:
            if shard_uri not in self._shards:
                stat = self.stat(shard_uri)
                refs = self.list_shard(shard_uri, stat) if stat and stat["type"] == "file" else []
                by_name = {r.member: r for r in refs if r.member is not None}
                for name, ref in list(by_name.items()):  # as the output wrote a non-UTF-8 name
                    by_name.setdefault(_readable(name), ref)
                self._shards[shard_uri] = by_name
        return self._shards[shard_uri].get(member)

    def read_manifest_entries(self, manifest_uri: str) -> Iterator[Entry]:
        """The manifest's entries as it is read (never the whole text or table at once)."""
        suffix = _suffix(manifest_uri)
        fs = self.fs(manifest_uri)
        if suffix == ".parquet":  # Arrow's own file where it can be (`open_for_arrow`)
            with open_for_arrow(fs, manifest_uri) as fh:
                yield from _parquet_entries(fh, manifest_uri)
            return
        with fs.open(strip_scheme(manifest_uri), "rb") as fh:
            # Local file names need not be UTF-8: keep their bytes (surrogateescape).
            lines = (raw.decode("utf-8", errors="surrogateescape") for raw in fh)
            if suffix in JSONL_MANIFEST_EXTENSIONS:
                yield from _jsonl_entries(lines, manifest_uri)
            else:
                yield from _text_entries(lines)
