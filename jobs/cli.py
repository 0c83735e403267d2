"""The `clipnote` command line.

Every command validates its config and checks the model, input and output before any cluster
work (`pipeline.preflight`). A mistake ends with one line naming the thing and what to do, and
exit code 2 (bad request) or 1 (environment); `--debug` shows the traceback instead.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from pipeline.config import ConfigError

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
console = Console()
err_console = Console(stderr=True)

ConfigArg = Annotated[Path | None, typer.Argument(help="run config (YAML)")]
InputOpt = Annotated[
    str | None, typer.Option("--input", help="videos: s3:// prefix, dir, manifest")
]
OutputOpt = Annotated[str | None, typer.Option("--output", help="output root (s3:// or dir)")]
ModelOpt = Annotated[str | None, typer.Option("--model", help="checkpoint dir or s3:// prefix")]
SetOpt = Annotated[list[str] | None, typer.Option("--set", help="override: key=value")]
DateOpt = Annotated[
    str | None, typer.Option("--date", help="the night, YYYY-MM-DD (default: today, UTC)")
]


@dataclass
class CliState:
    debug: bool = False
    verbose: bool = False


STATE = CliState()


@app.callback()
def _options(
    debug: Annotated[bool, typer.Option("--debug", help="show tracebacks")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", help="show Ray's own logs")] = False,
) -> None:
    STATE.debug, STATE.verbose = debug, verbose


@contextmanager
def user_errors() -> Iterator[None]:
    """One clear line and exit code 2/1 for anything raised inside (traceback with --debug)."""
    try:
        yield
    except (typer.Exit, typer.Abort, KeyboardInterrupt):
        raise
    except Exception as exc:
        if STATE.debug:
            raise
        from jobs.errors import explain

        message, code = explain(exc)
        err_console.print(f"clipnote: {message}", style="red", soft_wrap=True, markup=False)
        raise typer.Exit(code) from None


def _night(day: str | None):
    """`--date` as a date (None: the job picks today, UTC)."""
    from datetime import date

    if day is None:
        return None
    try:
        return date.fromisoformat(day)
    except ValueError:
        raise ConfigError(f"--date: expected YYYY-MM-DD, got {day!r}") from None


def prepared_config(config, input_uri, output_uri, model_uri, sets):
    """The validated config, after the preflight checks (model, input, output) passed."""
    from jobs.options import config_from_cli
    from pipeline.preflight import preflight

    run_config = config_from_cli(config, input_uri, output_uri, model_uri, sets)
    preflight(run_config)
    return run_config


@app.command()
def run(
    config: ConfigArg = None,
    input_uri: InputOpt = None,
    output_uri: OutputOpt = None,
    model_uri: ModelOpt = None,
    sets: SetOpt = None,
) -> None:
    """Caption and tag every video of the input; Parquet + commit record in the output."""
    from jobs.progress import run_with_display

    with user_errors():
        run_config = prepared_config(config, input_uri, output_uri, model_uri, sets)
        run_with_display(run_config, console, verbose=STATE.verbose)


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="where videos and output go")] = Path("clipnote-demo"),
    videos: Annotated[int, typer.Option(min=1, max=64, help="how many toy videos")] = 6,
) -> None:
    """Toy videos -> full pipeline on a local Ray with the shipped toy model -> captions."""
    from jobs.demo import run_demo

    with user_errors():
        run_demo(out.resolve(), videos, console, verbose=STATE.verbose)


@app.command("toy-videos")
def toy_videos(
    out: Annotated[Path, typer.Argument(help="folder to write the videos and truth.jsonl to")],
    n: Annotated[int, typer.Option("--n", min=1, max=10_000, help="how many videos")] = 6,
    seed: Annotated[int, typer.Option(help="the toy world's seed (same seed, same videos)")] = 2026,
    frames: Annotated[int, typer.Option(min=8, max=2400, help="frames per video, 24 fps")] = 48,
) -> None:
    """Write toy-world MP4s with their true captions and tags (truth.jsonl); runs nothing."""
    from model.toy.video_io import TRUTH_FILE, write_toy_videos
    from pipeline.core.errors import NotWritable

    with user_errors():
        try:
            written = write_toy_videos(out, seed=seed, n=n, num_frames=frames)
        except OSError as err:
            raise NotWritable(f"cannot write toy videos to {out}: {err.strerror or err}") from None
    console.print(f"wrote {len(written)} toy videos and their truth to", soft_wrap=True)
    console.print(str((out / TRUTH_FILE).resolve().parent), soft_wrap=True, highlight=False)


@app.command()
def submit(
    config: ConfigArg = None,
    address: Annotated[str, typer.Option(help="Ray dashboard, http://HEAD:8265")] = "",
    input_uri: InputOpt = None,
    output_uri: OutputOpt = None,
    model_uri: ModelOpt = None,
    sets: SetOpt = None,
    follow: Annotated[bool, typer.Option(help="stream the job's log until it ends")] = False,
    nightly: Annotated[
        bool, typer.Option(help="run it as a night (python -m jobs.nightly)")
    ] = False,
    day: DateOpt = None,
) -> None:
    """Submit the run as a Ray Job (only the project's code is uploaded); prints the job id."""
    from jobs.options import config_from_cli
    from jobs.submit import entrypoint, follow_job, submit_run

    with user_errors():
        # Validated here; model/input/output are checked in the job, with the cluster's access.
        run_config = config_from_cli(config, input_uri, output_uri, model_uri, sets)
        if day is not None and not nightly:
            raise ConfigError("--date: only with --nightly")
        job_id = submit_run(
            address, run_config, entrypoint(nightly, _night(day)), verbose=STATE.verbose
        )
        console.print(f"submitted job [bold]{job_id}[/bold]", soft_wrap=True)
        if not follow:
            console.print(
                f"follow its logs: ray job logs --address {address} --follow {job_id}",
                soft_wrap=True,
            )
            return
        status = follow_job(address, job_id, sys.stdout)
        console.print(f"job {job_id}: {status}", soft_wrap=True)
        if status != "SUCCEEDED":
            raise typer.Exit(1)


@app.command()
def nightly(
    config: ConfigArg = None,
    day: DateOpt = None,
    input_uri: InputOpt = None,
    output_uri: OutputOpt = None,
    model_uri: ModelOpt = None,
    sets: SetOpt = None,
) -> None:
    """Caption what is not done yet (run id nightly-DATE; a re-run resumes it)."""
    from jobs.nightly import describe, night_with_display

    with user_errors():
        night = _night(day)
        run_config = prepared_config(config, input_uri, output_uri, model_uri, sets)
        summary = night_with_display(run_config, night, console, STATE.verbose)
        console.print("\n".join(describe(summary)), soft_wrap=True, markup=False)


@app.command()
def retry(
    config: ConfigArg = None,
    input_uri: InputOpt = None,
    output_uri: OutputOpt = None,
    model_uri: ModelOpt = None,
    sets: SetOpt = None,
) -> None:
    """Redo only the clips whose latest committed row is an error (history is kept)."""
    from jobs.nightly import describe, retry_with_display

    with user_errors():
        run_config = prepared_config(config, input_uri, output_uri, model_uri, sets)
        summary = retry_with_display(run_config, console, STATE.verbose)
        console.print("\n".join(describe(summary)), soft_wrap=True, markup=False)


# -- reading results: query, stats, report (jobs/query.py, jobs/stats.py, jobs/report_html.py) --

OutputArg = Annotated[str, typer.Argument(help="output root of runs (s3:// or dir)")]
EndpointOpt = Annotated[
    str | None, typer.Option("--endpoint-url", help="S3-compatible endpoint (MinIO, Ceph, R2)")
]
RegionOpt = Annotated[str | None, typer.Option("--region", help="S3 region")]
AllowFilesOpt = Annotated[
    bool, typer.Option("--allow-files", help="let the SQL read files outside OUTPUT")
]


def _storage(endpoint_url: str | None, region: str | None):
    from pipeline.core.storage import StorageOptions

    return StorageOptions(endpoint_url=endpoint_url, region=region)


@app.command()
def query(
    output: OutputArg,
    sql: Annotated[str, typer.Argument(help="SQL over the views clips, clips_all, runs")],
    fmt: Annotated[
        str, typer.Option("--format", help="table | json (one object per line) | csv | parquet")
    ] = "table",
    out: Annotated[str | None, typer.Option("--out", help="write here (path or s3://)")] = None,
    allow_files: AllowFilesOpt = False,
    endpoint_url: EndpointOpt = None,
    region: RegionOpt = None,
) -> None:
    """DuckDB SQL over the committed output, streamed (clips = latest annotation per clip).
    Read-only: one query, and no file outside OUTPUT unless --allow-files."""
    from jobs.query import run_query

    with user_errors():
        storage = _storage(endpoint_url, region)
        rows = run_query(output, sql, fmt, out, storage, console, allow_files=allow_files)  # type: ignore[arg-type]
    if out is not None:
        _wrote(f"wrote {rows} row{'s' if rows != 1 else ''} ({fmt}) to", out)


def _wrote(what: str, out: str) -> None:
    """What a command wrote, then where, whole on a line of its own (absolute if local)."""
    from pipeline.core.storage import is_remote

    where = out if is_remote(out) else str(Path(out).expanduser().resolve())
    console.print(what, soft_wrap=True, markup=False, highlight=False)
    console.print(where, soft_wrap=True, markup=False, highlight=False)


@app.command()
def stats(
    output: OutputArg,
    run_id: Annotated[str | None, typer.Option("--run", help="only this run id")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of tables")] = False,
    endpoint_url: EndpointOpt = None,
    region: RegionOpt = None,
) -> None:
    """Per run: videos, clips, errors by kind and reason, top tags, speed, stage seconds."""
    from jobs.query import QueryError
    from jobs.stats import collect_stats, print_stats, stats_json

    with user_errors():
        found = collect_stats(output, _storage(endpoint_url, region), run_id)
        if run_id is not None and not found:
            raise QueryError(f"--run: no committed rows for run {run_id!r}")
        if as_json:
            print(stats_json(found))
        else:
            print_stats(found, console)


@app.command()
def report(
    output: OutputArg,
    out: Annotated[str, typer.Option("--out", help="the HTML file to write (path or s3://)")],
    where: Annotated[
        str | None, typer.Option("--where", help="SQL condition on the clips view")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="at most this many cards")] = 2000,
    allow_files: AllowFilesOpt = False,
    endpoint_url: EndpointOpt = None,
    region: RegionOpt = None,
) -> None:
    """One self-contained HTML contact sheet: cards, tag filter, search, run summary."""
    from jobs.report_html import write_report

    with user_errors():
        storage = _storage(endpoint_url, region)
        data = write_report(output, out, storage, where, limit, allow_files)
    runs = f"{len(data.runs)} run{'s' if len(data.runs) != 1 else ''}"
    _wrote(f"wrote a report of {len(data.clips)} of {data.matched} clips and {runs} to", out)


@app.command()
def plan(
    config: ConfigArg = None,
    sample: Annotated[int, typer.Option("--sample", min=1, help="videos to measure")] = 8,
    gpus: Annotated[
        int | None, typer.Option("--gpus", min=1, help="GPUs (annotate actors) to size for")
    ] = None,
    gpu_memory_gb: Annotated[
        float | None, typer.Option("--gpu-memory-gb", help="GPU memory to size batches for")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of text")] = False,
    input_uri: InputOpt = None,
    output_uri: OutputOpt = None,
    model_uri: ModelOpt = None,
    sets: SetOpt = None,
) -> None:
    """Run the pipeline on a sample, then size the run: batch, CPUs per GPU, wall, GPU-hours."""
    import json
    from dataclasses import asdict

    from jobs.plan import format_plan, make_plan, plan_config
    from jobs.ray_session import connect

    with user_errors():
        run_config = plan_config(config, input_uri, output_uri, model_uri, sets)
        measure, sized, extra = make_plan(
            run_config, sample, gpus, gpu_memory_gb,
            connect=lambda: connect(verbose=STATE.verbose),
        )  # fmt: skip
        if as_json:
            print(json.dumps({"sample": asdict(measure), "plan": asdict(sized), **extra}))
        else:
            console.print(format_plan(measure, sized, extra["this_machine"]), soft_wrap=True,
                          markup=False, highlight=False)  # fmt: skip


@app.command()
def similar(
    output: OutputArg,
    clip_id: Annotated[str, typer.Argument(help="the clip_id to find neighbours of")],
    k: Annotated[int, typer.Option("--k", help="how many neighbours")] = 10,
    fmt: Annotated[str, typer.Option("--format", help="table | json | csv")] = "table",
    endpoint_url: EndpointOpt = None,
    region: RegionOpt = None,
) -> None:
    """The clips nearest to CLIP_ID by embedding, with their cosine similarity."""
    from jobs.similar import run_similar

    def warn(line: str) -> None:  # one line on stderr, however narrow the terminal
        err_console.print(
            f"clipnote: warning: {line}", style="yellow", soft_wrap=True, markup=False,
            highlight=False,
        )  # fmt: skip

    with user_errors():
        run_similar(output, clip_id, k, fmt, _storage(endpoint_url, region), console, warn)


@app.command()
def dedup(
    output: OutputArg,
    mode: Annotated[str, typer.Option("--mode", help="footage | semantic")] = "footage",
    threshold: Annotated[
        float | None, typer.Option("--threshold", help="cosine distance (default per mode)")
    ] = None,
    endpoint_url: EndpointOpt = None,
    region: RegionOpt = None,
) -> None:
    """Group duplicate clips (committed like a run; clips.duplicate_of names the kept clip)."""
    from jobs.dedup import run_dedup

    with user_errors():
        run_dedup(output, mode, threshold, _storage(endpoint_url, region), console)


def main() -> None:
    try:
        app()
    finally:
        if "ray" in sys.modules:  # a command that joined or started Ray: leave it now
            _leave_ray()


def _leave_ray() -> None:
    """Leave Ray on the way out; a failure to do so is one warning line, never a changed exit
    status or a traceback over the command's own output (Ray's exit hook tries again)."""
    from jobs.ray_session import leave

    try:
        leave()
    except Exception as err:  # whatever it was, the command itself is done
        print(f"clipnote: warning: leaving Ray: {err}", file=sys.stderr)


if __name__ == "__main__":
    main()
