"""Every error a user may be shown, in one hierarchy whose classes carry their exit code.

The command line (`jobs.errors`) turns a `ClipnoteError` into one line and `exit_code`; no code
reads a message to choose one, so rewording a message can never change an exit status.

- exit 2 (`BAD_REQUEST`): what the user asked for is wrong: the config, the input, the
  checkpoint, the SQL. Fixing the request fixes the run.
- exit 1 (`ENVIRONMENT`): the world refused: an unreachable endpoint or cluster, denied access,
  an output that cannot be written, a run already being written. The same request may work
  later or elsewhere.

Whoever raises picks the class, because only the raiser knows which of the two it is (a
listing that finds nothing is the user's mistake; one that cannot reach S3 is not). The
model's own errors stay in `model/` (it never imports the pipeline) and `jobs.errors` maps
them by type.

Every class takes its message as its only argument, so it pickles unchanged across Ray and
the decode child, and `str(error)` is the message.
"""

from __future__ import annotations

from typing import ClassVar

BAD_REQUEST = 2
ENVIRONMENT = 1


class ClipnoteError(Exception):
    """Base of the errors the command line explains in one line (anything else is a bug)."""

    exit_code: ClassVar[int] = ENVIRONMENT

    def user_message(self) -> str:
        """The line the command line prints after `clipnote: `."""
        return str(self)


class BadRequest(ClipnoteError):
    """The request is wrong; the message names the field or argument to fix."""

    exit_code = BAD_REQUEST


class EnvironmentFailure(ClipnoteError):
    """The request may be right, but the world refused it."""

    exit_code = ENVIRONMENT


# -- the request is wrong (exit 2) ------------------------------------------------------------


class ConfigError(BadRequest, ValueError):
    """An invalid run configuration or command line; the message names each bad field."""


class LocationNotFound(BadRequest):
    """Nothing at a location the request names (input, output or checkpoint)."""


class CheckpointUnusable(BadRequest):
    """`model.source` names something that is not a usable checkpoint."""


# -- the world refused (exit 1) ---------------------------------------------------------------


class Unreachable(EnvironmentFailure):
    """An endpoint, a Ray cluster or its dashboard does not answer."""


class AccessDenied(EnvironmentFailure):
    """Credentials are missing, rejected, or not allowed to do this."""


class NotWritable(EnvironmentFailure):
    """The output cannot be written."""


class CommitError(EnvironmentFailure, RuntimeError):
    """The output could not be written; committed chunks are left as they were."""


class RunLocked(EnvironmentFailure, RuntimeError):
    """Another live writer holds this run id."""


# -- the input ---------------------------------------------------------------------------------


class SourceError(ClipnoteError, RuntimeError):
    """An input that cannot be listed or read; the message names the URI, never credentials.

    Raise one of the subclasses: they say whose fault it is. Shown as `input: <message>`.
    """

    def user_message(self) -> str:
        return f"input: {self}"


class InputNotFound(BadRequest, SourceError):
    """The input, or an entry or member it names, does not exist."""


class InputUnsupported(BadRequest, SourceError):
    """The input names something clipnote does not read (not a video, shard or manifest)."""


class InputUnreadable(EnvironmentFailure, SourceError):
    """The input exists but cannot be read or listed as it is now (I/O error, a damaged
    shard, a file that changed since listing, a manifest without its columns)."""
