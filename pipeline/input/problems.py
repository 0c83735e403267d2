"""Listed inputs that cannot be read at all (missing, unreadable shard, refused entry):
they stay in the listing so that decode turns each into an error row, never a gap.
"""

from __future__ import annotations

from pipeline.core.records import VideoRef

MISSING_VERSION = "missing"


UNREADABLE_TAR_SUFFIX = ":unreadable-tar"


INVALID_PREFIX = "invalid:"
"""`version` of a listed entry that cannot be read at all; the reason follows the prefix."""


class SourceError(RuntimeError):
    """An input that cannot be listed or read; the message names the URI, never credentials."""


def listing_error(ref: VideoRef) -> str | None:
    """Why a listed ref cannot be read at all (missing, unreadable shard, refused entry)."""
    if ref.version == MISSING_VERSION:
        return f"object not found: {ref.uri}"
    if ref.version.endswith(UNREADABLE_TAR_SUFFIX):
        return f"not a readable (uncompressed) tar shard: {ref.uri}"
    if ref.version.startswith(INVALID_PREFIX):
        return ref.version[len(INVALID_PREFIX) :].strip()
    return None


def _missing(uri: str) -> VideoRef:
    return VideoRef(uri=uri, size=-1, version=MISSING_VERSION)
