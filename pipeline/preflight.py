"""Checks a run makes before any cluster work, so a user's mistake costs seconds, not a job.

Each check touches the real thing once (the checkpoint's `config.json`, one listing of the
input, a probe object in the output) and turns what went wrong into one of the errors of
`pipeline.core.errors`: one line that names the thing and what to do, its class carrying the
exit code. Mistakes in what the user asked for (a missing checkpoint or input) are bad requests
(exit 2); a world that refuses (an unreachable endpoint, denied bucket, wrong credentials,
read-only output) is an environment failure (exit 1).
"""

from __future__ import annotations

import contextlib
import secrets

from pipeline.annotate.checkpoint_info import (
    CheckpointInfo,
    describe_checkpoint,
    resolve_model_source,
)
from pipeline.config import RunConfig
from pipeline.core.errors import (
    AccessDenied,
    CheckpointUnusable,
    ClipnoteError,
    EnvironmentFailure,
    LocationNotFound,
    NotWritable,
    Unreachable,
)
from pipeline.core.storage import StorageOptions, filesystem, is_remote, join, strip_scheme

# S3 error codes that mean "these credentials are not valid here", not "not allowed".
_CREDENTIAL_CODES = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidToken", "ExpiredToken"}


def _error_code(exc: BaseException) -> str | None:
    """The S3 error code behind an s3fs exception (s3fs keeps botocore's error as the cause)."""
    for err in (exc, exc.__cause__, exc.__context__):
        response = getattr(err, "response", None)
        if isinstance(response, dict):
            return response.get("Error", {}).get("Code")
    return None


def _is_connection_error(exc: BaseException) -> bool:
    names = {cls.__name__ for err in (exc, exc.__cause__) if err for cls in type(err).__mro__}
    return bool(
        names & {"EndpointConnectionError", "ConnectTimeoutError", "ClientConnectorError"}
    ) or isinstance(exc, ConnectionError)


def storage_problem(
    exc: BaseException, what: str, uri: str, options: StorageOptions | None
) -> ClipnoteError:
    """Explain a storage failure on `uri` (`what`: the config field it came from)."""
    endpoint = (options and options.endpoint_url) or "AWS S3"
    code = _error_code(exc)
    if type(exc).__name__ == "NoCredentialsError" or code == "NoCredentialsError":
        return AccessDenied(
            f"{what}: no S3 credentials found for {uri}: set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or use an instance role"
        )
    if _is_connection_error(exc):
        return Unreachable(
            f"{what}: cannot reach the S3 endpoint {endpoint} for {uri}: check "
            "storage.endpoint_url and that the server is up"
        )
    if code in _CREDENTIAL_CODES:
        return AccessDenied(
            f"{what}: the S3 server at {endpoint} rejected the credentials ({code}) for "
            f"{uri}: check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or AWS_PROFILE"
        )
    if isinstance(exc, PermissionError):
        reason = f" ({code})" if code else f" ({exc})"
        return AccessDenied(
            f"{what}: access denied to {uri}{reason}: these credentials may not use this "
            "bucket or prefix"
        )
    if isinstance(exc, FileNotFoundError) or code in {"NoSuchBucket", "NoSuchKey"}:
        return LocationNotFound(f"{what}: nothing at {uri} (no such bucket or object)")
    detail = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return EnvironmentFailure(f"{what}: cannot use {uri}: {detail}")


def check_model(config: RunConfig) -> CheckpointInfo:
    """The checkpoint's config and preprocessing, read without loading any weights."""
    from model.configuration import ConfigError as ModelConfigError

    source = resolve_model_source(config.model.source)
    options = config.storage.options()
    try:
        return describe_checkpoint(source, options)
    except FileNotFoundError as err:
        raise CheckpointUnusable(
            f"model.source: {source} has no config.json: point --model (or model.source) at "
            "a TinyLLaVA-Video checkpoint folder or s3:// prefix, or use 'toy'"
        ) from err
    except (ModelConfigError, ValueError) as err:
        raise CheckpointUnusable(
            f"model.source: {source}: not a usable TinyLLaVA-Video checkpoint: {err}"
        ) from err
    except OSError as err:
        raise storage_problem(err, "model.source", source, options) from None


def _listing_prefix(uri: str) -> str:
    """What must exist for `uri` to list anything: a glob's fixed part, else the URI."""
    return uri.split("*", 1)[0].split("?", 1)[0] if "*" in uri else uri


def check_input(config: RunConfig) -> None:
    """Something is there to list, and the credentials may list it."""
    uri = _listing_prefix(config.input)
    options = config.storage.options()
    fs = filesystem(uri, options)
    if not is_remote(uri):
        if not fs.exists(uri) and "*" not in config.input:
            raise LocationNotFound(
                f"input: nothing at {uri}: give a folder, video, .tar shard or manifest"
            )
        return
    bucket, _, key = strip_scheme(uri).partition("/")
    try:
        listing = fs.call_s3("list_objects_v2", Bucket=bucket, Prefix=key, MaxKeys=1)
    except Exception as err:  # s3fs raises OSError subclasses, botocore its own classes
        raise storage_problem(err, "input", config.input, options) from None
    if not listing.get("KeyCount") and "*" not in config.input:
        raise LocationNotFound(f"input: nothing at {config.input} (no object under this prefix)")


def check_output(config: RunConfig) -> None:
    """Writing works: a probe object is written under `_runs/` and removed again."""
    options = config.storage.options()
    fs = filesystem(config.output, options)
    probe = strip_scheme(join(config.output, "_runs", f".write-probe-{secrets.token_hex(4)}"))
    try:
        if not is_remote(config.output):
            fs.makedirs(probe.rsplit("/", 1)[0], exist_ok=True)
        with fs.open(probe, "wb") as fh:
            fh.write(b"clipnote write probe\n")
    except Exception as err:
        problem = storage_problem(err, "output", config.output, options)
        if not is_remote(config.output):
            detail = getattr(err, "strerror", None) or str(err)
            problem = NotWritable(f"output: cannot write to {config.output}: {detail}")
        raise problem from None
    with contextlib.suppress(OSError):  # may write but not delete: runs only write and rename
        fs.rm(probe)


def preflight(config: RunConfig, *, output: bool = True) -> CheckpointInfo:
    """Every check, cheapest and most likely mistake first. `output=False` for a command that
    never writes to the output (`clipnote plan` measures into a temporary folder): its probe
    would leave a `_runs/` folder behind in an output nothing else touches."""
    info = check_model(config)
    check_input(config)
    if output:
        check_output(config)
    return info
