"""The benchmark script's building blocks, and one short run of it (no timing assertions)."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from needs import missing
from procfs import process_cpu_seconds, process_status_kib

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bench.py"
LAST_LINE = re.compile(r"^pipeline speed-up vs peer: (\d+\.\dx|n/a \(no peer: .+\))$")


@pytest.fixture(scope="module")
def bench():
    if importlib.util.find_spec("skimage") is None:
        missing("the benchmark's frames come from scikit-image's photos: pip install -e '.[bench]'")
    spec = importlib.util.spec_from_file_location("edgemood_bench", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


@pytest.fixture(scope="module")
def astronaut_frames(bench):
    subjects, _ = bench.sample_subjects(None, 1, np.random.default_rng(0))
    return bench.camera_frames(subjects, 6, 3, seed=1)


def test_frames_are_camera_frames_with_the_face_where_the_truth_says(bench, astronaut_frames):
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    for frame in astronaut_frames:
        assert frame.image.shape == (480, 640, 3) and frame.image.dtype == np.uint8
        assert 0 < frame.centre[0] < 640 and 0 < frame.centre[1] < 480 and 120 * 0.85 <= frame.face_px <= 200 * 1.15
    found = [
        any(bench.matches(box, frame) for box in cascade.detectMultiScale(cv2.cvtColor(frame.image, cv2.COLOR_BGR2GRAY), 1.1, 5, minSize=(60, 60)))
        for frame in astronaut_frames
    ]
    assert sum(found) >= len(found) - 1


def test_frames_move_and_are_reproducible(bench, astronaut_frames):
    again = bench.camera_frames(bench.sample_subjects(None, 1, np.random.default_rng(0))[0], 6, 3, seed=1)
    assert all(np.array_equal(a.image, b.image) for a, b in zip(astronaut_frames, again))
    assert not np.array_equal(astronaut_frames[0].image, astronaut_frames[1].image)
    assert len({round(f.centre[0], 3) for f in astronaut_frames}) == len(astronaut_frames)


def test_subjects_without_a_dataset_say_what_is_missing(bench):
    subjects, notes = bench.sample_subjects(None, 3, np.random.default_rng(0))
    assert [s.name for s in subjects] == ["astronaut", "lfw", "lfw"]
    assert any("FERPlus" in note for note in notes)


def test_matches_wants_the_same_place_and_size(bench, astronaut_frames):
    frame = astronaut_frames[0]
    x, y, w = frame.centre[0] - frame.face_px / 2, frame.centre[1] - frame.face_px / 2, frame.face_px
    assert bench.matches((x, y, w, w), frame)
    assert not bench.matches((x + w, y, w, w), frame)
    assert not bench.matches((x + w / 3, y + w / 3, w / 3, w / 3), frame)


def test_peer_crops_square_widen_and_scale_like_fer(bench):
    gray = (np.arange(120 * 100) % 251).astype(np.uint8).reshape(100, 120)
    kept, batch = bench.peer_crops(gray, [(30, 20, 20, 30)])
    # taller than wide: x -= 5, w = 30; 10 px more per side: rows 10..60, columns 15..65
    expected = cv2.resize(gray[10:60, 15:65], (64, 64)).astype(np.float32) / 255.0 * 2.0 - 1.0
    assert kept == [(30, 20, 20, 30)] and batch.shape == (1, 64, 64, 1)
    np.testing.assert_allclose(batch[0, :, :, 0], expected, atol=1e-5)


def test_peer_crops_pad_with_the_bottom_rows_mean_and_skip_empty_cuts(bench):
    gray = np.zeros((100, 120), np.uint8)
    gray[-2:] = 200
    kept, batch = bench.peer_crops(gray, [(0, 0, 20, 20), (1000, 1000, 20, 20)])
    assert kept == [(0, 0, 20, 20)]
    assert batch[0, 0, 0, 0] == pytest.approx(200 / 255 * 2 - 1, abs=1e-3)  # the pad
    assert batch[0, 63, 63, 0] == pytest.approx(-1.0)  # the frame's black inside


def test_peer_input_is_64px_in_minus_one_to_one(bench):
    assert bench.peer_input(np.full((48, 48), 255, np.uint8)).shape == (1, 64, 64, 1)
    assert bench.peer_input(np.full((48, 48), 255, np.uint8)).min() == pytest.approx(1.0)
    assert bench.peer_input(np.zeros((48, 48), np.uint8)).max() == pytest.approx(-1.0)


def test_peer_classes_map_onto_ours_without_contempt(bench):
    from edgemood.classes import CLASSES

    mapped = [bench.PEER_TO_EDGEMOOD[c] for c in bench.PEER_CLASSES]
    assert len(set(mapped)) == 7 and set(mapped) == set(CLASSES) - {"contempt"}


def test_percentiles_are_in_milliseconds(bench):
    assert bench.percentiles_ms([0.001] * 5) == pytest.approx((1.0, 1.0))
    median, p95 = bench.percentiles_ms([i / 1000 for i in range(1, 101)])
    assert median == pytest.approx(50.5) and p95 == pytest.approx(95.05)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")
def test_process_readings_from_proc(bench):
    times = os.times()
    assert process_cpu_seconds(os.getpid()) == pytest.approx(times.user + times.system, abs=0.05)
    assert process_status_kib(os.getpid(), "VmHWM") > 10_000
    assert process_status_kib(os.getpid(), "NoSuchField") is None
    assert process_cpu_seconds(2**22 + 1) is None  # above Linux's pid_max: no such process


def test_goals_are_checked_against_their_thresholds(bench):
    assert bench.check("speedup", 10.0).endswith("met")
    assert bench.check("speedup", 9.9).endswith("MISSED")
    assert bench.check("cpu_1hz", 1.0).endswith("met")
    assert bench.check("cpu_1hz", 1.01).endswith("MISSED")
    assert bench.check("p95_ms", 15.2).endswith("MISSED")
    assert "not measured" in bench.check("median_ms", None)


def runs_of(bench, *seconds: float) -> list:
    """One Run per repeat, four frames each, every stage taking ``seconds``."""
    out = []
    for value in seconds:
        r = bench.Run()
        r.seconds = {stage: [value] * 4 for stage in bench.STAGES}
        out.append(r)
    return out


def test_render_reports_the_median_ratio_over_repeats_on_the_last_line(bench):
    runs = {"edgemood": runs_of(bench, 0.001, 0.002, 0.0025), "peer": runs_of(bench, 0.02, 0.02, 0.02)}
    lines = bench.render(bench.Measurements(4, runs, loads=[0.5, 0.7, 0.6]))
    assert lines[-1] == "pipeline speed-up vs peer: 10.0x"  # repeats: 20x, 10x, 8x
    assert any(line.startswith("| frames per second, one thread | 500.0 | 50.0 |") and "met" in line for line in lines)
    assert "| speed-up vs peer | 8.00x | 10.00x | 20.00x |" in lines
    assert "| load average (1 min) after each repeat | 0.50 / 0.70 / 0.60 | | |" in lines
    alone = bench.render(bench.Measurements(4, {"edgemood": runs_of(bench, 0.002)}))
    assert LAST_LINE.match(alone[-1]) and "n/a" in alone[-1]


def test_render_checks_the_latency_goals_and_the_models_share(bench):
    runs = {"edgemood": runs_of(bench, 0.004), "peer": runs_of(bench, 0.1)}
    runs["edgemood"][0].seconds["pipeline"] = [0.004, 0.004, 0.004, 0.020]
    runs["edgemood"][0].seconds["classify"] = [0.001] * 4
    lines = bench.render(bench.Measurements(4, runs))
    (pipeline,) = [line for line in lines if line.startswith("| whole pipeline")]
    assert "median <= 5 ms: met" in pipeline and "p95 <= 15 ms: MISSED" in pipeline
    assert any("without the classify stage (the model's share, 1.00 ms): 3.00 ms" in line for line in lines)


def test_bench_runs_end_to_end_on_a_few_frames(tmp_path, bench):  # bench: scikit-image is there
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--frames", "5", "--no-cpu", "--no-fer-package", "--cold-runs", "1", "--data", str(tmp_path)],
        capture_output=True, text=True, timeout=240,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.strip().splitlines()
    assert LAST_LINE.match(lines[-1]), lines[-1]
    assert any(line.startswith("| whole pipeline, median / p95 (ms) |") for line in lines)
    assert any("load average" in line for line in lines)
    assert any("accuracy not measured" in line for line in lines)
    assert "Traceback" not in result.stderr


def test_bad_arguments_are_one_line_errors(tmp_path):
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--model", str(tmp_path / "missing.tflite")], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2 and "does not exist" in result.stderr and "Traceback" not in result.stderr


def test_a_fer_package_that_does_not_import_is_a_note_not_a_crash(bench, monkeypatch):
    def broken() -> None:
        raise ModuleNotFoundError("No module named 'pkg_resources'")

    monkeypatch.setattr(bench, "fer_package_available", lambda: None)
    monkeypatch.setattr(bench, "FerPackage", broken)
    monkeypatch.setattr(bench, "EdgemoodPipeline", lambda *args, **kwargs: object())
    args = bench.parse_args(["--no-cpu"])
    notes: list[str] = []
    pipelines = bench.build_pipelines(args, None, notes)
    assert "fer package" not in pipelines
    assert any("fer.fer does not import" in note and "pkg_resources" in note for note in notes)
