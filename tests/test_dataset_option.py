"""train, eval and export name their dataset: no folder a user of the product lacks is assumed."""

from __future__ import annotations

import pytest

from edgemood.cli import main


@pytest.mark.parametrize("command", [["train"], ["eval"], ["export", "runs/fer8/best.keras"]])
def test_the_dataset_must_be_named(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(command)
    assert stopped.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].endswith("the following arguments are required: --data")
