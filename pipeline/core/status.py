"""What a row's `status` can say, and why a decode can end early, in one place: every stage
and every reader compares against these, never against a bare string.

Statuses are plain strings because they are data: the Parquet `status` column, the SQL users
write (`WHERE status = 'ok'`), the keys of a run's counts. Renaming one is a format change.
"""

from __future__ import annotations

from enum import Enum

STATUS_OK = "ok"
"""A clip the model annotated."""


STATUS_DECODE_ERROR = "decode_error"
"""A video (`clip_index` -1) or a clip that could not be read or decoded."""


STATUS_MODEL_ERROR = "model_error"
"""A decoded clip the model failed on."""


ERROR_STATUSES = (STATUS_DECODE_ERROR, STATUS_MODEL_ERROR)


STATUSES = (STATUS_OK, *ERROR_STATUSES)


class FailureKind(str, Enum):
    """Why a supervised decode child ended early (`pipeline.decode.isolation.Failure`)."""

    TIMEOUT = "timeout"
    """The video's whole budget (`decode.timeout_s`) ran out."""
    STALL = "stall"
    """No clip came for `decode.stall_s`."""
    MEMORY = "memory"
    """Over `decode.max_memory_mb`, or an allocation past the address-space cap."""
    SIGNAL = "signal"
    """The child was killed by a signal (a native crash, the OOM killer)."""
    EXIT = "exit"
    """The child exited without finishing its rows."""
    ERROR = "error"
    """The child raised: a bug, not a bad file."""
