"""`clipnote similar` with read-only credentials, through the real CLI process, against a real
SeaweedFS S3 server that enforces them (moto accepts any key).

A stale saved index (a run committed since it was saved) is refreshed in memory by the
lookup, which then tries to save it: a reader may not. The lookup still answers from memory,
says in one warning line that the index could not be saved, and exits 0; it once failed with
"access denied" although it held the right answer. It keeps a copy in the reader's own cache,
and the reader's next lookup answers from it with no warning (it used to refresh and warn
again on every lookup). `similar_clips(...)` in `clipnote query`
scans `clips` and never touches the index: it answers the same for the reader."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from pipeline.core.storage import StorageOptions, filesystem, join, strip_scheme
from pipeline.output.index_store import INDEX_DIR, MANIFEST, saved_names, snapshot_digest
from pipeline.output.similar import similar
from tests.jobs.cli_process import run_clipnote
from tests.pipeline.output.test_similar import _commit_run
from tests.seaweedfs import ADMIN, SeaweedServer, seaweedfs

pytestmark = pytest.mark.slow  # a SeaweedFS server and two fresh interpreters

READER = ("clipnote-reader", "clipnote-reader-secret")
BUCKET = "results"


@pytest.fixture(scope="module")
def s3_read_only(tmp_path_factory) -> Iterator[SeaweedServer]:
    """`results` readable and listable by READER, written by the admin only."""
    reader = {
        "name": "reader",
        "credentials": [{"accessKey": READER[0], "secretKey": READER[1]}],
        "actions": [f"Read:{BUCKET}", f"List:{BUCKET}"],
    }
    with seaweedfs(tmp_path_factory.mktemp("weed"), [reader]) as server:
        server.client().create_bucket(Bucket=BUCKET)
        yield server


def _manifest(root: str, options: StorageOptions) -> tuple[str, dict]:
    (name,) = saved_names(root, "similar-", options)
    path = strip_scheme(join(root, INDEX_DIR, name, MANIFEST))
    return name, json.loads(filesystem(root, options).cat_file(path))


def test_a_reader_s_lookup_of_a_stale_index_answers_and_warns_once(
    s3_read_only, tmp_path, monkeypatch
):
    """a, b, c at 0, 30 and 45 degrees, the index saved; then b is annotated again at 90
    degrees (the saved index is stale, and says b is nearest to a). The reader's `similar`
    answers c then b, exit 0, one warning line naming the index folder and access denied;
    the saved index is as it was (the reader wrote nothing)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ADMIN[0])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", ADMIN[1])
    root, options = f"s3://{BUCKET}/out", StorageOptions(endpoint_url=s3_read_only.endpoint)
    _commit_run(root, options, "r1", ["a", "b", "c"], [0, 30, 45], 0)
    assert similar(root, "id-a:0", 1, options)["clip_id"].to_pylist() == ["id-b:0"]  # saved
    _commit_run(root, options, "r2", ["b"], [90], 5)
    name, before = _manifest(root, options)
    assert before["snapshot"] != snapshot_digest(root, options)  # stale
    reader = {"AWS_ACCESS_KEY_ID": READER[0], "AWS_SECRET_ACCESS_KEY": READER[1]}
    reader["CLIPNOTE_CACHE"] = str(tmp_path / "reader-cache")
    endpoint = ["--endpoint-url", s3_read_only.endpoint]

    found = run_clipnote(
        "similar", root, "id-a:0", "--k", "2", "--format", "json", *endpoint,
        cwd=tmp_path, timeout=180, **reader,
    )  # fmt: skip
    assert found.returncode == 0, found.stderr[-3000:]
    rows = [json.loads(line) for line in found.stdout.splitlines() if line.strip()]
    assert [r["clip_id"] for r in rows] == ["id-c:0", "id-b:0"]
    assert [r["similarity"] for r in rows] == pytest.approx([0.7071, 0.0], abs=1e-3)
    lines = [line for line in found.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, found.stderr
    (warning,) = lines
    assert warning.startswith("clipnote: warning: ") and "Traceback" not in found.stderr
    assert f"{root}/{INDEX_DIR}/{name}" in warning and "access denied" in warning
    assert "write access" in warning and f"a copy is kept in {tmp_path / 'reader-cache'}" in warning
    assert _manifest(root, options)[1] == before

    again = run_clipnote(
        "similar", root, "id-b:0", "--k", "2", "--format", "json", *endpoint,
        cwd=tmp_path, timeout=180, **reader,
    )  # fmt: skip
    assert again.returncode == 0 and again.stderr.strip() == "", again.stderr[-3000:]
    rows = [json.loads(line) for line in again.stdout.splitlines() if line.strip()]
    assert [r["clip_id"] for r in rows] == ["id-c:0", "id-a:0"]  # from the reader's own copy
    assert [r["similarity"] for r in rows] == pytest.approx([0.7071, 0.0], abs=1e-3)

    sql = "SELECT clip_id FROM similar_clips('id-a:0', k := 2)"
    queried = run_clipnote(
        "query", root, sql, "--format", "json", *endpoint, cwd=tmp_path, timeout=180, **reader
    )
    assert queried.returncode == 0 and queried.stderr.strip() == "", queried.stderr[-3000:]
    rows = [json.loads(line) for line in queried.stdout.splitlines() if line.strip()]
    assert [r["clip_id"] for r in rows] == ["id-c:0", "id-b:0"]
