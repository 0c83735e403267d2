"""A `similar` index whose save fails: a lookup refused for want of write access answers from
the index it refreshed in memory and says so in one line; a writer (dedup, and so the
nightly) raises; any other failure raises for a lookup too. Local outputs, the failure made
by hand (we run as root: chmod cannot make a folder unwritable). The S3 reader's case, with a
real server enforcing read-only credentials, is tests/jobs/test_similar_read_only.py."""

from __future__ import annotations

import errno
from pathlib import Path

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


def _refuse_under(monkeypatch, root: str, err: OSError) -> list[str]:
    """Writes of index data files under `root` fail with `err`; elsewhere (the reader's
    cache) they go through. The files refused."""
    tried: list[str] = []
    put = index_store._put_bytes

    def refused(fs, uri, data, *, remote):
        if str(uri).startswith(root):
            tried.append(uri)
            raise err
        return put(fs, uri, data, remote=remote)

    monkeypatch.setattr(index_store, "_put_bytes", refused)
    return tried


@pytest.fixture()
def reader(stale, monkeypatch, tmp_path):
    """The stale output, its saves refused; the reader's cache in a folder of the test's."""
    root, options, folder = stale
    monkeypatch.setenv("CLIPNOTE_CACHE", str(tmp_path / "reader-cache"))
    tried = _refuse_under(monkeypatch, root, PermissionError(errno.EACCES, "Permission denied"))
    return root, options, folder, tried


def test_a_reader_s_next_lookups_answer_from_its_own_copy(reader, tmp_path):
    """The first lookup refreshes, may not save under the output, keeps a copy in the
    reader's cache and says where; the next lookups answer the same from that copy, without
    a refresh (no save tried, no line)."""
    root, options, folder, tried = reader
    lines: list[str] = []
    first = similar(root, "id-a:0", 2, options, on_unsaved=lines.append)
    assert first["clip_id"].to_pylist() == ["id-c:0", "id-b:0"]
    copy = similar_index.reader_cache(root)
    assert copy.startswith(str(tmp_path / "reader-cache" / "similar"))
    (line,) = lines
    assert str(folder) in line and f"a copy is kept in {copy}" in line
    assert (Path(copy) / INDEX_DIR / folder.name / "index.json").is_file()
    refused = len(tried)
    for clip, expected in (("id-a:0", ["id-c:0", "id-b:0"]), ("id-b:0", ["id-c:0", "id-a:0"])):
        again = similar(root, clip, 2, options, on_unsaved=lines.append)
        assert again["clip_id"].to_pylist() == expected
        assert again["similarity"].to_pylist() == pytest.approx([0.7071, 0.0], abs=1e-3)
    assert len(lines) == 1 and len(tried) == refused  # answered from the copy: no refresh


def test_a_commit_since_makes_the_reader_s_copy_stale(reader):
    """The copy answers only while it matches the committed snapshot: after c is annotated
    again (at 90 degrees, b's place), the lookup refreshes, says so again, and answers the
    new truth."""
    root, options, _, _ = reader
    lines: list[str] = []
    before = similar(root, "id-a:0", 2, options, on_unsaved=lines.append)
    assert before["similarity"].to_pylist() == pytest.approx([0.7071, 0.0], abs=1e-3)
    _commit_run(root, options, "r3", ["c"], [89], 9)
    found = similar(root, "id-a:0", 2, options, on_unsaved=lines.append)
    assert found["clip_id"].to_pylist() == ["id-c:0", "id-b:0"]  # cos 89 and cos 90 degrees
    assert found["similarity"].to_pylist() == pytest.approx([0.0175, 0.0], abs=2e-3)
    assert len(lines) == 2


def test_a_reader_whose_cache_cannot_be_written_either_refreshes_each_time(
    stale, monkeypatch, tmp_path
):
    root, options, _ = stale
    blocker = tmp_path / "a-plain-file"
    blocker.write_text("")
    monkeypatch.setenv("CLIPNOTE_CACHE", str(blocker))  # cannot hold a folder
    _refuse_under(monkeypatch, root, PermissionError(errno.EACCES, "Permission denied"))
    lines: list[str] = []
    for _ in range(2):
        found = similar(root, "id-a:0", 2, options, on_unsaved=lines.append)
        assert found["clip_id"].to_pylist() == ["id-c:0", "id-b:0"]
    assert len(lines) == 2
    assert all("lookups will refresh it again" in line for line in lines)
