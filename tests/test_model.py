"""The model file, its sidecar, the runtime loader and the training round trip."""

from __future__ import annotations

import json
import shutil
import sys
import types
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgemood.classes import CLASSES
from edgemood.errors import ModelError
from edgemood.inference.interpreter import find_runtime
from edgemood.inference.model import DEFAULT_MODEL, MoodModel
from edgemood.inference.sidecar import load_sidecar, sidecar_path


@pytest.fixture()
def model_copy(tmp_path: Path) -> Path:
    target = tmp_path / "m.tflite"
    shutil.copy(DEFAULT_MODEL, target)
    shutil.copy(sidecar_path(DEFAULT_MODEL), sidecar_path(target))
    return target


def test_runtime_prefers_the_first_importable(monkeypatch):
    fake = types.ModuleType("fake_runtime")
    fake.Interpreter = object
    monkeypatch.setitem(sys.modules, "fake_runtime", fake)
    runtime = find_runtime((("missing_runtime_xyz", "Interpreter", "missing"), ("fake_runtime", "Interpreter", "fake")))
    assert runtime.module == "fake_runtime" and runtime.interpreter_class is object


def test_no_runtime_says_what_to_install():
    with pytest.raises(ModelError, match="pip install ai-edge-litert"):
        find_runtime((("missing_runtime_xyz", "Interpreter", "missing"),))


def test_shipped_model_is_full_int8_and_small():
    model = MoodModel()
    details = model._interpreter.get_tensor_details()
    assert model._input["dtype"] == np.int8
    assert all(model._outputs[name]["dtype"] == np.int8 for name in ("probabilities", "embedding"))
    float_tensors = [d["name"] for d in details if d["dtype"] == np.float32]
    assert float_tensors == []
    assert DEFAULT_MODEL.stat().st_size <= 1_500_000
    assert model.sidecar.classes == CLASSES


def test_input_quantisation_maps_pixels_exactly():
    model = MoodModel()
    ramp = np.tile(np.arange(48 * 48) % 256, 1).reshape(48, 48).astype(np.uint8)
    q = model.quantize_input(ramp)[0, :, :, 0].astype(int)
    assert (q - ramp.astype(int)).tolist() == np.full((48, 48), -128).tolist()


def test_probabilities_round_trip_to_a_distribution():
    model = MoodModel()
    rng = np.random.default_rng(1)
    for size in (48, 100, 20):  # other crop sizes are resized
        prediction = model.predict(rng.integers(0, 256, (size, size), dtype=np.uint8))
        assert prediction.probabilities.shape == (len(CLASSES),)
        assert prediction.probabilities.min() >= 0
        assert prediction.probabilities.sum() == pytest.approx(1.0, abs=1e-5)


def test_missing_model_file(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        MoodModel(tmp_path / "nope.tflite")


def test_corrupt_model_file(model_copy):
    model_copy.write_bytes(b"this is not a flatbuffer" * 10)
    with pytest.raises(ModelError, match="could not be loaded"):
        MoodModel(model_copy)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d.pop("format"), "format"),
        (lambda d: d.update(classes=list(reversed(CLASSES))), "classes"),
        (lambda d: d.update(input_size=64), "input shape"),
        (lambda d: d.update(input_size="48"), "input_size"),
        (lambda d: d.update(crop={"scale": 9}), "crop"),
        (lambda d: d.update(crop={"zoom": 1}), "crop"),
        (lambda d: d.update(outputs={"probabilities": 0}), "outputs"),
        (lambda d: d.update(embedding_size=3), "embedding"),
        (lambda d: d.update(outputs={"probabilities": d["outputs"]["embedding"], "embedding": d["outputs"]["probabilities"]}), "output"),
    ],
)
def test_bad_sidecar(model_copy, edit, message):
    path = sidecar_path(model_copy)
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    with pytest.raises(ModelError, match=message):
        MoodModel(model_copy)


@pytest.mark.parametrize("content", ["", "{not json", "[]", "\xff"])
def test_unreadable_sidecar(model_copy, content):
    sidecar_path(model_copy).write_bytes(content.encode("latin-1"))
    with pytest.raises(ModelError, match="sidecar"):
        load_sidecar(sidecar_path(model_copy))


def test_missing_sidecar(model_copy):
    sidecar_path(model_copy).unlink()
    with pytest.raises(ModelError, match="missing"):
        MoodModel(model_copy)


@pytest.mark.parametrize(
    "options, message",
    [(["--teacher-weight", "2"], "--teacher-weight"), (["--teacher", "nowhere.tflite"], "nowhere.tflite"), (["--threads", "0"], "--threads")],
)
def test_train_options_are_checked(tmp_path, capsys, options, message):
    from edgemood.cli import main

    assert main(["train", "--data", str(tmp_path), "--out", str(tmp_path / "run"), *options]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err


@pytest.mark.train
def test_train_export_round_trip(tmp_path):
    """Smoke test: a few generated images train, export to int8 and load."""
    pytest.importorskip("tensorflow")
    from edgemood.cli import main

    rng = np.random.default_rng(0)
    for split in ("train", "publictest"):
        for index, name in enumerate(CLASSES):
            folder = tmp_path / "data" / split / name
            folder.mkdir(parents=True)
            for i in range(6):
                image = rng.integers(0, 60, (48, 48), dtype=np.uint8)
                cv2.circle(image, (24, 24), 4 + 2 * index, 255, -1)  # class = circle size
                cv2.imwrite(str(folder / f"{i}.png"), image)
    run = tmp_path / "run"
    teacher = str(DEFAULT_MODEL)
    assert main(["train", "--data", str(tmp_path / "data"), "--out", str(run), "--epochs", "1", "--batch", "16", "--width", "8",
                 "--teacher", teacher, "--teacher-weight", "0.3", "--threads", "1", "--augment", "camera"]) == 0
    assert np.load(run / "teacher.npy").shape == (48, len(CLASSES))
    # a resumed run keeps its recipe (teacher, augmentation) and goes on from the last epoch
    assert main(["train", "--data", str(tmp_path / "data"), "--out", str(run), "--resume", "--anneal-epochs", "1"]) == 0
    recipe = json.loads((run / "recipe.json").read_text())
    assert recipe["teacher"] == teacher and recipe["teacher_weight"] == 0.3 and recipe["augment"]["box_scale"] == [0.75, 1.3]
    log = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2]
    out = tmp_path / "exported.tflite"
    assert main(["export", str(run / "best.keras"), "--data", str(tmp_path / "data"), "--out", str(out), "--tau", "1"]) == 0
    model = MoodModel(out)
    assert model.sidecar.metrics["int8_accuracy"] >= 0
    adjustment = model.sidecar.training["logit_adjustment"]
    assert adjustment["tau"] == 1 and len(adjustment["log_prior"]) == len(CLASSES) and len(adjustment["curve"]) == 21
    assert model.predict(np.zeros((48, 48), np.uint8)).probabilities.sum() == pytest.approx(1, abs=1e-3)


@pytest.mark.train
def test_shifting_the_int8_logits_moves_faces_to_the_favoured_class(tmp_path):
    pytest.importorskip("tensorflow")
    from edgemood.training.export import shift_int8_logits

    faces = np.random.default_rng(0).integers(0, 255, (6, 48, 48), dtype=np.uint8)
    shipped = MoodModel()
    for favoured, size in (("contempt", 30.0), (None, 0.0)):
        shift = np.zeros(len(CLASSES))
        if favoured:
            shift[CLASSES.index(favoured)] = size
        out = tmp_path / f"{favoured}.tflite"
        out.write_bytes(shift_int8_logits(DEFAULT_MODEL.read_bytes(), shift))
        shutil.copy(sidecar_path(DEFAULT_MODEL), sidecar_path(out))
        shifted = MoodModel(out)
        for face in faces:
            got = shifted.predict(face).probabilities
            if favoured:
                assert CLASSES[int(np.argmax(got))] == favoured
            else:
                assert np.array_equal(got, shipped.predict(face).probabilities)


def test_an_adjusted_model_is_not_adjusted_twice(tmp_path, capsys):
    from edgemood.cli import main

    assert MoodModel().sidecar.training["logit_adjustment"]["tau"] > 0  # the shipped file is adjusted
    assert main(["export", str(DEFAULT_MODEL), "--data", str(tmp_path), "--out", str(tmp_path / "x.tflite")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "already logit-adjusted" in err
