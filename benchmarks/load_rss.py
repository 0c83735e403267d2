"""Peak host memory of loading a checkpoint: a fresh process imports `model` and calls
`load_model`; its peak RSS less its peak after the imports, against the checkpoint's bytes.

    git worktree add --detach /tmp/before <commit>
    python -m benchmarks.load_rss --before /tmp/before --repeats 3

The checkpoint is random weights in the published format (`save_checkpoint`), written once to
`benchmarks/.cache/load_rss/` (2.1 GB at the default `mid` size: Qwen2.5-0.5B's language
model, a small SigLIP). Each measurement is a new `python -c` child run with `PYTHONPATH` set
to a checkout (this one, or `--before`'s), which reports from its own `/proc/self/status`:
`VmHWM` right after importing torch, transformers' Qwen2 and `model` (the import baseline),
then `VmHWM` after `load_model(..., device="cpu", dtype=...)`, and the module file it loaded
(checked to lie in that checkout). Both checkouts run interleaved, run by run, each child with
an empty clipnote cache (the weights are hashed, as at a node's first actor start).

    ratio = (peak - baseline) / checkpoint bytes      # target: <= 1.2

On the host the model itself takes the checkpoint's bytes when loaded in the stored dtype
(fp32 here), so 1.0 is the floor for `--dtype float32`, 0.5 for `--dtype bfloat16`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "benchmarks" / ".cache" / "load_rss"

MID_TEXT = {
    "model_type": "qwen2", "vocab_size": 151936, "hidden_size": 896, "intermediate_size": 4864,
    "num_hidden_layers": 24, "num_attention_heads": 14, "num_key_value_heads": 2,
    "max_position_embeddings": 32768, "rope_theta": 1000000.0, "tie_word_embeddings": True,
    "rms_norm_eps": 1e-6,
}  # fmt: skip
"""Qwen2.5-0.5B's shapes: 494M parameters, 1.98 GB in fp32."""
MID_VISION = {
    "model_type": "siglip_vision_model", "hidden_size": 384, "intermediate_size": 1536,
    "num_hidden_layers": 6, "num_attention_heads": 6, "image_size": 224, "patch_size": 14,
}  # fmt: skip
SIZES = {"mid": (MID_TEXT, MID_VISION)}

CHILD = """
import json, sys
def hwm():
    fields = dict(line.split(":", 1) for line in open("/proc/self/status"))
    return int(fields["VmHWM"].split()[0]) * 1024
import torch, transformers.models.qwen2.modeling_qwen2, model
from model import load_model
baseline = hwm()
m = load_model(sys.argv[1], device="cpu", dtype=getattr(torch, sys.argv[2]))
dtypes = sorted({str(p.dtype) for p in m.parameters()})
print(json.dumps({"baseline": baseline, "peak": hwm(), "model_file": model.__file__,
                  "model_id": m.model_id, "dtypes": dtypes}))
"""


@dataclass(frozen=True)
class LoadRss:
    """One child's measurement, in bytes."""

    baseline: int
    peak: int
    checkpoint_bytes: int
    seconds: float
    model_id: str
    dtypes: list[str]

    @property
    def ratio(self) -> float:
        return (self.peak - self.baseline) / self.checkpoint_bytes


def weight_bytes(checkpoint: Path) -> int:
    from model.checkpoint import weight_files

    return sum(path.stat().st_size for path in weight_files(checkpoint))


def measure(checkpoint: Path, tree: Path = ROOT, dtype: str = "float32") -> LoadRss:
    """A fresh process loads `checkpoint` with the `model` package of checkout `tree`."""
    with tempfile.TemporaryDirectory(prefix="load-rss-cache-") as cache:
        env = {**os.environ, "PYTHONPATH": str(tree), "CLIPNOTE_CACHE": cache,
               "PYTHONDONTWRITEBYTECODE": "1"}  # fmt: skip
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", CHILD, str(checkpoint), dtype],
            cwd=tree, env=env, capture_output=True, text=True,
        )  # fmt: skip
        seconds = time.perf_counter() - started
    if done.returncode:
        raise RuntimeError(f"load in {tree} failed:\n{done.stderr[-3000:]}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    if not Path(report["model_file"]).resolve().is_relative_to(tree.resolve()):
        raise RuntimeError(f"model came from {report['model_file']}, not from {tree}")
    return LoadRss(
        baseline=report["baseline"], peak=report["peak"],
        checkpoint_bytes=weight_bytes(checkpoint), seconds=seconds,
        model_id=report["model_id"], dtypes=report["dtypes"],
    )  # fmt: skip


def write_checkpoint(out: Path, size: str = "mid", seed: int = 0) -> Path:
    """A random checkpoint of `size` in the published format (kept once written)."""
    if (out / "config.json").is_file():
        return out
    import torch

    from benchmarks.model import build_model

    torch.manual_seed(seed)
    text, vision = SIZES[size]
    model = build_model(text, vision, group=8, queries=512, device="cpu", dtype=torch.float32)
    from model import save_checkpoint

    partial = out.with_name(out.name + ".partial")
    save_checkpoint(model, partial)
    partial.rename(out)
    return out


def median_of(runs: list[LoadRss]) -> dict[str, float]:
    return {
        "baseline_mb": statistics.median(r.baseline for r in runs) / 2**20,
        "peak_mb": statistics.median(r.peak for r in runs) / 2**20,
        "ratio": statistics.median(r.ratio for r in runs),
        "seconds": statistics.median(r.seconds for r in runs),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", choices=sorted(SIZES), default="mid")
    parser.add_argument("--checkpoint", type=Path, help="measure this checkpoint instead")
    parser.add_argument("--before", type=Path, help="another checkout to measure beside this")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    checkpoint = args.checkpoint or write_checkpoint(CACHE / args.size, args.size)
    trees = {"after": ROOT} | ({"before": args.before} if args.before else {})
    runs: dict[str, list[LoadRss]] = {name: [] for name in trees}
    for _ in range(args.repeats):
        for name, tree in trees.items():
            runs[name].append(measure(checkpoint, tree, args.dtype))
            print(name, json.dumps(asdict(runs[name][-1])), flush=True)
    load = os.getloadavg()
    summary = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, load {load[0]:.2f}/{load[1]:.2f}/{load[2]:.2f}",
        "checkpoint_gb": weight_bytes(checkpoint) / 1e9,
        "dtype": args.dtype,
        **{name: median_of(r) for name, r in runs.items()},
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
