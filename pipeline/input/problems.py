"""Listed inputs that cannot be read at all (missing, unreadable shard, refused entry):
they stay in the listing so that decode turns each into an error row, never a gap.

The reason travels in `VideoRef.problem`, written here by the lister and read by
`listing_error`. The `version` each such ref gets is the one earlier releases wrote, kept for
identity only (`VideoRef` says why); no code reads a meaning from it.
"""

from __future__ import annotations

from pipeline.core.records import VideoRef

MISSING_VERSION = "missing"


UNREADABLE_TAR_SUFFIX = ":unreadable-tar"


INVALID_PREFIX = "invalid:"
"""`version` of a refused entry: this prefix, a space and the reason."""


def missing_ref(uri: str) -> VideoRef:
    """A manifest entry (or `shard#member`) that names nothing."""
    return VideoRef(uri=uri, size=-1, version=MISSING_VERSION, problem=f"object not found: {uri}")


def unreadable_shard_ref(shard_uri: str, size: int, version: str) -> VideoRef:
    """A `.tar` shard that cannot be parsed, or whose tail is damaged, as one ref."""
    return VideoRef(
        uri=shard_uri,
        size=size,
        version=version + UNREADABLE_TAR_SUFFIX,
        problem=f"not a readable (uncompressed) tar shard: {shard_uri}",
    )


def refused_ref(label: str, reason: str) -> VideoRef:
    """A manifest entry refused before any read (no URI, bad JSON, a path it may not name)."""
    return VideoRef(
        uri=label, size=-1, version=f"{INVALID_PREFIX} {reason}", problem=reason.strip()
    )


def listing_error(ref: VideoRef) -> str | None:
    """Why a listed ref cannot be read at all (missing, unreadable shard, refused entry)."""
    return ref.problem
