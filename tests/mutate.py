"""`make mutate`: mutation testing (mutmut) of the pure-logic modules, one module at a time.

Each module runs in a scratch copy of the project (model/, pipeline/, jobs/, tests/,
pyproject.toml plus a `[tool.mutmut]` section for that module alone), so the working tree gets
no `mutants/` folder and one module's run cannot disturb another's. Only that module's test
files run against its mutants. Where a module mixes pure logic with I/O or the model, only the
listed functions are mutated (see TARGETS).

    python tests/mutate.py                  # every target, in order
    python tests/mutate.py schema tags      # some of them
    python tests/mutate.py --list           # targets and their test files

Exit status 1 when a target kills fewer than `--min` percent (default 90) of its mutants.
Survivors are printed; TESTING.md lists the accepted ones and why each is harmless.
Not run in CI: each target takes minutes of CPU.
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
COPIED = ("model", "pipeline", "jobs", "tests")


@dataclass(frozen=True)
class Target:
    module: str  # file path, e.g. "pipeline/planning.py"
    tests: tuple[str, ...]
    functions: tuple[str, ...] = ()  # name globs of mutated functions; empty: the whole module

    @property
    def dotted(self) -> str:
        return self.module.removesuffix(".py").replace("/", ".")

    def patterns(self) -> list[str]:
        """mutmut mutant-name globs for `mutmut run` (functions are `x_<name>`, methods
        `xǁ<Class>ǁ<name>`)."""
        if not self.functions:
            return [f"{self.dotted}.*"]
        out = []
        for name in self.functions:
            if "." in name:
                cls, meth = name.split(".", 1)
                out.append(f"{self.dotted}.xǁ{cls}ǁ{meth}__mutmut_*")
            else:
                out.append(f"{self.dotted}.x_{name}__mutmut_*")
        return out


TARGETS: dict[str, Target] = {
    "schema": Target("pipeline/output/schema.py", ("tests/pipeline/output/test_schema.py",)),
    "checkpoint": Target(
        "model/checkpoint.py",
        ("tests/model/test_checkpoint_units.py", "tests/model/test_checkpoint.py"),
        # reading and validating checkpoints; `save_checkpoint` is checked by the round trip
        functions=(
            "canonical_name",
            "published_name",
            "read_config",
            "weight_files",
            "_shard_names",
            "_inside",
            "read_weights",
            "match_weights",
            "load_weights_into",
            "_short",
        ),
    ),
    "weights": Target(
        "model/weights.py",
        ("tests/model/test_weights.py",),
        functions=("read_header", "_entry", "tensor_shapes", "iter_tensors", "_read", "_placed"),
    ),
    "digest": Target(
        "model/digest.py",
        ("tests/model/test_digest.py",),
        functions=("file_versions_key", "hash_files", "weights_digest"),
    ),
    "tags": Target(
        "model/tags.py",
        # the parsing tests only: the model-based ones run the same parsing much slower
        (
            "tests/model/test_tags_parsing.py",
            "tests/model/test_tags.py::test_parse_tags",
            "tests/model/test_tags.py::test_split_listing_keeps_items_and_separators_as_written",
            "tests/model/test_tags.py::test_listing_contexts_are_every_place_with_the_tag_taken_out",
            "tests/model/test_tags.py::test_tag_spellings",
        ),
        functions=(
            "parse_tags",
            "_normalise",
            "split_listing",
            "listing_contexts",
            "tag_spellings",
        ),
    ),
    "sampling": Target(
        "pipeline/clips/sampling.py",
        ("tests/pipeline/clips/test_sampling.py", "tests/pipeline/clips/test_windows_literal.py"),
    ),
    "windows": Target(
        "pipeline/clips/windows.py",
        ("tests/pipeline/clips/test_windows.py", "tests/pipeline/clips/test_windows_literal.py"),
    ),
    "manifest": Target(
        "pipeline/input/manifests.py",
        ("tests/pipeline/input/test_listing.py", "tests/pipeline/input/test_manifest_literal.py"),
        functions=(
            "_first_value",
            "_no_uri",
            "_parquet_entries",
            "_jsonl_entries",
            "_text_entries",
            "_resolve_entry",
            "_resolve_remote_entry",
            "Refused.ref",
        ),
    ),
    "commit": Target(
        "pipeline/output/chunks.py",
        # the pure part of committing: which written files may be committed, and when
        ("tests/pipeline/output/test_chunks.py",),
        functions=("ChunkTracker.*", "_OpenVideo.*"),
    ),
}


def _scratch(target: Target) -> Path:
    work = Path(tempfile.mkdtemp(prefix=f"clipnote-mutate-{Path(target.module).stem}-"))
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "mutants")
    for name in COPIED:
        shutil.copytree(ROOT / name, work / name, ignore=ignore)
    tests = [t for t in target.tests if (ROOT / t.split("::")[0]).is_file()]
    section = "\n".join(
        [
            "",
            "[tool.mutmut]",
            'source_paths = ["pipeline", "model", "jobs"]',
            f'only_mutate = ["{target.module}"]',
            f"pytest_add_cli_args_test_selection = {tests!r}".replace("'", '"'),
            'pytest_add_cli_args = ["-p", "no:cacheprovider", "-x", "-q"]',
            "use_git_change_detection = false",
            "",
        ]
    )
    text = (ROOT / "pyproject.toml").read_text() + section
    (work / "pyproject.toml").write_text(text)
    return work


def _results(work: Path, target: Target) -> dict[str, str]:
    out = subprocess.run(
        [sys.executable, "-m", "mutmut", "results", "--all", "true"],
        cwd=work, capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    statuses = dict(re.findall(r"^\s*(\S+__mutmut_\d+): (.+?)\s*$", out, flags=re.M))
    wanted = target.patterns()
    return {k: v for k, v in statuses.items() if any(fnmatch.fnmatch(k, p) for p in wanted)}


def _diff(work: Path, name: str) -> str:
    shown = subprocess.run(
        [sys.executable, "-m", "mutmut", "show", name], cwd=work, capture_output=True, text=True
    ).stdout
    return "\n".join(
        line for line in shown.splitlines() if line[:1] in "+-" and line[:3] not in ("---", "+++")
    )


def run_target(name: str, target: Target, minimum: float, timeout_s: int) -> bool:
    work = _scratch(target)
    env = {**os.environ, "PYTHONPATH": str(work), "CLIPNOTE_MUTATING": "1"}
    try:
        print(f"== {name}: {target.module} ({', '.join(target.tests)})", flush=True)
        proc = subprocess.Popen(
            [sys.executable, "-m", "mutmut", "run", "--max-children", "2", *target.patterns()],
            cwd=work, env=env, stdout=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # mutmut and the workers it forked
            proc.wait()
            print(f"   timed out after {timeout_s} s: mutants not reached count as not checked")
        statuses = _results(work, target)
        killed = sum(s in ("killed", "timeout") for s in statuses.values())
        tested = sum(s not in ("skipped", "not checked") for s in statuses.values())
        unchecked = sum(s == "not checked" for s in statuses.values())
        score = 100.0 * killed / tested if tested else 0.0
        print(f"   {killed}/{tested} killed ({score:.1f}%), {unchecked} not checked")
        for mutant, status in sorted(statuses.items()):
            if status not in ("killed", "timeout", "not checked"):
                print(f"   {status}: {mutant}")
                print("      " + _diff(work, mutant).replace("\n", "\n      "))
        return tested > 0 and score >= minimum
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("targets", nargs="*", help=f"some of: {', '.join(TARGETS)} (default: all)")
    parser.add_argument("--min", type=float, default=90.0, help="percent killed per target")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per target")
    parser.add_argument("--list", action="store_true")
    args = parser.parse_args(argv)
    if args.list:
        for name, target in TARGETS.items():
            print(f"{name}: {target.module} <- {', '.join(target.tests)}")
        return 0
    unknown = [n for n in args.targets if n not in TARGETS]
    if unknown:
        parser.error(f"unknown target(s) {unknown}; choose from {list(TARGETS)}")
    names = args.targets or list(TARGETS)
    failed = [n for n in names if not run_target(n, TARGETS[n], args.min, args.timeout)]
    if failed:
        print(f"below {args.min:g}% killed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
