"""The training pieces that decide model v2, tested directly (no TensorFlow).

Camera transforms, the augmentation drawn from them, distillation targets,
the logit adjustment and the robustness table are pure functions of arrays.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgemood.classes import CLASSES
from edgemood.inference.model import MoodModel
from edgemood.inference.sidecar import CropGeometry
from edgemood.training import balance, camera
from edgemood.training.augment import AugmentSettings, augment
from edgemood.training.distill import mix_targets
from edgemood.training.robustness import conditions, markdown, robustness

GEOMETRY = CropGeometry(scale=0.98, shift_y=0.0, align_eyes=True)


def _face(size: int = 48) -> np.ndarray:
    """A grey gradient with a bright square in the middle: enough structure to see framing change."""
    image = np.tile(np.linspace(60, 180, size, dtype=np.float32), (size, 1)).astype(np.uint8)
    image[size // 2 - 4 : size // 2 + 4, size // 2 - 4 : size // 2 + 4] = 250
    return image


def test_reframe_at_the_nominal_box_keeps_the_image() -> None:
    image = _face()
    assert np.abs(camera.reframe(image, GEOMETRY, 1.0).astype(int) - image).max() <= 2


def test_tighter_framing_enlarges_the_face_and_looser_shrinks_it() -> None:
    image = _face()
    bright = {scale: int((camera.reframe(image, GEOMETRY, scale) > 240).sum()) for scale in (0.75, 1.0, 1.3)}
    assert bright[0.75] > bright[1.0] > bright[1.3]


def test_low_light_darkens_and_keeps_the_type() -> None:
    image = _face()
    rng = np.random.default_rng(0)
    for out in (camera.gamma(image, 2.0), camera.dim(image, 0.35, rng, 6.0), camera.shadow(image, 0.6, 0.0)):
        assert out.dtype == np.uint8 and out.shape == image.shape
        assert out.astype(float).mean() < image.astype(float).mean() - 10


def test_noise_and_blur_change_the_image_only_when_asked() -> None:
    image, rng = _face(), np.random.default_rng(0)
    assert camera.noise(image, 0.0, rng) is image and camera.blur(image, 0.0) is image
    assert camera.noise(image, 12.0, rng).astype(float).std() != pytest.approx(image.astype(float).std(), abs=0.5)
    assert np.abs(np.diff(camera.blur(image, 1.2).astype(float), axis=1)).max() < np.abs(np.diff(image.astype(float), axis=1)).max()


def test_glasses_sit_on_the_eye_row_and_cover_leaves_the_top_alone() -> None:
    image = np.full((48, 48), 200, np.uint8)
    with_glasses = camera.glasses(image, tint=0.7)
    eye_row = int(camera.EYE_Y * 48)
    assert with_glasses[eye_row].mean() < 150 and (with_glasses[:8] == 200).all() and (with_glasses[-8:] == 200).all()
    covered = camera.cover(image, *camera.MOUTH_BAND, 0.0, 1.0, 10)
    assert (covered[:28] == 200).all() and (covered[int(0.7 * 48)] == 10).all()


def test_augmentation_is_seeded_and_varies_every_crop() -> None:
    images = np.stack([_face()] * 16)
    first = augment(images, np.random.default_rng(1), GEOMETRY)
    again = augment(images, np.random.default_rng(1), GEOMETRY)
    assert first.dtype == np.uint8 and first.shape == images.shape
    assert np.array_equal(first, again)
    assert len({crop.tobytes() for crop in first}) == 16


def test_augmentation_off_is_the_identity() -> None:
    off = AugmentSettings(box_scale=(1.0, 1.0), box_shift=0.0, roll_deg=0.0, flip=False, contrast=(1.0, 1.0), brightness=0.0,
                          p_gamma=0, p_shadow=0, p_blur=0, p_noise=0, p_glasses=0, p_cover_mouth=0)
    image = _face()
    out = augment(image[None], np.random.default_rng(0), GEOMETRY, off)[0]
    assert np.abs(out.astype(int) - image).max() <= 2


def test_teacher_targets_mix_and_stay_distributions() -> None:
    votes = np.array([[1.0, 0, 0], [0, 0.5, 0.5]], np.float32)
    teacher = np.array([[0.5, 0.5, 0], [0, 0, 1.0]], np.float32)
    mixed = mix_targets(votes, teacher, 0.5)
    assert np.allclose(mixed.sum(1), 1) and np.allclose(mixed[0], [0.75, 0.25, 0])
    assert np.array_equal(mix_targets(votes, teacher, 0.0), votes)
    with pytest.raises(ValueError, match="outside"):
        mix_targets(votes, teacher, 1.5)


def test_logit_adjustment_moves_the_rare_class_and_the_ceiling_holds() -> None:
    # a rare class 2 that the plain model under-calls: its score is just under the common class's
    labels = np.array([0] * 80 + [1] * 16 + [2] * 4)
    probs = np.full((100, 3), 0.05)
    probs[np.arange(100), labels] = 0.9
    probs[96:, 0], probs[96:, 2] = 0.5, 0.45  # the four rare faces lean common
    prior = balance.log_prior(np.array([0] * 90 + [1] * 9 + [2] * 1), 3)
    points = balance.curve([probs], labels, prior)
    assert points[0].tau == 0 and points[0].recall[2] == 0
    best = balance.choose(points, max_accuracy_cost=0.0)
    assert best.tau > 0 and best.recall[2] == 1 and best.accuracy >= points[0].accuracy
    # past the point where the rare class is won, stronger tau costs accuracy that no ceiling of 0 allows
    assert min(p.accuracy for p in points) < points[0].accuracy


def test_adjusted_is_the_plain_average_at_zero_shift() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.dirichlet(np.ones(8), 5), rng.dirichlet(np.ones(8), 5)
    assert np.allclose(balance.adjusted([a, b], np.zeros(8)), (a + b) / 2)


def test_log_prior_of_a_missing_class_is_finite() -> None:
    prior = balance.log_prior(np.array([0, 0, 1]), 3)
    assert np.isfinite(prior).all() and prior[0] > prior[1] >= prior[2]


def test_robustness_table_scores_the_shipped_model_under_each_condition() -> None:
    model = MoodModel()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 255, (8, 48, 48), dtype=np.uint8)
    labels = np.arange(8) % len(CLASSES)
    rows = robustness(model, images, labels)
    assert [name for name, _ in rows] == [c.name for c in conditions(model.sidecar.crop)]
    assert all(report.total == 8 for _, report in rows)
    table = markdown(rows)
    assert table.count("\n") == len(rows) + 1 and "| as given |" in table
    assert json.dumps({name: report.as_dict() for name, report in rows})
