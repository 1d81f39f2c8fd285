"""The room's mood (``[detect] multiple_faces = "all"``): pure logic, then the daemon feeding it."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from edgemood.classes import CLASSES
from edgemood.config import Config, DetectConfig, ModelConfig, MoodConfig, MpdConfig, MqttConfig
from edgemood.daemon import Daemon
from edgemood.mood.debounce import MoodDebouncer
from edgemood.mood.room import room_probabilities
from edgemood.sinks.mqtt_topics import Command
from edgemood.vision.analyze import Analysis, Face
from edgemood.vision.crop import Box


def one_hot(name: str) -> np.ndarray:
    return np.eye(len(CLASSES))[CLASSES.index(name)]


def test_nobody_in_the_room_is_no_evidence() -> None:
    assert room_probabilities([], []) is None


def test_one_face_is_the_room() -> None:
    face = np.array([0.1, 0, 0, 0, 0.6, 0.3, 0, 0])
    assert room_probabilities([face], [900.0]) == pytest.approx(face)


def test_faces_count_by_their_area() -> None:
    near_happy, far_sad = one_hot("happy"), one_hot("sad")
    room = room_probabilities([near_happy, far_sad], [120 * 120, 60 * 60])  # four times the area
    assert room is not None
    assert room[CLASSES.index("happy")] == pytest.approx(0.8)
    assert room[CLASSES.index("sad")] == pytest.approx(0.2)
    assert room.sum() == pytest.approx(1.0)


def test_each_face_is_normalised_so_only_its_area_weighs() -> None:
    # a classifier output that does not sum to 1 must not count double
    loud = 2.0 * one_hot("anger")
    room = room_probabilities([loud, one_hot("neutral")], [100.0, 100.0])
    assert room is not None
    assert room[CLASSES.index("anger")] == pytest.approx(0.5)


def test_faces_without_area_count_equally() -> None:
    room = room_probabilities([one_hot("fear"), one_hot("surprise")], [0.0, 0.0])
    assert room is not None
    assert room[CLASSES.index("fear")] == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("probabilities", "areas", "says"),
    [
        ([one_hot("happy")], [1.0, 2.0], "1 probability vectors but 2 areas"),
        ([one_hot("happy")], [-1.0], "non-negative"),
        ([one_hot("happy")], [float("nan")], "non-negative"),
        ([np.ones(3)], [1.0], "expected 8"),
    ],
)
def test_bad_input_is_a_caller_bug(probabilities: list[np.ndarray], areas: list[float], says: str) -> None:
    with pytest.raises(ValueError, match=says):
        room_probabilities(probabilities, areas)


def test_a_smiling_majority_makes_a_happy_room_through_the_debouncer() -> None:
    # two near smiling faces and one far frowning one: the room is happy after the dwell
    debouncer = MoodDebouncer(MoodConfig(smoothing=0.5, min_dwell_s=3.0), now=0.0)
    faces = [one_hot("happy"), one_hot("happy"), one_hot("sad")]
    areas = [100 * 100, 90 * 90, 50 * 50]
    changes = [debouncer.update(float(t), room_probabilities(faces, areas)) for t in range(5)]
    switched = [c for c in changes if c]
    assert [(c.previous, c.current.mood, c.at) for c in switched] == [("uncertain", "happy", 3.0)]


def test_a_split_room_stays_uncertain() -> None:
    # as many (and as big) happy faces as sad ones: no class reaches the threshold
    debouncer = MoodDebouncer(MoodConfig(enter_threshold=0.55), now=0.0)
    room = room_probabilities([one_hot("happy"), one_hot("sad")], [80 * 80, 80 * 80])
    assert all(debouncer.update(float(t), room) is None for t in range(10))
    assert debouncer.state.mood == "uncertain"


def test_the_state_says_whether_a_mood_is_forced() -> None:
    debouncer = MoodDebouncer(MoodConfig(), now=0.0)
    assert not debouncer.state.forced
    change = debouncer.force("sad", 1.0)
    assert change is not None and change.current.forced and debouncer.state.forced
    release = debouncer.force(None, 2.0)
    assert release is not None and not release.current.forced


# -- in the daemon: every face reaches the debouncer, and the face count reaches MQTT -------------


class _Recorder:
    """Stands in for the MQTT sink; keeps the face counts and override states it is given."""

    def __init__(self) -> None:
        self.faces: list[int] = []
        self.overrides: list[str | None] = []

    def publish_faces(self, count: int) -> None:
        self.faces.append(count)

    def publish_override(self, mood: str | None) -> None:
        self.overrides.append(mood)

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


class _Frames:
    name = "scripted"

    def open(self) -> None:
        pass

    def read(self) -> np.ndarray:
        return np.zeros((240, 320), np.uint8)

    def close(self) -> None:
        pass


def _face(probabilities: np.ndarray, side: float) -> Face:
    return Face(Box(0, 0, side, side), 0.0, probabilities, np.zeros(8, np.float32), np.zeros((48, 48), np.uint8))


def test_the_daemon_feeds_the_room_to_the_debouncer_and_counts_faces() -> None:
    config = Config(
        detect=DetectConfig(multiple_faces="all"),
        model=ModelConfig(personal=False),
        mood=MoodConfig(smoothing=1.0),
        mpd=MpdConfig(enabled=False),
        mqtt=MqttConfig(enabled=False),
    )
    daemon = Daemon(config, source_factory=_Frames)
    daemon.open()
    try:
        recorder = daemon.mqtt = _Recorder()  # type: ignore[assignment]
        faces = [_face(one_hot("happy"), 120), _face(one_hot("sad"), 60)]
        daemon.analyzer.analyze = lambda frame: Analysis(faces, seen=3, timings={})  # type: ignore[union-attr]
        daemon.step()
        smoothed = daemon.debouncer.state.probabilities  # type: ignore[union-attr]
        assert smoothed["happy"] == pytest.approx(0.8) and smoothed["sad"] == pytest.approx(0.2)
        assert recorder.faces == [3]  # every face seen, also those beyond what was classified
        daemon.analyzer.analyze = lambda frame: Analysis([], seen=0, timings={})  # type: ignore[union-attr]
        daemon.step()
        assert recorder.faces == [3, 0]
        daemon.commands.put(Command("mood", "fear"))
        daemon.commands.put(Command("mood", None))
        daemon._drain_commands()
        assert recorder.overrides == ["fear", None]
    finally:
        daemon.close()
