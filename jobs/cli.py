"""The `clipnote` command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from pipeline.config import ConfigError

from .options import config_from_cli

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
console = Console()

ConfigArg = Annotated[Path | None, typer.Argument(help="run config (YAML)", exists=True)]
InputOpt = Annotated[
    str | None, typer.Option("--input", help="videos: s3:// prefix, dir, manifest")
]
OutputOpt = Annotated[str | None, typer.Option("--output", help="output root (s3:// or dir)")]
ModelOpt = Annotated[str | None, typer.Option("--model", help="checkpoint dir or s3:// prefix")]
SetOpt = Annotated[list[str] | None, typer.Option("--set", help="override: key=value")]


def _config(config, input_uri, output_uri, model_uri, sets):
    try:
        return config_from_cli(config, input_uri, output_uri, model_uri, sets)
    except ConfigError as err:
        console.print(f"[red]{err}[/red]")
        raise typer.Exit(2) from None


@app.command()
def run(
    config: ConfigArg = None,
    input_uri: InputOpt = None,
    output_uri: OutputOpt = None,
    model_uri: ModelOpt = None,
    sets: SetOpt = None,
) -> None:
    """Caption and tag every video of the input; Parquet + commit record in the output."""
    run_config = _config(config, input_uri, output_uri, model_uri, sets)
    from pipeline.run import run_pipeline

    from .ray_session import connect
    from .report import print_summary

    connect()
    print_summary(run_pipeline(run_config), console)


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="where videos and output go")] = Path("clipnote-demo"),
    videos: Annotated[int, typer.Option(min=1, max=64, help="how many toy videos")] = 6,
) -> None:
    """Toy videos -> full pipeline on a local Ray with the shipped toy model -> captions."""
    from .demo import run_demo

    run_demo(out.resolve(), videos, console)


@app.command()
def submit(
    config: ConfigArg = None,
    address: Annotated[str, typer.Option(help="Ray dashboard, http://HEAD:8265")] = "",
    input_uri: InputOpt = None,
    output_uri: OutputOpt = None,
    model_uri: ModelOpt = None,
    sets: SetOpt = None,
) -> None:
    """Submit the run as a Ray Job (working_dir upload); prints the job id."""
    run_config = _config(config, input_uri, output_uri, model_uri, sets)  # fail here, not there
    from ray.exceptions import AuthenticationError

    from .submit import submit_run

    try:
        job_id = submit_run(address, run_config)
    except AuthenticationError as err:
        console.print(
            f"[red]the cluster refused the request: {err}[/red]\n"
            "Clusters run with token authentication: set RAY_AUTH_MODE=token and the cluster's "
            "token (RAY_AUTH_TOKEN or ~/.ray/auth_token)."
        )
        raise typer.Exit(1) from None
    console.print(f"submitted job [bold]{job_id}[/bold]", soft_wrap=True)
    console.print(
        f"follow its logs: ray job logs --address {address} --follow {job_id}", soft_wrap=True
    )


def main() -> None:
    app()


if __name__ == "__main__":
    main()
