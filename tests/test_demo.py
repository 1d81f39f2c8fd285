"""The README's "run it" command: a story a newcomer can check, the same on every run."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from edgemood.commands.demo import caption_line, describe_player, scene_starts
from edgemood.demo.frames import DEMO_SCENES, Scene, write_replay
from edgemood.vision.frame import read_image

#: The demo at this interval takes about 15 s; two runs are compared.
INTERVAL = "0.2"


def demo() -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "edgemood", "demo", "--interval", INTERVAL], capture_output=True, text=True, timeout=120
    )


def comparable(out: str) -> str:
    """The narration without what differs by design between runs: ports and wall-clock dates."""
    return re.sub(r'"at":"[^"]+"', '"at":…', re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:…", out))


@pytest.mark.integration
def test_the_demo_tells_the_same_checkable_story_twice(mosquitto, mpd):  # fixtures: the servers must be installed
    first, second = demo(), demo()
    assert first.returncode == 0, first.stdout + first.stderr
    assert first.stderr == "", first.stderr  # no runtime notice, no warning at the normal end
    assert comparable(first.stdout) == comparable(second.stdout), (first.stdout, second.stdout)
    out = first.stdout
    smile, nobody, hopper, smile_again = (caption_line(start, scene) for start, scene in scene_starts(DEMO_SCENES))
    # each photo is named before what the daemon made of it, in the replay's order
    story = [
        smile, "uncertain -> happy", "MPD: playing upbeat-1.wav",
        nobody, "happy -> absent", "MPD: playing upbeat-1.wav",  # absent leaves the music alone, and MPD says so
        hopper, "absent -> neutral", "MPD: playing focus-1.wav",
        smile_again, "neutral -> happy", "MPD: playing upbeat-1.wav",
        "the replay is over: all 56 frames shown", "availability: offline", "daemon exited with 0",
    ]  # fmt: skip
    position = 0
    for step in story:
        position = out.find(step, position)
        assert position >= 0, f"{step!r} missing, or out of order:\n{out}"
    assert "MQTT edgemood/demo/event: {" in out and "keeps playing" not in out


def test_every_frame_shows_what_its_scene_says(tmp_path, model_analyzer):
    labels = write_replay(tmp_path, DEMO_SCENES)
    frames = sorted(tmp_path.iterdir())
    assert len(frames) == len(labels) == sum(scene.frames for scene in DEMO_SCENES)
    for label, frame in zip(labels, frames):
        faces = model_analyzer.analyze(read_image(str(frame))).faces
        assert len(faces) == (0 if label == "nobody" else 1), frame.name


def test_the_same_seed_gives_the_same_frames(tmp_path):
    write_replay(tmp_path / "a", (Scene("astronaut", 2), Scene("nobody", 3)))
    write_replay(tmp_path / "b", (Scene("astronaut", 2), Scene("nobody", 3)))
    assert [p.read_bytes() for p in sorted((tmp_path / "a").iterdir())] == [p.read_bytes() for p in sorted((tmp_path / "b").iterdir())]


def test_captions_count_frames_from_one():
    starts = scene_starts((Scene("astronaut", 16), Scene("nobody", 12)))
    assert [first for first, _ in starts] == [0, 16]
    assert caption_line(*starts[1]) == "-- frames 17-28: nobody (photos of a brick wall, a Falcon 9 launch, a cup of coffee)"
    assert caption_line(*starts[0]) == "-- frames 1-16: Eileen Collins, NASA astronaut, smiling"


@pytest.mark.parametrize(
    ("status", "song", "line"),
    [
        ({"state": "play", "song": "0", "playlistlength": "3"}, {"file": "upbeat-1.wav"}, "MPD: playing upbeat-1.wav (1 of 3 in the queue)"),
        ({"state": "pause", "song": "2", "playlistlength": "3"}, {"file": "calm-3.wav"}, "MPD: paused on calm-3.wav (3 of 3 in the queue)"),
        ({"state": "stop", "playlistlength": "0"}, {}, "MPD: stopped, nothing queued"),
        ({"state": "stop", "playlistlength": "3"}, {"file": "calm-1.wav"}, "MPD: stopped, 3 track(s) queued"),
    ],
)  # fmt: skip
def test_what_mpd_says_is_what_is_printed(status, song, line):
    assert describe_player(status, song) == line


@pytest.fixture(scope="module")
def model_analyzer():
    from edgemood.inference.model import MoodModel
    from edgemood.vision.analyze import FaceAnalyzer
    from edgemood.vision.detect import DetectorSettings

    return FaceAnalyzer(MoodModel(), DetectorSettings(detect_width=640), "largest")
