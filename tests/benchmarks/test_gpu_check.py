"""`benchmarks.gpu_check`: its CPU path at tiny shapes, as CI runs it, and its verdicts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.gpu_check import judge, meets_goal, shapes_for

ROOT = Path(__file__).resolve().parents[2]
TINY = shapes_for(tiny=True)


def _gpu_check(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "benchmarks.gpu_check", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip


@pytest.mark.slow
def test_the_cpu_path_at_tiny_shapes_writes_loads_and_times_fixed_length_answers(tmp_path):
    done = _gpu_check("--tiny", "--device", "cpu", "--skip-demo", "--batches", "2",
                      "--workdir", str(tmp_path))  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["failed"] == []
    assert report["load"]["rotary_inv_freq_dtypes"] == {"float32": 2}  # LLM and its copy
    assert report["load"]["model_dtype"] == "float32"
    assert report["write"]["weights_bytes"] > 0
    (timing,) = report["generate"].values()
    assert timing["answer_tokens"] == [[64, 32]]  # every clip: 64 caption, 32 tag tokens
    assert timing["clips_per_s"] > 0
    assert list(tmp_path.iterdir()) == []  # the checkpoint went with its temp dir


def test_without_cuda_it_says_so_in_one_line():
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    done = _gpu_check()
    assert done.returncode == 2
    assert done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert line.startswith("gpu_check: no usable CUDA GPU") and "--tiny --device cpu" in line


def _report(rotary, model_dtype="bfloat16", answers=((64, 32),), demo=None) -> dict:
    timing = {"clips_per_s": 31.0, "answer_tokens": [list(a) for a in answers]}
    report = {
        "load": {"rotary_inv_freq_dtypes": rotary, "model_dtype": model_dtype},
        "generate": {"batch_32": timing},
    }
    if demo is not None:
        report["demo"] = demo
    return report


def test_a_bf16_rotary_a_short_answer_or_a_demo_off_the_gpu_each_fail_the_check():
    ok = _report({"float32": 2}, demo={"ran": True, "device": "cuda", "dtype": "bfloat16"})
    assert judge(ok, "cuda", "bfloat16", TINY).failed == []
    assert judge(_report({"bfloat16": 2}), "cuda", "bfloat16", TINY).failed == [
        "rotary inv_freq in {'bfloat16': 2}"
    ]
    short = judge(_report({"float32": 2}, answers=((64, 32), (12, 32))), "cuda", "bfloat16", TINY)
    assert short.failed == ["batch_32: answers of [(64, 32), (12, 32)] tokens, not (64, 32)"]
    on_cpu = {"ran": True, "device": "cpu", "dtype": "float32"}
    assert judge(_report({"float32": 2}, demo=on_cpu), "cuda:0", "bfloat16", TINY).failed == [
        "demo's run record says ('cpu', 'float32'), expected ('cuda', 'bfloat16')"
    ]
    broken = {"ran": False, "reason": "exit 1: boom"}
    assert judge(_report({"float32": 2}, demo=broken), "cuda", "bfloat16", TINY).failed == [
        "demo did not run: exit 1: boom"
    ]
    no_ray = {"ran": False, "reason": "ray is not installed here"}
    assert judge(_report({"float32": 2}, demo=no_ray), "cuda", "bfloat16", TINY).failed == []


def test_the_goal_counts_only_full_size_at_batch_32_or_more():
    full = shapes_for(tiny=False)
    report = {"generate": {"batch_16": {"clips_per_s": 40.0}, "batch_32": {"clips_per_s": 29.0}}}
    assert meets_goal(report, full) is False  # 40 clips/s at batch 16 does not count
    report["generate"]["batch_64"] = {"clips_per_s": 30.0}
    assert meets_goal(report, full) is True
    assert meets_goal(report, TINY) is None
