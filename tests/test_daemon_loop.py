"""The daemon's loop logic in one process: clocks, the per-frame error boundary, unusable frames.

The model, analyzer and debouncer are the real ones; only the frames and, where a
test needs a face with known probabilities, the analyzer's answer are stood in for.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from edgemood.classes import ABSENT, CLASSES
from edgemood.config import Config, MoodConfig, MpdConfig, MqttConfig
from edgemood.daemon import MAX_CONSECUTIVE_ERRORS, Daemon, PipelineFailing
from edgemood.platform.clock import Clock
from edgemood.platform.stats import WINDOW_TIMINGS, StatsCollector
from edgemood.vision.analyze import Analysis, Face
from edgemood.vision.detect import Box

HAPPY = np.eye(len(CLASSES))[CLASSES.index("happy")]


class SteppingClock:
    """A monotonic clock the test advances, and a wall clock that NTP may step by hours."""

    def __init__(self) -> None:
        self.mono, self.wall_offset = 1000.0, 1_700_000_000.0

    def advance(self, seconds: float) -> None:
        self.mono += seconds

    def step_wall(self, seconds: float) -> None:
        self.wall_offset += seconds

    def clock(self) -> Clock:
        return Clock(monotonic=lambda: self.mono, wall=lambda: self.mono + self.wall_offset)


class ScriptedSource:
    """Frames on demand: ``None`` entries are a camera read that fails."""

    name = "scripted"

    def __init__(self) -> None:
        self.next: Any = np.zeros((240, 320), np.uint8)

    def open(self) -> None:
        pass

    def read(self) -> np.ndarray:
        return self.next

    def close(self) -> None:
        pass


class Recorder:
    """Stands in for the MQTT sink: keeps what would be published."""

    def __init__(self) -> None:
        self.moods: list[Any] = []
        self.events: list[Any] = []

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None

    def publish_mood(self, state: Any, *args: Any, **kwargs: Any) -> None:
        self.moods.append(state)

    def publish_event(self, change: Any, *args: Any, **kwargs: Any) -> None:
        self.events.append(change)


@pytest.fixture
def loop() -> Iterator[tuple[Daemon, ScriptedSource, SteppingClock]]:
    config = Config(
        mood=MoodConfig(smoothing=1.0, min_dwell_s=3.0, absent_after_s=10.0),
        mpd=MpdConfig(enabled=False),
        mqtt=MqttConfig(enabled=False),
    )
    source, time_ = ScriptedSource(), SteppingClock()
    daemon = Daemon(config, source_factory=lambda: source, clock=time_.clock())
    daemon.open()
    yield daemon, source, time_
    daemon.close()


def face_says(daemon: Daemon, probabilities: np.ndarray | None) -> None:
    """From now on the analyzer sees one face with these probabilities (None: no face)."""
    faces = [] if probabilities is None else [
        Face(Box(10, 10, 100, 100), 0.0, probabilities, np.zeros(8, np.float32), np.zeros((48, 48), np.uint8))
    ]
    daemon.analyzer.analyze = lambda frame: Analysis(faces, seen=len(faces), timings={"detect": 0.001})  # type: ignore[union-attr]


def run_for(daemon: Daemon, time_: SteppingClock, seconds: float, every: float = 1.0) -> None:
    for _ in range(int(seconds / every)):
        time_.advance(every)
        daemon.step()


def test_a_wall_clock_stepped_back_an_hour_does_not_freeze_absent(loop) -> None:  # type: ignore[no-untyped-def]
    daemon, _, time_ = loop
    face_says(daemon, HAPPY)
    run_for(daemon, time_, 4)
    assert daemon.debouncer.state.mood == "happy"
    time_.step_wall(-3600)  # NTP steps the clock back an hour
    face_says(daemon, None)
    run_for(daemon, time_, 11)
    assert daemon.debouncer.state.mood == ABSENT


def test_a_wall_clock_jumping_forward_does_not_skip_the_dwell_and_dates_payloads_by_the_wall(loop) -> None:  # type: ignore[no-untyped-def]
    daemon, _, time_ = loop
    recorder = daemon.mqtt = Recorder()  # type: ignore[assignment]
    face_says(daemon, HAPPY)
    time_.advance(1)
    daemon.step()
    time_.step_wall(+5 * 3600)  # boot: NTP syncs hours forward
    time_.advance(1)
    daemon.step()
    assert daemon.debouncer.state.mood != "happy", "a wall-clock jump must not count as dwell"
    run_for(daemon, time_, 3)
    assert daemon.debouncer.state.mood == "happy"
    wall_now = time_.mono + time_.wall_offset
    assert recorder.events[-1].at == pytest.approx(wall_now)
    assert recorder.moods[-1].since == pytest.approx(wall_now)


def test_unusable_frames_count_as_nobody_for_absent(loop) -> None:  # type: ignore[no-untyped-def]
    daemon, source, time_ = loop
    face_says(daemon, HAPPY)
    run_for(daemon, time_, 4)
    assert daemon.debouncer.state.mood == "happy"
    del daemon.analyzer.analyze  # the real analyzer again  # type: ignore[union-attr]
    source.next = np.zeros((8, 8), np.uint8)  # a camera sending garbage
    run_for(daemon, time_, 11)
    assert daemon.debouncer.state.mood == ABSENT and daemon.rejected_frames == 11


def test_a_frame_that_raises_costs_that_frame_only_and_is_counted(loop, caplog) -> None:  # type: ignore[no-untyped-def]
    daemon, _, time_ = loop
    calls = []

    def sometimes_broken(frame: np.ndarray) -> Analysis:
        calls.append(1)
        if len(calls) % 2:
            raise RuntimeError("a bug in one frame")
        return Analysis([], timings={"detect": 0.001})

    daemon.analyzer.analyze = sometimes_broken  # type: ignore[union-attr]
    for _ in range(2 * MAX_CONSECUTIVE_ERRORS):
        time_.advance(1)
        daemon._guarded_step()
    assert daemon.errors == MAX_CONSECUTIVE_ERRORS and daemon.health()["errors"] == MAX_CONSECUTIVE_ERRORS
    logged = [r for r in caplog.records if "frame processing failed" in r.getMessage()]
    assert len(logged) == 1 and logged[0].exc_info, "logged once a minute, with the traceback"


def test_only_a_run_of_failing_frames_ends_the_daemon(loop) -> None:  # type: ignore[no-untyped-def]
    daemon, _, time_ = loop

    def broken(frame: np.ndarray) -> Analysis:
        raise RuntimeError("the pipeline cannot work")

    daemon.analyzer.analyze = broken  # type: ignore[union-attr]
    for _ in range(MAX_CONSECUTIVE_ERRORS - 1):
        daemon._guarded_step()
    with pytest.raises(PipelineFailing, match="in a row failed") as info:
        daemon._guarded_step()
    assert info.value.exit_code == 1


def test_the_stats_window_keeps_a_bounded_number_of_timings() -> None:
    stats = StatsCollector(clock=lambda: 1.0, cpu_clock=lambda: 0.0)
    for i in range(WINDOW_TIMINGS * 4):
        stats.record(1, {"detect": 0.001 if i < WINDOW_TIMINGS * 3 else 0.009})
    assert all(len(values) == WINDOW_TIMINGS for values in stats._timings.values())
    assert stats.snapshot()["latency_ms"]["detect"] == 9.0  # the newest frames decide


def test_a_debug_folder_that_breaks_after_start_warns_once_and_the_loop_goes_on(tmp_path, caplog) -> None:  # type: ignore[no-untyped-def]
    from edgemood.config import LogConfig

    folder = tmp_path / "crops"
    config = Config(
        mood=MoodConfig(smoothing=1.0, min_dwell_s=0.0, absent_after_s=1.0),
        mpd=MpdConfig(enabled=False),
        mqtt=MqttConfig(enabled=False),
        log=LogConfig(debug_frames_dir=str(folder)),
    )
    time_ = SteppingClock()
    daemon = Daemon(config, source_factory=ScriptedSource, clock=time_.clock())
    daemon.open()
    try:
        face_says(daemon, HAPPY)
        daemon.step()
        assert len(list(folder.iterdir())) == 1  # the crop behind the first change
        folder.rename(tmp_path / "gone")
        folder.write_text("a file where the folder was")  # e.g. the card remounted, a path replaced
        for probabilities in [None, HAPPY] * 3:
            face_says(daemon, probabilities)
            time_.advance(2)
            daemon._guarded_step()
        assert daemon.errors == 0 and daemon.debouncer.state.mood == "happy"
        warnings = [r for r in caplog.records if "debug_frames_dir" in r.getMessage()]
        assert len(warnings) == 1
    finally:
        daemon.close()
