"""Ray's native log lines stay off the terminal; everything else reaches it, at once
(`jobs.native_stderr`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from jobs.native_stderr import copy_filtered, is_ray_native_log

ROOT = Path(__file__).resolve().parents[2]
# what a pipeline run printed before (issue 19, case 5): the driver's core worker, verbatim
CORE_WORKER_ERROR = (
    b"[2026-12-04 11:41:57,289 E 5199 5199] core_worker.cc:2465: Actor with class name: "
    b"'MapWorker(MapBatches(BatchActor))' and ID: 'caa58bd98090bb098cdb1ee501000000' has "
    b"constructor arguments in the object store and max_restarts > 0."
)
GCS_WARNING = b"[2026-12-04 11:44:29,913 W 15088 15088] gcs_client.cc:210: Failed to get cluster ID"
FATAL = b"[2026-12-04 11:44:29,913 F 15088 15090] raylet.cc:1: Check failed: x"


def test_native_lines_below_fatal_are_recognised_and_nothing_else():
    assert is_ray_native_log(CORE_WORKER_ERROR) and is_ray_native_log(GCS_WARNING)
    assert not is_ray_native_log(FATAL)  # just before a process dies: the user must see it
    assert not is_ray_native_log(b"[1/3] videos done")
    assert not is_ray_native_log(b"clipnote: input: no such file: [2026-12-04 11:41:57,289 E")


def _through(*writes: bytes) -> bytes:
    read_fd, write_fd = os.pipe()
    out_r, out_w = os.pipe()
    for data in writes:
        os.write(write_fd, data)
    os.close(write_fd)
    copy_filtered(read_fd, out_w)
    os.close(out_w)
    got = os.read(out_r, 1 << 20)
    os.close(read_fd)
    os.close(out_r)
    return got


def test_copy_leaves_out_native_lines_and_keeps_the_rest_in_order():
    got = _through(
        b"first\n", CORE_WORKER_ERROR + b"\n", b"\r\x1b[2Kvideos 1/2", GCS_WARNING + b"\n",
        FATAL + b"\n", b"[not a log] last",
    )  # fmt: skip
    assert got == b"first\n\r\x1b[2Kvideos 1/2" + FATAL + b"\n[not a log] last"


def test_a_native_line_written_in_pieces_is_still_left_out():
    half = len(CORE_WORKER_ERROR) // 2
    got = _through(b"a\n", CORE_WORKER_ERROR[:10], CORE_WORKER_ERROR[10:half],
                   CORE_WORKER_ERROR[half:] + b"\nb\n")  # fmt: skip
    assert got == b"a\nb\n"


_CHILD = """
import os, sys
from jobs.native_stderr import filter_native_stderr
filter_native_stderr()
os.write(2, NATIVE + b"\\n")        # what Ray's C++ writes, straight to descriptor 2
os.write(2, b"from C, not Ray\\n")
print("from Python", file=sys.stderr)
"""


def test_in_a_process_only_ray_lines_are_left_out_and_the_rest_arrives_before_exit():
    code = _CHILD.replace("NATIVE", repr(CORE_WORKER_ERROR))
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, timeout=120, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert sorted(done.stderr.decode().splitlines()) == ["from C, not Ray", "from Python"]
