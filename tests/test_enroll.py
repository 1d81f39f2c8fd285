"""``edgemood enroll`` on real faces, the live capture loop, rollback, and the daemon using the head."""

from __future__ import annotations

import io
import logging
from contextlib import redirect_stdout
from pathlib import Path

import cv2
import numpy as np
import pytest
from personal_helpers import synthetic_head

from edgemood.classes import CLASSES
from edgemood.cli import main
from edgemood.config import CameraConfig, Config, ModelConfig, MoodConfig, MpdConfig, MqttConfig
from edgemood.daemon import Daemon
from edgemood.demo.frames import Scene, write_replay
from edgemood.inference.model import DEFAULT_MODEL, MoodModel
from edgemood.mood.enroll import MAX_FRAMES_PER_FACE, Capture, capture_live, enroll
from edgemood.mood.head import ModelIdentity, model_identity
from edgemood.mood.store import HeadStore
from edgemood.sources.devices import open_source
from edgemood.vision.analyze import Analysis, Face, FaceAnalyzer
from edgemood.vision.crop import Box
from edgemood.vision.detect import DetectorSettings
from edgemood.vision.frame import read_image

PER_MOOD = 8


@pytest.fixture(scope="module")
def model() -> MoodModel:
    return MoodModel()


@pytest.fixture(scope="module")
def identity(model: MoodModel) -> ModelIdentity:
    return model_identity(DEFAULT_MODEL, model.sidecar.embedding_size)


@pytest.fixture(scope="module")
def analyzer(model: MoodModel) -> FaceAnalyzer:
    return FaceAnalyzer(model, DetectorSettings(), "skip")


@pytest.fixture(scope="module")
def labelled_replay(tmp_path_factory: pytest.TempPathFactory, analyzer: FaceAnalyzer) -> tuple[Path, str, str]:
    """A replay folder of a user the shipped model misreads: (folder, smile mood, others mood).

    The astronaut's smile is enrolled as the mood the model finds least
    likely in it, and another person's face (Grace Hopper) as the mood the model does
    see in the smile, so the base model is wrong on at least the smiles
    whatever model ships, and only a head that tells the two apart helps.
    """
    root = tmp_path_factory.mktemp("enroll-replay")
    write_replay(root / "smiles", (Scene("astronaut", PER_MOOD),), seed=1)
    write_replay(root / "others", (Scene("hopper", PER_MOOD),), seed=2)
    seen = np.mean([analyzer.analyze(read_image(str(p))).faces[0].probabilities for p in sorted((root / "smiles").iterdir())], axis=0)
    seen_as = CLASSES[int(np.argmax(seen))]
    unlike = min((c for c in CLASSES if c != seen_as), key=lambda c: seen[CLASSES.index(c)])
    (root / "smiles").rename(root / unlike)
    (root / "others").rename(root / seen_as)
    return root, unlike, seen_as


@pytest.fixture(scope="module")
def enrolled(tmp_path_factory: pytest.TempPathFactory, labelled_replay) -> tuple[Path, list[str]]:
    """Two enrollments from the replay into one state dir (the second with --keep-images)."""
    state = tmp_path_factory.mktemp("state")
    replay = str(labelled_replay[0])
    outputs = []
    for extra in ([], ["--keep-images"]):
        buffer = io.StringIO()
        with redirect_stdout(buffer):
            assert main(["enroll", "--replay", replay, "--per-mood", str(PER_MOOD), "--state-dir", str(state), *extra]) == 0
        outputs.append(buffer.getvalue())
    return state, outputs


def test_replay_enrollment_keeps_a_head_that_beats_the_base_model(enrolled, labelled_replay, identity):
    state, (first, _) = enrolled
    _, smile, others = labelled_replay
    assert f"{smile}: {PER_MOOD}/{PER_MOOD} faces" in first and f"{others}: {PER_MOOD}/{PER_MOOD} faces" in first
    assert "kept: personal head from" in first
    (head_path, head, _), _ = HeadStore(state).versions()
    assert head.classes == tuple(sorted((smile, others), key=CLASSES.index))
    assert head.metrics["personal_accuracy"] > head.metrics["base_accuracy"]
    assert head.metrics["heldout"] == 4 and head.metrics["train"] == 12  # a quarter of each mood held out
    assert head.model == identity
    assert f"saved as {head_path}" in first


def test_enrollment_images_exist_only_when_asked_for(enrolled, model):
    state, (first, second) = enrolled
    images = sorted(p for p in state.rglob("*") if p.suffix == ".png")
    assert "images kept" not in first and "enrollment images kept in" in second
    folders = {p.parent.parent for p in images}
    assert len(folders) == 1 and f"kept in {folders.pop()}" in second  # only the second run wrote any
    assert len(images) == 2 * PER_MOOD
    assert cv2.imread(str(images[0]), cv2.IMREAD_GRAYSCALE).shape == (model.input_size, model.input_size)


def test_list_and_rollback_switch_between_versions(enrolled, tmp_path, capsys):
    state = tmp_path / "state"
    (state / "personal").mkdir(parents=True)
    for path in (enrolled[0] / "personal").iterdir():  # a copy: rolling back changes the pointer
        if path.is_file():
            (state / "personal" / path.name).write_bytes(path.read_bytes())
    first, second = [p for p, _, _ in HeadStore(state).versions()]
    assert main(["enroll", "--list", "--state-dir", str(state)]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert [line[0] for line in listing] == [" ", "*"] and second.name in listing[1]
    assert main(["enroll", "--rollback", "--state-dir", str(state)]) == 0
    assert "is in use again" in capsys.readouterr().out
    assert [current for _, _, current in HeadStore(state).versions()] == [True, False]
    assert main(["enroll", "--rollback", "--state-dir", str(state)]) == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert error == [f"edgemood enroll: no earlier personal head to roll back to in {state / 'personal'}"]


def test_list_without_heads(tmp_path, capsys):
    assert main(["enroll", "--list", "--state-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.strip() == f"no personal heads in {tmp_path / 'personal'}"


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--moods", "happy"], "at least two moods"),
        (["--moods", "happy,glad"], "unknown mood(s) glad"),
        (["--per-mood", "2"], "whole number from 4 to 1000"),
        (["--rollback", "--list"], "not allowed with"),
    ],
)
def test_bad_options_exit_2(arguments, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["enroll", *arguments])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_replay_folder_must_name_moods(tmp_path, capsys):
    (tmp_path / "happy").mkdir()
    (tmp_path / "grumpy").mkdir()
    assert main(["enroll", "--replay", str(tmp_path), "--state-dir", str(tmp_path / "s")]) == 2
    assert "grumpy are not moods" in capsys.readouterr().err
    assert main(["enroll", "--replay", str(tmp_path), "--moods", "happy,sad", "--state-dir", str(tmp_path / "s")]) == 2
    assert "no subfolder for sad" in capsys.readouterr().err


def write_blank_frames(folder: Path, count: int, first: int = 0) -> None:
    """Frames of an empty grey wall: no face to find."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(first, first + count):
        cv2.imwrite(str(folder / f"{i:04d}.png"), np.full((240, 320), 90, np.uint8))


def test_live_capture_counts_down_and_skips_frames_without_a_face(tmp_path, analyzer):
    write_replay(tmp_path, (Scene("astronaut", 2),))  # 0000, 0001: a face
    write_blank_frames(tmp_path, 2, first=2)  # 0002, 0003: none; then the loop starts over
    source = open_source(f"dir:{tmp_path}", 320, 240, loop=True)
    out, sleeps = io.StringIO(), []
    captures = capture_live(source, ["happy", "sad"], 3, analyzer, 0.5, out, sleeps.append)
    text = out.getvalue()
    assert "Show: happy \u2014 in 3.. 2.. 1.. \n" in text and "Show: sad \u2014 in 3.. 2.. 1.. \n" in text
    assert "happy: 3/3 faces (2 frame(s) without exactly one face skipped)" in text
    assert "sad: 3/3 faces (2 frame(s) without exactly one face skipped)" in text
    assert [c.mood for c in captures] == ["happy"] * 3 + ["sad"] * 3
    # per mood: a 3 s countdown, then one camera interval between the 5 frames it took
    assert sleeps == ([1.0] * 3 + [0.5] * 4) * 2


class SeenTwice:
    """Unit-test stand-in for the analyzer: every frame shows two people."""

    def analyze(self, frame: np.ndarray) -> Analysis:
        face = Face(Box(0, 0, 50, 50), None, np.full(8, 1 / 8), np.zeros(4), np.zeros((4, 4), np.uint8))
        return Analysis([face], seen=2)


def test_frames_with_two_people_do_not_count(tmp_path):
    write_blank_frames(tmp_path, 1)
    out = io.StringIO()
    captures = capture_live(open_source(f"dir:{tmp_path}", 320, 240, loop=True), ["happy"], 4, SeenTwice(), 0.0, out, lambda s: None)  # type: ignore[arg-type]
    assert captures == [] and f"happy: 0/4 faces ({4 * MAX_FRAMES_PER_FACE} frame(s)" in out.getvalue()


def test_live_capture_gives_up_when_nobody_is_there(tmp_path, analyzer):
    write_blank_frames(tmp_path, 2)
    out = io.StringIO()
    captures = capture_live(open_source(f"dir:{tmp_path}", 320, 240, loop=True), ["happy"], 4, analyzer, 0.0, out, lambda s: None)
    assert captures == [] and f"happy: 0/4 faces ({4 * MAX_FRAMES_PER_FACE} frame(s)" in out.getvalue()


def test_a_head_no_better_than_the_base_model_is_not_stored(tmp_path, identity):
    rng = np.random.default_rng(0)
    captures = []
    for mood in ("happy", "sad"):
        base = np.full(len(CLASSES), 0.01)
        base[CLASSES.index(mood)] = 0.93  # the base model is always right
        size = identity.embedding_size
        captures += [Capture(mood, rng.normal(0, 1, size).astype(np.float32), base, np.zeros((4, 4), np.uint8)) for _ in range(8)]
    store = HeadStore(tmp_path)
    outcome = enroll(captures, identity, store, synthetic_head().created, keep_images=False)
    assert outcome.report.base_accuracy == 1.0 and outcome.saved is None
    assert store.current() is None and not any(tmp_path.rglob("*"))


# -- the daemon ------------------------------------------------------------------------


def daemon_config(frames: Path, personal: bool) -> Config:
    return Config(
        camera=CameraConfig(source=f"dir:{frames}"),
        model=ModelConfig(personal=personal),
        mood=MoodConfig(smoothing=1.0, min_dwell_s=0.0),
        mpd=MpdConfig(enabled=False),
        mqtt=MqttConfig(enabled=False),
    )


@pytest.fixture(scope="module")
def smile_frames(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("smile")
    write_replay(folder, (Scene("astronaut", 2),))
    return folder


def run_daemon(config: Config) -> tuple[Daemon, bool]:
    """Open, sample two frames, close; returns the daemon and whether the debouncer got the model's own probabilities."""
    daemon = Daemon(config)
    daemon.open()
    try:
        analyses = [daemon.step() for _ in range(2)]
    finally:
        daemon.close()
    base = analyses[-1].faces[0].probabilities
    smoothed = np.array(list(daemon.debouncer.state.probabilities.values()))  # smoothing 1: the last frame's
    return daemon, bool(np.allclose(smoothed, base / base.sum()))


def test_daemon_applies_the_enrolled_head_and_reports_it(smile_frames, tmp_path, monkeypatch, caplog, identity):
    HeadStore(tmp_path).save(synthetic_head(model=identity, favourite="surprise"))
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path))
    with caplog.at_level(logging.INFO, logger="edgemood"):
        daemon, unchanged = run_daemon(daemon_config(smile_frames, personal=True))
    assert any(r.getMessage().startswith("personal head from 2026-03-01 12:00:00 UTC in use") for r in caplog.records)
    assert daemon.debouncer.state.mood == "surprise" and not unchanged  # what the head says, not the model
    stats = daemon.health()["personal"]
    assert stats["active"] and stats["enrolled"] == "2026-03-01T12:00:00Z" and stats["moods"] == list(CLASSES)


def test_daemon_without_the_switch_uses_the_base_model(smile_frames, tmp_path, monkeypatch, caplog, identity):
    HeadStore(tmp_path).save(synthetic_head(model=identity, favourite="surprise"))
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path))
    with caplog.at_level(logging.INFO, logger="edgemood"):
        daemon, unchanged = run_daemon(daemon_config(smile_frames, personal=False))
    assert "no personal head ([model] personal = false)" in caplog.messages and unchanged
    assert daemon.health()["personal"] == {"active": False, "note": "no personal head ([model] personal = false)"}


def test_daemon_refuses_a_head_from_another_model(smile_frames, tmp_path, monkeypatch, caplog, identity):
    other = ModelIdentity("old.tflite", "0" * 64, identity.embedding_size)
    HeadStore(tmp_path).save(synthetic_head(model=other))
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path))
    with caplog.at_level(logging.INFO, logger="edgemood"):
        daemon, unchanged = run_daemon(daemon_config(smile_frames, personal=True))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("fitted on model old.tflite" in w for w in warnings) and unchanged
    assert daemon.health()["personal"]["active"] is False
