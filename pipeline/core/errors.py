"""The errors a run can end with."""

from __future__ import annotations


class CommitError(RuntimeError):
    """The output could not be written; committed chunks are left as they were."""


class RunLocked(RuntimeError):
    """Another live writer holds this run id."""
