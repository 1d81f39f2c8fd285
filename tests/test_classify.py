"""``edgemood classify``: the table a person reads, the JSON a script reads, one line per unreadable file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgemood.classes import CLASSES
from edgemood.cli import main
from edgemood.demo.photos import ASTRONAUT, BRICK


def classify(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    code = main(["classify", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def test_table_names_every_class_in_full(capsys):
    code, out, err = classify(capsys, ASTRONAUT.path, BRICK.path)
    assert (code, err) == (0, "")
    header, astronaut, brick = out.splitlines()
    assert header.split()[-len(CLASSES):] == list(CLASSES)
    assert astronaut.startswith("astronaut.jpg") and astronaut.split()[2:4] == ["happy", "1.00"]
    assert brick.split() == ["brick.jpg", "no", "face"]
    # each probability sits right under its class name
    happy_end = header.index("happy") + len("happy")
    assert astronaut[happy_end - 4 : happy_end] == "1.00"


def test_a_missing_file_is_reported_once(capsys, tmp_path):
    missing = tmp_path / "missing.png"
    code, out, err = classify(capsys, missing, ASTRONAUT.path)
    assert code == 1
    assert err == f"edgemood classify: {missing}: No such file or directory\n"
    assert "missing" not in out and len(out.splitlines()) == 2  # the header and the astronaut


def test_only_unreadable_files_print_no_table(capsys, tmp_path):
    code, out, err = classify(capsys, tmp_path / "a.png", tmp_path / "b.png")
    assert (code, out) == (1, "")
    assert len(err.splitlines()) == 2


def test_json_has_the_same_keys_for_every_image(capsys, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    code, out, err = classify(capsys, "--json", ASTRONAUT.path, broken)
    assert code == 1 and err == f"edgemood classify: {broken}: not a readable image\n"
    astronaut, failed = json.loads(out)
    assert set(astronaut) == set(failed) == {"image", "error", "faces_seen", "faces"}
    assert (astronaut["error"], astronaut["faces_seen"], astronaut["faces"][0]["mood"]) == (None, 1, "happy")
    assert failed == {"image": str(broken), "error": f"{broken}: not a readable image", "faces_seen": 0, "faces": []}
