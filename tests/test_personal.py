"""Personal head: fitting, blending and choosing on synthetic features; storage and rollback."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from personal_helpers import MODEL, WHEN, E, synthetic_head

from edgemood.classes import CLASSES
from edgemood.errors import EdgemoodError
from edgemood.mood.active import ActiveHead, load_active_head
from edgemood.mood.fit import (
    BLEND_WEIGHTS,
    L2,
    MIN_FACES_PER_MOOD,
    Enrollment,
    NotEnoughFaces,
    choose_blend,
    fit_personal,
    fit_softmax,
    split_heldout,
)
from edgemood.mood.head import ModelIdentity, PersonalHead, PersonalHeadError, Softmax, blend
from edgemood.mood.store import HeadStore, default_state_dir


def clusters(classes: int, per_class: int, spread: float, seed: int, noise_seed: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian clusters in E dimensions, one per class, samples grouped by class.

    ``seed`` places the centres, ``noise_seed`` (default: ``seed``) draws the samples.
    """
    centres = np.random.default_rng(seed).normal(0, 1, (classes, E))
    noise = np.random.default_rng(seed if noise_seed is None else noise_seed + 1000).normal(0, spread, (classes * per_class, E))
    labels = np.repeat(np.arange(classes), per_class)
    return centres[labels] + noise, labels


def one_hot(indices: np.ndarray, confidence: float = 0.9) -> np.ndarray:
    """Base-model probabilities that put ``confidence`` on the given classes."""
    probabilities = np.full((len(indices), len(CLASSES)), (1 - confidence) / (len(CLASSES) - 1))
    probabilities[np.arange(len(indices)), indices] = confidence
    return probabilities


# -- the classifier ------------------------------------------------------------------


def test_fit_softmax_reaches_the_regularised_optimum():
    x, y = clusters(4, 30, spread=2.0, seed=1)
    head = fit_softmax(x, y, 4)
    z = (x - head.mean) / head.scale
    residual = head.probabilities(x) - np.eye(4)[y]
    gradient_w = z.T @ residual / len(y) + L2 * head.weights
    gradient_b = residual.mean(axis=0)
    start = np.abs(z.T @ (np.full((len(y), 4), 0.25) - np.eye(4)[y]) / len(y)).max()
    assert np.abs(gradient_w).max() < 1e-3 * start
    assert np.abs(gradient_b).max() < 1e-3


def test_fit_softmax_generalises_to_new_samples_of_the_clusters():
    x, y = clusters(8, 20, spread=1.0, seed=2)
    head = fit_softmax(x, y, 8)
    x_new, y_new = clusters(8, 20, spread=1.0, seed=2, noise_seed=3)  # same centres, fresh noise
    assert np.mean(np.argmax(head.probabilities(x_new), axis=1) == y_new) >= 0.9


def test_fit_softmax_rejects_mismatched_input():
    with pytest.raises(ValueError):
        fit_softmax(np.zeros((3, E)), np.zeros(4, int), 2)


# -- blending ------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    base=st.lists(st.floats(0, 1), min_size=8, max_size=8).filter(lambda p: sum(p) > 0.01),
    enrolled=st.sets(st.integers(0, 7), min_size=2),
    weight=st.sampled_from(BLEND_WEIGHTS),
    seed=st.integers(0, 2**16),
)
def test_blend_only_moves_mass_among_enrolled_classes(base, enrolled, weight, seed):
    base = np.array(base)
    index = sorted(enrolled)
    head = np.random.default_rng(seed).dirichlet(np.ones(len(index)))
    out = blend(base, head, index, weight)
    reference = np.maximum(base, 1e-6) / np.maximum(base, 1e-6).sum()
    others = [c for c in range(8) if c not in enrolled]
    assert np.all(out >= 0) and out.sum() == pytest.approx(1.0)
    assert np.allclose(out[others], reference[others])
    assert out[index].sum() == pytest.approx(reference[index].sum())


def test_blend_at_full_weight_follows_the_head_and_in_between_both():
    base = np.array([0.02, 0.02, 0.02, 0.02, 0.7, 0.2, 0.01, 0.01])
    enrolled = [4, 5]  # happy, neutral
    head = np.array([0.1, 0.9])
    full = blend(base, head, enrolled, 1.0)
    assert full[5] / full[4] == pytest.approx(9.0)
    half = blend(base, head, enrolled, 0.5)
    assert half[5] / half[4] == pytest.approx(np.sqrt(9.0 * 0.2 / 0.7))


def test_blend_survives_zero_probabilities_and_batches():
    base = np.zeros((2, 8))
    base[:, 0] = 1.0  # what an int8 softmax may return
    out = blend(base, np.array([[1.0, 0.0], [0.5, 0.5]]), [4, 5], 1.0)
    assert np.all(np.isfinite(out)) and np.allclose(out.sum(axis=1), 1.0)


# -- choosing and keeping ------------------------------------------------------------


def test_heldout_is_the_last_quarter_of_each_mood_and_at_least_one():
    labels = [0] * 8 + [1] * 4 + [0] * 4 + [2] * 2
    train, heldout = split_heldout(labels)
    assert list(heldout) == [11, 13, 14, 15, 17]  # class 0: 3 of 12, class 1: 1 of 4, class 2: 1 of 2
    assert sorted(set(train) | set(heldout)) == list(range(len(labels))) and not set(train) & set(heldout)


def test_blend_weight_follows_whichever_source_knows_more():
    x, y = clusters(3, 18, spread=0.5, seed=3)
    enrolled = [4, 5, 6]
    uninformative = np.full((len(y), 8), 1 / 8)
    assert choose_blend(x, uninformative, y, enrolled) == max(BLEND_WEIGHTS)
    noise = np.random.default_rng(4).normal(0, 1, x.shape)
    correct = one_hot(np.asarray(enrolled)[y], 0.95)
    assert choose_blend(noise, correct, y, enrolled) == min(BLEND_WEIGHTS)


def enrollment(moods: tuple[str, ...], per_mood: int, base: str, seed: int = 5, spread: float = 0.7) -> Enrollment:
    """Features that separate the moods, and base probabilities that are right ("right")
    or confidently take each mood for the next enrolled one ("wrong")."""
    x, y = clusters(len(moods), per_mood, spread, seed)
    index = np.array([CLASSES.index(m) for m in moods])
    guess = index[y] if base == "right" else index[(y + 1) % len(moods)]
    return Enrollment(x, one_hot(guess), tuple(moods[i] for i in y))


def test_a_head_that_fixes_a_misreading_base_model_is_better():
    report = fit_personal(enrollment(("anger", "happy", "sad"), 12, "wrong"), MODEL, WHEN)
    assert report.base_accuracy == 0.0 and report.personal_accuracy >= 0.9 and report.better
    assert report.per_mood["happy"] == {"train": 9, "heldout": 3, "base_correct": 0, "personal_correct": 3}
    assert report.head.classes == ("anger", "happy", "sad") and report.head.created == WHEN
    assert report.head.metrics["personal_accuracy"] == report.personal_accuracy


def test_a_head_cannot_beat_a_base_model_that_is_always_right():
    report = fit_personal(enrollment(("happy", "neutral"), 12, "right", spread=5.0), MODEL, WHEN)
    assert report.base_accuracy == 1.0 and not report.better


def test_moods_with_too_few_faces_are_left_out_and_two_are_needed():
    data = enrollment(("fear", "happy", "sad"), 8, "wrong")
    few = np.array([m != "fear" for m in data.moods]) | (np.cumsum([m == "fear" for m in data.moods]) < MIN_FACES_PER_MOOD)
    trimmed = Enrollment(data.embeddings[few], data.probabilities[few], tuple(np.array(data.moods)[few]))
    report = fit_personal(trimmed, MODEL, WHEN)
    assert report.dropped == {"fear": MIN_FACES_PER_MOOD - 1} and report.head.classes == ("happy", "sad")
    only_one = Enrollment(data.embeddings[:8], data.probabilities[:8], data.moods[:8])
    with pytest.raises(NotEnoughFaces, match="at least 2 moods"):
        fit_personal(only_one, MODEL, WHEN)


# -- the stored head -----------------------------------------------------------------


def test_head_round_trips_through_its_file_format():
    head = fit_personal(enrollment(("anger", "happy", "sad"), 12, "wrong"), MODEL, WHEN).head
    again = PersonalHead.from_bytes(head.to_bytes(), "test")
    x = np.random.default_rng(6).normal(0, 1, (5, E))
    base = np.random.default_rng(7).dirichlet(np.ones(8), 5)
    assert np.allclose(again.apply(base, x), head.apply(base, x))
    assert (again.classes, again.blend, again.model, again.created) == (head.classes, head.blend, head.model, head.created)


def npz_bytes(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda data: data[: len(data) // 2], " is unreadable"),
        (lambda data: b"not a zip file", " is unreadable"),
        (lambda data: npz_bytes(weights=np.zeros((E, 8))), ": not an edgemood-personal/1 file"),  # no header
        (lambda data: npz_bytes(meta=np.array('{"format": "edgemood-personal/1"}')), " is unreadable"),  # no arrays
        (lambda data: npz_bytes(meta=np.array('{"format": "other/1"}')), ": not an edgemood-personal/1 file"),
    ],
)
def test_damaged_head_files_are_refused_with_their_name(damage, message):
    with pytest.raises(PersonalHeadError, match=f"head /x/head.npz{message}"):
        PersonalHead.from_bytes(damage(synthetic_head().to_bytes()), "/x/head.npz")


def test_inconsistent_head_is_refused():
    head = synthetic_head()
    broken = PersonalHead(
        Softmax(head.classifier.weights[:, :3], head.classifier.bias, head.classifier.mean, head.classifier.scale),
        head.classes, 1.5, head.model, head.created,
    )
    with pytest.raises(PersonalHeadError, match="shapes .*blend 1.5"):
        PersonalHead.from_bytes(broken.to_bytes(), "h")


def test_head_fitted_on_another_model_is_refused():
    other = ModelIdentity("model.tflite", "cd" * 32, E)
    with pytest.raises(PersonalHeadError, match="fitted on model model.tflite .*enroll"):
        synthetic_head().check_model(other)
    synthetic_head().check_model(MODEL)


# -- versions, rollback, the state directory ----------------------------------------


def test_store_keeps_versions_and_rolls_back(tmp_path):
    store = HeadStore(tmp_path)
    assert store.current() is None and store.versions() == []
    first = store.save(synthetic_head(WHEN, favourite="happy"))
    second = store.save(synthetic_head(WHEN + timedelta(days=1), favourite="sad"))
    same_second = store.save(synthetic_head(WHEN + timedelta(days=1), favourite="fear"))
    assert first.name == "head-20260301T120000Z.npz" and second.name == "head-20260302T120000Z.npz"
    assert same_second != second and store.current().created == WHEN + timedelta(days=1)
    assert [(p.name, current) for p, _, current in store.versions()] == [
        (first.name, False), (second.name, False), (same_second.name, True),
    ]
    restored, replaced = store.rollback()
    assert np.argmax(restored.classifier.bias) == CLASSES.index("sad") and np.argmax(replaced.classifier.bias) == CLASSES.index("fear")
    store.rollback()
    assert store.current().created == WHEN
    with pytest.raises(EdgemoodError, match="no earlier personal head"):
        store.rollback()
    assert len(store.versions()) == 3  # rolled-back files stay for --list


def test_broken_pointer_is_a_clear_error(tmp_path):
    store = HeadStore(tmp_path)
    store.save(synthetic_head())
    store.pointer.write_text('{"format": "edgemood-personal-pointer/1", "current": 3, "history": []}')
    with pytest.raises(PersonalHeadError, match="current.json is malformed"):
        store.current()
    store.pointer.write_text("{")
    with pytest.raises(PersonalHeadError, match="current.json is unreadable"):
        store.current()


def test_state_dir_prefers_systemd_then_system_then_user(tmp_path):
    system = tmp_path / "var-lib-edgemood"
    assert default_state_dir({"STATE_DIRECTORY": "/srv/a:/srv/b"}, system) == Path("/srv/a")
    assert default_state_dir({}, system) == system  # tmp_path is writable, the folder will be created
    unwritable = tmp_path / "missing" / "edgemood"  # neither it nor its parent exists
    assert default_state_dir({"XDG_STATE_HOME": "/x/state"}, unwritable) == Path("/x/state/edgemood")
    assert default_state_dir({}, unwritable, home=Path("/home/pi")) == Path("/home/pi/.local/state/edgemood")


def test_active_head_says_what_it_uses_and_why(tmp_path):
    assert load_active_head(False, MODEL, tmp_path).note == "no personal head ([model] personal = false)"
    none = load_active_head(True, MODEL, tmp_path)
    assert none.head is None and "none enrolled" in none.note and not none.problem
    HeadStore(tmp_path).save(synthetic_head())
    active = load_active_head(True, MODEL, tmp_path)
    assert active.note.startswith("personal head from 2026-03-01 12:00:00 UTC in use")
    base = np.full(8, 1 / 8)
    assert CLASSES[int(np.argmax(active.apply(base, np.zeros(E))))] == "surprise"
    assert active.health()["active"] and active.health()["enrolled"] == "2026-03-01T12:00:00Z"
    foreign = load_active_head(True, ModelIdentity("new.tflite", "ef" * 32, E), tmp_path)
    assert foreign.head is None and foreign.problem and "fitted on model" in foreign.note
    assert ActiveHead(None, "n").apply(base, np.zeros(E)) is base


def test_saving_a_head_flushes_the_file_and_its_folder_before_returning(tmp_path, monkeypatch):
    """A Pi loses power at the plug: the head and the rename must be on the card, not in a cache."""
    import os
    import stat

    synced: list[str] = []
    real_fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        mode = os.fstat(fd).st_mode
        synced.append("folder" if stat.S_ISDIR(mode) else "file")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", recording_fsync)
    HeadStore(tmp_path).save(synthetic_head(WHEN, favourite="happy"))
    # the head, then the pointer: each file flushed before its rename, each rename flushed in its folder
    assert synced == ["file", "folder", "file", "folder"]
