"""The progress line a person reads, and how often it is printed where no terminal is."""

from __future__ import annotations

import io

from jobs.progress import ProgressDisplay, describe
from pipeline.run import RunProgress


def test_line_has_videos_clips_speed_and_eta():
    progress = RunProgress(listed=12, skipped=2, queued=10, written=4, committed=3,
                           counts={"ok": 7, "decode_error": 1})  # fmt: skip
    line = describe(progress, elapsed_s=16.0)
    assert line == (
        "videos 4/10 done (listed 12, skipped 2, committed 3) | clips ok 7, errors 1"
        " | 0.50 clips/s | ETA 0:00:24 | 0:00:16 elapsed"
    )  # 4 videos in 16 s -> 6 left take 24 s


def test_no_eta_before_the_first_video_or_after_the_last():
    assert "ETA" not in describe(RunProgress(listed=3, queued=3), elapsed_s=5.0)
    done = RunProgress(listed=3, queued=3, written=3, counts={"ok": 3})
    assert "ETA" not in describe(done, elapsed_s=5.0)


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_not_a_terminal_prints_one_line_every_interval_and_the_last_state():
    out, clock = io.StringIO(), _Clock()
    display = ProgressDisplay(stream=out, interval_s=5.0, clock=clock)
    for second in range(12):  # an update every second for 12 s
        clock.now = 100.0 + second
        display(RunProgress(listed=12, queued=12, written=second))
    display.close()
    lines = out.getvalue().splitlines()
    assert [line.split(" done")[0] for line in lines] == [
        "videos 0/12", "videos 5/12", "videos 10/12", "videos 11/12",
    ]  # fmt: skip
    assert "\r" not in out.getvalue() and "\033" not in out.getvalue()


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_terminal_redraws_one_line_in_place():
    out, clock = _Tty(), _Clock()
    display = ProgressDisplay(stream=out, clock=clock)
    for written in range(3):
        display(RunProgress(listed=3, queued=3, written=written))
    display.close()
    text = out.getvalue()
    assert text.count("\r\033[2K") == 4 and text.count("\n") == 1


def test_the_line_fits_the_width_by_leaving_out_details_first():
    """At 80 columns the full line (104 wide) wrapped, and a wrapped line cannot be redrawn
    in place: the listing counts go first, then the speed, then words."""
    progress = RunProgress(listed=12, skipped=2, queued=10, written=4, committed=3,
                           counts={"ok": 7, "decode_error": 1})  # fmt: skip
    assert describe(progress, 16.0, width=200) == describe(progress, 16.0)
    assert describe(progress, 16.0, width=100) == (
        "videos 4/10 done (committed 3) | clips ok 7, errors 1 | 0.50 clips/s | ETA 0:00:24"
        " | 0:00:16 elapsed"
    )
    assert describe(progress, 16.0, width=79) == (
        "videos 4/10 done | clips ok 7, errors 1 | ETA 0:00:24 | 0:00:16 elapsed"
    )
    assert describe(progress, 16.0, width=50) == (
        "videos 4/10 | ok 7, errors 1 | ETA 0:00:24 | 0:00:16"
    )


def test_the_display_fits_the_terminal_width(monkeypatch):
    monkeypatch.setenv("COLUMNS", "60")
    out, clock = _Tty(), _Clock()
    display = ProgressDisplay(stream=out, clock=clock)
    display(RunProgress(listed=1200, skipped=200, queued=1000, written=400, committed=300))
    display.close()
    lines = out.getvalue().replace("\r\033[2K", "\n").split("\n")
    assert max(len(line) for line in lines) < 60 and "videos 400/1000" in out.getvalue()
