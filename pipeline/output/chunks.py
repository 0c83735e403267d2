"""Which written files may be committed, and when (pure: no I/O)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from pipeline.output.coverage import covered_seconds
from pipeline.output.records import Span, WriteResult


@dataclass
class Chunk:
    """Files to commit together (in-process: the committer turns it into a `ChunkRecord`)."""

    files: list[str]
    rows: int
    counts: dict[str, int]
    videos: list[str]
    """Videos completed by this chunk."""


@dataclass
class _OpenVideo:
    """A video whose rows are not all written yet, added up over the parts holding them."""

    rows: int = 0
    total: int = 0
    """0 until the part with its last row arrives."""
    duration_s: float = 0.0
    ok_spans: list[Span] = field(default_factory=list)

    def add(self, rows: int, total: int, duration_s: float, ok_spans: tuple[Span, ...]) -> None:
        self.rows += rows
        self.total = max(self.total, total)
        self.duration_s = max(self.duration_s, duration_s)
        self.ok_spans += ok_spans

    @property
    def complete(self) -> bool:
        return bool(self.total) and self.rows >= self.total


class ChunkTracker:
    """Groups write results into chunks whose videos are all complete.

    Files that share a video are committed together, and only once every video in any of
    them is complete: a file whose own videos are done can still hold the rows of a video
    that another, unfinished file holds too, and committing it alone would show part of
    that video.
    """

    def __init__(
        self,
        chunk_videos: int,
        chunk_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.chunk_videos = chunk_videos
        self.chunk_seconds = chunk_seconds
        self.clock = clock
        self._since = clock()
        self._open_videos: dict[str, _OpenVideo] = {}
        self._file_waits: dict[str, int] = {}  # unreleased file -> incomplete videos in it
        self._file_videos: dict[str, set[str]] = {}  # unreleased file -> its videos
        self._video_files: dict[str, set[str]] = {}  # unreleased video -> its files
        self._file_results: dict[str, WriteResult] = {}
        self._ready_files: list[str] = []
        self._ready_videos: list[str] = []
        self.completed_videos = 0
        """Videos completed so far (their rows all written): a count, so the driver holds
        nothing per video once its chunk is cut."""
        self.covered_s = 0.0
        """Seconds of the completed videos inside an ok clip (`pipeline.output.coverage`)."""
        self.video_s = 0.0
        """Seconds of the completed videos."""

    def add(self, result: WriteResult) -> None:
        file = result.file
        self._file_results[file] = result
        self._file_waits[file] = 0
        self._file_videos[file] = set()
        for video in result.videos:
            entry = self._open_videos.setdefault(video.uri, _OpenVideo())
            entry.add(video.rows, video.total, video.duration_s, video.ok_spans)
            self._video_files.setdefault(video.uri, set()).add(file)
            self._file_videos[file].add(video.uri)
            self._file_waits[file] += 1
            if entry.complete:
                self._complete(video.uri)
        self._release_ready()

    def _complete(self, uri: str) -> None:
        self._add_up(self._open_videos.pop(uri))
        for file in self._video_files[uri]:
            self._file_waits[file] -= 1

    def _add_up(self, entry: _OpenVideo) -> None:
        self.completed_videos += 1
        self.covered_s += covered_seconds(entry.ok_spans, entry.duration_s)
        self.video_s += entry.duration_s

    def _component(self, file: str) -> tuple[set[str], set[str]]:
        """The files and videos linked to `file` through shared videos."""
        files, videos, todo = {file}, set(), [file]
        while todo:
            for uri in self._file_videos[todo.pop()]:
                if uri not in videos:
                    videos.add(uri)
                    new = self._video_files[uri] - files
                    files |= new
                    todo.extend(new)
        return files, videos

    def _release_ready(self) -> None:
        for file in list(self._file_videos):
            if file not in self._file_videos or self._file_waits[file]:
                continue
            files, videos = self._component(file)
            if any(self._file_waits[f] for f in files):
                continue
            for f in sorted(files):
                del self._file_waits[f], self._file_videos[f]
                self._ready_files.append(f)
            for uri in sorted(videos):
                del self._video_files[uri]
                self._ready_videos.append(uri)

    def due(self) -> bool:
        """A chunk should be committed now."""
        if not self._ready_files:
            return False
        if len(self._ready_videos) >= self.chunk_videos:
            return True
        return self.clock() - self._since >= self.chunk_seconds

    def wait_s(self) -> float | None:
        """Seconds left before `due` turns true by time alone (0: it is due); None while no
        file is ready. The driver wakes for this too: files closed on their row count can be
        ready before the chunk is, and must not wait for rows that may be slow to come."""
        if not self._ready_files:
            return None
        return max(0.0, self._since + self.chunk_seconds - self.clock())

    def take(self, *, force: bool = False) -> Chunk | None:
        """The committable files (with `force`: every file, complete or not)."""
        if force:
            for entry in self._open_videos.values():  # committed as they are: counted too
                self._add_up(entry)
            self._ready_videos.extend(self._video_files)
            self._ready_files.extend(self._file_videos)
            for held in (self._open_videos, self._file_waits, self._file_videos, self._video_files):
                held.clear()
        if not self._ready_files:
            return None
        files, self._ready_files = self._ready_files, []
        videos, self._ready_videos = self._ready_videos, []
        counts: Counter = Counter()
        rows = 0
        for file in files:
            result = self._file_results.pop(file)
            counts.update(result.counts)
            rows += result.rows
        self._since = self.clock()
        return Chunk(files, rows, dict(counts), videos)

    @property
    def incomplete_videos(self) -> list[str]:
        return list(self._open_videos)
