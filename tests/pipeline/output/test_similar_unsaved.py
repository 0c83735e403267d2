"""A `similar` index whose save fails: a lookup refused for want of write access answers from
the index it refreshed in memory and says so in one line; a writer (dedup, and so the
nightly) raises; any other failure raises for a lookup too. Local outputs, the failure made
by hand (we run as root: chmod cannot make a folder unwritable). The S3 reader's case, with a
real server enforcing read-only credentials, is tests/jobs/test_similar_read_only.py."""

from __future__ import annotations

import errno

import pytest

from pipeline.output import index_store, similar_index
from pipeline.output.index_store import INDEX_DIR, saved_names
from pipeline.output.similar import dedup, similar
from pipeline.output.similar_index import IndexNotSaved, refresh
from tests.pipeline.output.parts import new_output
from tests.pipeline.output.test_similar import _commit_run


@pytest.fixture()
def stale(tmp_path):
    """a, b, c at 0, 30, 45 degrees, the index saved; then b annotated again at 90 degrees."""
    root, options = new_output("local", tmp_path, None, None)
    _commit_run(root, options, "r1", ["a", "b", "c"], [0, 30, 45], 0)
    assert similar(root, "id-a:0", 1, options)["clip_id"].to_pylist() == ["id-b:0"]
    _commit_run(root, options, "r2", ["b"], [90], 5)
    (name,) = saved_names(root, "similar-", options)
    return root, options, tmp_path / "out" / INDEX_DIR / name


def _refuse(monkeypatch, err: OSError) -> list[str]:
    """Every write of an index's data files fails with `err`; the files it was asked for."""
    tried: list[str] = []

    def refused(fs, uri, data, *, remote):
        tried.append(uri)
        raise err

    monkeypatch.setattr(index_store, "_put_bytes", refused)
    return tried


@pytest.mark.parametrize(
    ("err", "why"),
    [
        (OSError(errno.EROFS, "Read-only file system"), "(read-only file system)"),
        (PermissionError(errno.EACCES, "Permission denied"), "(access denied: Permission denied)"),
    ],
)
def test_a_lookup_that_may_not_save_answers_and_says_so_once(stale, monkeypatch, err, why):
    root, options, folder = stale
    manifest = (folder / "index.json").read_text()
    tried = _refuse(monkeypatch, err)
    lines: list[str] = []
    found = similar(root, "id-a:0", 2, options, on_unsaved=lines.append)
    assert found["clip_id"].to_pylist() == ["id-c:0", "id-b:0"]
    assert found["similarity"].to_pylist() == pytest.approx([0.7071, 0.0], abs=1e-3)
    assert tried  # it did try to save
    (line,) = lines
    assert f"{folder} {why}" in line and "write access" in line
    assert (folder / "index.json").read_text() == manifest


def test_without_a_listener_the_lookup_warns(stale, monkeypatch):
    root, options, folder = stale
    _refuse(monkeypatch, OSError(errno.EROFS, "Read-only file system"))
    with pytest.warns(IndexNotSaved, match=str(folder)):
        found = similar(root, "id-a:0", 2, options)
    assert found["clip_id"].to_pylist() == ["id-c:0", "id-b:0"]


def test_any_other_failure_of_a_lookup_s_save_raises(stale, monkeypatch):
    root, options, _ = stale
    _refuse(monkeypatch, OSError(errno.ENOSPC, "No space left on device"))
    with pytest.raises(OSError, match="No space left"):
        similar(root, "id-a:0", 2, options, on_unsaved=pytest.fail)


def test_a_writer_whose_save_is_refused_raises(stale, monkeypatch):
    """dedup (the nightly's too) saves the similar index it refreshes: refused, it fails,
    as does a refresh called as a writer (no `on_unsaved`)."""
    root, options, _ = stale
    save = similar_index.save_index

    def refused_for_similar(output, stored, options=None):
        if stored.name.startswith("similar-"):
            raise PermissionError(errno.EACCES, "Permission denied")
        return save(output, stored, options)

    monkeypatch.setattr(similar_index, "save_index", refused_for_similar)
    with pytest.raises(PermissionError):
        refresh(root, options)
    with pytest.raises(PermissionError):
        dedup(root, "footage", 0.01, options)
