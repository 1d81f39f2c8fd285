"""Mopidy-safe: the MPD sink and the daemon against a real Mopidy (MPD frontend, local files).

Mopidy lacks MPD partitions and answers ``crossfade`` with "Not implemented"
although ``commands`` lists it; each is skipped with one log line. The
manners are tested on Mopidy as well, in test_mpd_etiquette.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytest
from daemon_harness import DaemonProcess, daemon_config
from mpd_helpers import connect, control, mopidy, playing, sinks, stored  # noqa: F401 (fixtures)
from polling import wait_until

from edgemood.demo.services import LocalService


@pytest.fixture
def player(mopidy: LocalService) -> LocalService:
    return mopidy


def test_mood_changes_switch_playlists_and_missing_commands_are_one_line_each(control, sinks, caplog):
    with caplog.at_level(logging.INFO, logger="edgemood.sinks.mpd"):
        sink, errors = sinks(crossfade_s=2, shuffle=True, partition="edgemood")
        for playlist in ("calm", "upbeat", "focus"):
            sink.play_playlist(playlist)
            wanted = sorted(stored(control, playlist))
            wait_until(lambda wanted=wanted: sorted(playing(control) or []) == wanted, what=f"{playlist} playing on Mopidy")
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(lines) == 2, lines
    assert any("'crossfade'" in line and "not implemented" in line.lower() for line in lines), lines
    assert any("'newpartition'" in line and "default queue" in line for line in lines), lines
    assert errors == [] and sink.health()["playlist"] == "focus"
    # Mopidy starts playing a moment after it answered: that is still edgemood's own doing
    assert not any("another MPD client" in r.getMessage() for r in caplog.records)



@pytest.mark.timeout(120)
def test_the_daemon_switches_mopidy_to_the_moods_playlist(tmp_path: Path, replay: Path, mopidy: LocalService):
    listener = connect(mopidy)
    listener.clear()
    listener.load("calm")  # what the listener had on: a fresh session, playing, follows the mood
    listener.play(0)
    wait_until(lambda: playing(listener), what="calm playing before the daemon starts")
    config = daemon_config(replay, mpd=mopidy)
    config = dataclasses.replace(config, mpd=dataclasses.replace(config.mpd, crossfade_s=2))
    with DaemonProcess(config, tmp_path / "run") as daemon:
        wait_until(lambda: playing(listener) == stored(listener, "upbeat"), what="upbeat for the smile", timeout=40)
        log = daemon.wait_for(lambda text: "playing playlist 'upbeat'" in text, "the switch logged")
        assert daemon.stop() == 0
    listener.disconnect()
    assert log.count("lacks 'crossfade'") == 1 and "Traceback" not in log, log
