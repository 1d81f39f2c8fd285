"""Vision core on real photographs: the ones edgemood ships, and LFW faces where scikit-image is installed."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from needs import missing

from edgemood.demo.photos import ASTRONAUT
from edgemood.inference.model import MoodModel
from edgemood.inference.sidecar import CropGeometry
from edgemood.vision.align import EyeAligner
from edgemood.vision.analyze import FaceAnalyzer
from edgemood.vision.crop import Box, crop_face, full_frame_box
from edgemood.vision.detect import DetectorSettings, FaceDetector
from edgemood.vision.frame import FrameError, read_image, to_gray

#: The astronaut's face, marked by hand on the 512x512 photo (x, y, w, h).
ASTRONAUT_FACE = Box(175.0, 60.0, 100.0, 105.0)


def iou(a: Box, b: Box) -> float:
    x0, y0 = max(a.x, b.x), max(a.y, b.y)
    x1, y1 = min(a.x + a.w, b.x + b.w), min(a.y + a.h, b.y + b.h)
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    return inter / (a.w * a.h + b.w * b.h - inter)


@pytest.fixture(scope="module")
def astronaut_bgr() -> np.ndarray:
    return cv2.cvtColor(ASTRONAUT.load(), cv2.COLOR_GRAY2BGR)


@pytest.fixture(scope="module")
def model() -> MoodModel:
    return MoodModel()


def test_astronaut_face_is_found_where_it_is(astronaut_bgr):
    boxes = FaceDetector(DetectorSettings(detect_width=640)).detect(to_gray(astronaut_bgr), track=False)
    assert len(boxes) == 1
    assert iou(boxes[0], ASTRONAUT_FACE) > 0.6


def test_boxes_scale_back_from_the_downscaled_search(astronaut_bgr):
    gray = to_gray(astronaut_bgr)
    large = cv2.resize(gray, None, fx=2, fy=2)
    (box,) = FaceDetector(DetectorSettings(detect_width=320)).detect(large, track=False)
    assert iou(box.scaled(0.5), ASTRONAUT_FACE) > 0.55


def test_lfw_faces_found_and_non_faces_rejected():
    try:
        from skimage import data
    except ImportError:
        missing("LFW faces come with scikit-image: pip install -e '.[bench]'")
    images = (data.lfw_subset() * 255).astype(np.uint8)  # 100 faces, then 100 non-faces
    detector = FaceDetector(DetectorSettings(detect_width=640))
    found = []
    for image in images:
        framed = cv2.resize(cv2.copyMakeBorder(image, 6, 6, 6, 6, cv2.BORDER_REPLICATE), None, fx=4, fy=4, interpolation=cv2.INTER_CUBIC)
        found.append(bool(detector.detect(framed, track=False)))
    assert np.mean(found[:100]) >= 0.85
    assert np.mean(found[100:]) <= 0.05


def test_tracking_finds_the_same_face_near_the_last_one(astronaut_bgr):
    gray = to_gray(astronaut_bgr)
    detector = FaceDetector(DetectorSettings(detect_width=640))
    first = detector.detect(gray)
    shifted = np.roll(gray, (6, 9), axis=(0, 1))
    second = detector.detect(shifted)
    assert len(first) == len(second) == 1
    assert abs(second[0].x - first[0].x - 9) < 8 and abs(second[0].y - first[0].y - 6) < 8


def test_eye_alignment_measures_a_tilt(astronaut_bgr):
    gray = to_gray(astronaut_bgr)
    aligner = EyeAligner()
    level = aligner.roll_degrees(gray, ASTRONAUT_FACE)
    centre = (ASTRONAUT_FACE.x + ASTRONAUT_FACE.w / 2, ASTRONAUT_FACE.y + ASTRONAUT_FACE.h / 2)
    tilted = cv2.warpAffine(gray, cv2.getRotationMatrix2D(centre, -12, 1.0), gray.shape[::-1])
    roll = aligner.roll_degrees(tilted, ASTRONAUT_FACE)
    assert level is not None and roll is not None
    # rotating the image by -12 degrees (clockwise) tilts the eyes by +12
    assert roll - level == pytest.approx(12, abs=4)


def test_crop_of_the_full_frame_box_reproduces_a_training_image():
    rng = np.random.default_rng(0)
    image = cv2.GaussianBlur(rng.integers(0, 256, (48, 48), dtype=np.uint8), (5, 5), 0)
    geometry = CropGeometry(scale=0.98, shift_y=0.0)
    crop = crop_face(image, full_frame_box(48, geometry), 0.0, geometry, 48)
    assert np.abs(crop.astype(int) - image.astype(int)).mean() < 2


def test_crop_follows_shift_and_scale():
    image = np.zeros((200, 200), np.uint8)
    image[90:110, 90:110] = 255  # a bright square centred at (100, 100)
    geometry = CropGeometry(scale=2.0, shift_y=0.25)
    crop = crop_face(image, Box(80, 55, 40, 40), 0.0, geometry, 40)  # centre (100, 75 + 10)
    ys, xs = np.nonzero(crop > 128)
    assert crop.shape == (40, 40)
    assert xs.mean() == pytest.approx(19.5, abs=1.0)
    assert ys.mean() == pytest.approx(19.5 + 15 / 2, abs=1.0)  # 15 px below, at half scale


@pytest.mark.parametrize(
    "frame, message",
    [
        (np.zeros((0, 0), np.uint8), "empty"),
        (np.zeros((10, 10), np.uint8), "outside"),
        (np.zeros((9000, 20), np.uint8), "outside"),
        (np.zeros((64, 64, 2), np.uint8), "shape"),
        (np.zeros((64, 64), np.complex64), "dtype"),
        (np.full((64, 64), np.nan, np.float32), "dtype"),
        ("not an image", "not an image array"),
        (None, "not an image array"),
    ],
)
def test_bad_frames_are_error_values(model, frame, message):
    analysis = FaceAnalyzer(model).analyze(frame)
    assert analysis.faces == [] and message in analysis.error


@pytest.mark.parametrize("layout", ["gray", "bgr", "bgra", "gray3d", "float", "uint16"])
def test_frame_layouts_are_accepted(astronaut_bgr, layout):
    gray = cv2.cvtColor(astronaut_bgr, cv2.COLOR_BGR2GRAY)
    frame = {
        "gray": gray,
        "bgr": astronaut_bgr,
        "bgra": cv2.cvtColor(astronaut_bgr, cv2.COLOR_BGR2BGRA),
        "gray3d": gray[:, :, None],
        "float": gray.astype(np.float32) / 255.0,
        "uint16": gray.astype(np.uint16) << 8,
    }[layout]
    assert np.abs(to_gray(frame).astype(int) - gray.astype(int)).max() <= 2


def test_huge_frame_is_processed(model, astronaut_bgr):
    huge = cv2.resize(astronaut_bgr, (4096, 4096))  # an 800 px face: above the daemon's max_face_px, not the library's
    analysis = FaceAnalyzer(model).analyze(huge)
    assert analysis.error is None and len(analysis.faces) == 1


def test_read_image_errors(tmp_path):
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(FrameError, match="not a readable image"):
        read_image(str(corrupt))
    with pytest.raises(FrameError, match="not a readable image"):
        read_image(str(empty))
    with pytest.raises(FrameError, match="No such file"):
        read_image(str(tmp_path / "missing.png"))


def test_astronaut_is_happy(model, astronaut_bgr):
    analysis = FaceAnalyzer(model).analyze(astronaut_bgr)
    (face,) = analysis.faces
    assert face.mood == "happy"
    assert face.probabilities.sum() == pytest.approx(1.0, abs=1e-3)
    assert face.embedding.shape == (model.sidecar.embedding_size,)


def test_policies_for_several_faces(model, astronaut_bgr):
    gray = to_gray(astronaut_bgr)
    two = np.hstack([gray, gray])
    results = {p: FaceAnalyzer(model, DetectorSettings(detect_width=1024), p).analyze(two) for p in ("largest", "skip", "all")}
    assert results["all"].seen == 2 and len(results["all"].faces) == 2
    assert len(results["largest"].faces) == 1
    assert results["skip"].faces == [] and results["skip"].seen == 2


def test_tracking_picks_up_a_larger_face_at_the_next_recheck(astronaut_bgr):
    gray = to_gray(astronaut_bgr)
    head = gray[20:330, 110:350]
    canvas = np.full((480, 640), 90, np.uint8)
    small = cv2.resize(head, None, fx=0.5, fy=0.5)
    canvas[20 : 20 + small.shape[0], 20 : 20 + small.shape[1]] = small
    settings = DetectorSettings(full_scan_every=4)
    detector = FaceDetector(settings)
    first = detector.detect(canvas)
    assert len(first) == 1 and first[0].x < 200
    big = cv2.resize(head, None, fx=1.2, fy=1.2)
    canvas[80 : 80 + big.shape[0], 330 : 330 + big.shape[1]] = big[:, : 640 - 330]
    widths = [detector.detect(canvas)[0].w for _ in range(settings.full_scan_every + 1)]
    assert widths[-1] > 1.5 * first[0].w  # the newcomer, not the tracked small face


def two_sizes(astronaut_bgr: np.ndarray) -> tuple[np.ndarray, float]:
    """A 640x480 frame with the astronaut's head twice, about 100 and 165 px wide; the small one's x."""
    head = to_gray(astronaut_bgr)[20:330, 110:350]
    canvas = np.full((480, 640), 90, np.uint8)
    canvas[40 : 40 + 310, 20 : 20 + 240] = head
    big = cv2.resize(head, None, fx=1.65, fy=1.65)[:470, :350]
    canvas[5 : 5 + big.shape[0], 290 : 290 + big.shape[1]] = big
    return canvas, 20.0


def test_full_scan_for_the_largest_face_ends_at_the_largest_octave(astronaut_bgr):
    canvas, small_x = two_sizes(astronaut_bgr)
    everyone = FaceDetector().detect(canvas, track=False)
    assert len(everyone) == 2 and everyone[1].x < small_x + 100 < everyone[0].x
    largest = FaceDetector().detect(canvas, track=True)
    assert len(largest) == 1 and largest[0] == pytest.approx(everyone[0], abs=2)


def test_face_sizes_outside_the_configured_range_are_not_looked_for(astronaut_bgr):
    canvas, small_x = two_sizes(astronaut_bgr)
    big_only = FaceDetector(DetectorSettings(min_face_px=130)).detect(canvas, track=False)
    assert len(big_only) == 1 and big_only[0].x > small_x + 100
    small_only = FaceDetector(DetectorSettings(max_face_px=130)).detect(canvas, track=False)
    assert len(small_only) == 1 and small_only[0].x < small_x + 100


def test_a_lost_track_is_found_again_by_the_full_scan(astronaut_bgr):
    gray = to_gray(astronaut_bgr)
    detector = FaceDetector(DetectorSettings(detect_width=640))
    (first,) = detector.detect(gray)
    moved = np.roll(gray, (0, 150), axis=(0, 1))  # further than the tracked search looks
    (again,) = detector.detect(moved)
    assert again.x == pytest.approx(first.x + 150, abs=10) and again.w == pytest.approx(first.w, rel=0.2)
