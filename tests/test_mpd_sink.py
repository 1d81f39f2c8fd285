"""MPD sink: the switch planning directly, the sink against a real MPD (the manners: test_mpd_etiquette)."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from mpd import ConnectionError as MpdConnectionError
from mpd import MPDClient
from mpd_helpers import connect, control, player, playing, sinks, stored  # noqa: F401 (fixtures)
from polling import wait_until

import edgemood.sinks.mpd_session as mpd_session
from edgemood.config import MpdConfig
from edgemood.demo.services import free_port
from edgemood.sinks.mpd import MpdSink
from edgemood.sinks.mpd_switch import plan_switch

# -- pure rules ------------------------------------------------------------------------

PLAYING = {"playlist": "9", "playlistlength": "4", "state": "play", "song": "2", "songid": "7"}


def test_switch_now_loads_before_deleting_the_old_queue_then_plays():
    plan = plan_switch(PLAYING, "calm", switch="now", shuffle=True)
    assert plan.commands == (
        ("load", "calm"),
        ("delete", (0, 4)),
        ("shuffle",),
        ("play", 0),
    )
    assert plan.kept_song is None


def test_switch_now_on_an_empty_queue_deletes_nothing():
    plan = plan_switch({"playlistlength": "0", "state": "stop"}, "calm", switch="now", shuffle=False)
    assert [name for name, *_ in plan.commands] == ["load", "play"]


def test_switch_at_track_end_keeps_the_playing_song_first_and_shuffles_only_after_it():
    plan = plan_switch(PLAYING, "calm", switch="track_end", shuffle=True)
    assert plan.commands == (
        ("load", "calm"),
        ("delete", (3, 4)),
        ("delete", (0, 2)),
        ("shuffle", (1,)),
    )
    assert plan.kept_song == "7"


def test_switch_at_track_end_of_a_lone_song_only_appends():
    status = {"playlistlength": "1", "state": "play", "song": "0", "songid": "3"}
    plan = plan_switch(status, "calm", switch="track_end", shuffle=False)
    assert [name for name, *_ in plan.commands] == ["load"]
    assert plan.kept_song == "3"


@pytest.mark.parametrize("state", ["stop", "pause"])
def test_switch_at_track_end_without_a_playing_song_switches_now(state):
    status = {**PLAYING, "state": state}
    assert plan_switch(status, "calm", switch="track_end", shuffle=False) == plan_switch(
        status, "calm", switch="now", shuffle=False
    )


# -- a server that lacks commands (Mopidy-MPD style), faked --------------------------


class FakeServer:
    """Just enough of MPD for one sink: a queue version, a state and a command log."""

    def __init__(self, commands: set[str]) -> None:
        self.commands = commands
        self.calls: list[tuple[Any, ...]] = []
        self.version = 1
        self.state = "stop"

    def client(self) -> FakeClient:
        return FakeClient(self)


class FakeClient:
    """Stands in for ``mpd.MPDClient``; ``idle`` blocks on a real socket so the sink can interrupt it."""

    mpd_version = "0.19.0"

    def __init__(self, server: FakeServer) -> None:
        self.server = server
        self.timeout = None
        self._here, self._there = socket.socketpair()

    def connect(self, host: str, port: int) -> None:
        pass

    def commands(self) -> list[str]:
        return sorted(self.server.commands)

    def status(self) -> dict[str, str]:
        return {"playlist": str(self.server.version), "playlistlength": "0", "state": self.server.state}

    def idle(self, *subsystems: str) -> list[str]:
        if not self._here.recv(1):
            raise MpdConnectionError("Connection lost while reading line")
        return list(subsystems)

    def fileno(self) -> int:
        return self._here.fileno()

    def disconnect(self) -> None:
        self._here.close()
        self._there.close()

    def command_list_ok_begin(self) -> None:
        pass

    def command_list_end(self) -> None:
        pass

    def __getattr__(self, name: str) -> Callable[..., None]:
        if name not in self.server.commands:
            raise AssertionError(f"the sink sent '{name}', which this server lacks")

        def command(*args: Any) -> None:
            self.server.calls.append((name, *args))
            self.server.version += 1
            if name == "play":
                self.server.state = "play"

        return command


def test_missing_commands_are_skipped_with_one_log_line(monkeypatch, caplog):
    server = FakeServer({"commands", "status", "idle", "load", "delete", "play", "shuffle"})
    monkeypatch.setattr(mpd_session, "MPDClient", server.client)
    sink = MpdSink(MpdConfig(partition="edgemood", crossfade_s=2, shuffle=False))
    with caplog.at_level(logging.WARNING, logger="edgemood.sinks.mpd"):
        sink.start()
        try:
            sink.play_playlist("calm")
            wait_until(lambda: sink.health()["playlist"] == "calm", what="calm loaded")
            sink.play_playlist("upbeat")
            wait_until(lambda: sink.health()["playlist"] == "upbeat", what="upbeat loaded")
        finally:
            sink.stop()
    assert [call[0] for call in server.calls] == ["load", "play", "load", "play"]
    lacks = [r.getMessage() for r in caplog.records if "lacks" in r.getMessage()]
    assert len(lacks) == 2
    assert any("'crossfade'" in m for m in lacks)
    assert any("partition" in m and "default queue" in m for m in lacks)


# -- against a real MPD ----------------------------------------------------------------


def test_switches_playlists_with_crossfade(control, sinks):
    sink, errors = sinks(crossfade_s=3)
    sink.play_playlist("calm")
    wait_until(lambda: playing(control) == stored(control, "calm"), what="calm playing")
    assert control.status()["xfade"] == "3"
    sink.play_playlist("upbeat")
    wait_until(lambda: playing(control) == stored(control, "upbeat"), what="upbeat playing")
    status = wait_until(lambda: (s := sink.health())["playlist"] == "upbeat" and s, what="upbeat recorded")
    assert status["connected"] and status["held_until"] is None
    assert errors == [] and status["last_error"] is None


def test_shuffle_mixes_the_loaded_playlist(control, sinks):
    sink, _ = sinks(shuffle=True)
    sink.play_playlist("many")
    files = stored(control, "many")
    queue = wait_until(lambda: (q := playing(control)) and sorted(q) == sorted(files) and q, what="many playing")
    assert queue != files  # 8 tracks: the stored order comes back once in 40320 shuffles


def test_a_missing_playlist_is_reported_and_the_queue_left_alone(control, sinks):
    sink, errors = sinks()
    sink.play_playlist("calm")
    wait_until(lambda: playing(control) == stored(control, "calm"), what="calm playing")
    version = control.status()["playlist"]
    sink.play_playlist("no-such-list")
    wait_until(lambda: errors, what="an error report")
    assert errors == ["playlist 'no-such-list' does not exist on MPD"]
    assert sink.health()["last_error"] == errors[0] and sink.health()["playlist"] == "calm"
    assert playing(control) == stored(control, "calm") and control.status()["playlist"] == version
    sink.play_playlist("focus")
    wait_until(lambda: playing(control) == stored(control, "focus"), what="focus playing")
    assert len(errors) == 1


def test_another_clients_change_holds_switching_until_the_hold_ends(control, sinks):
    sink, _ = sinks(manual_hold_s=1.5)
    sink.play_playlist("calm")
    wait_until(lambda: playing(control) == stored(control, "calm"), what="calm playing")
    control.clear()
    control.load("upbeat")
    control.play(0)
    held_until = wait_until(lambda: sink.health()["held_until"], what="a manual hold")
    assert sink.health()["playlist"] is None  # the queue is the other client's now
    sink.play_playlist("focus")
    focus = stored(control, "focus")
    seen_upbeat = False
    while (queue := playing(control)) != focus:
        seen_upbeat = seen_upbeat or queue == stored(control, "upbeat")
        assert time.monotonic() < held_until + 5, "switching did not resume after the hold"
        time.sleep(0.05)
    assert time.monotonic() >= held_until and seen_upbeat
    wait_until(lambda: sink.health()["playlist"] == "focus", what="focus recorded")
    assert sink.health()["held_until"] is None


def test_track_end_keeps_the_current_song_then_drops_it(control, sinks):
    sink, _ = sinks(switch="track_end")
    sink.play_playlist("calm")
    wait_until(lambda: playing(control) == stored(control, "calm"), what="calm playing")
    current = control.currentsong()
    sink.play_playlist("upbeat")
    upbeat = stored(control, "upbeat")
    wait_until(lambda: playing(control) == [current["file"], *upbeat], what="upbeat queued after the song")
    assert control.currentsong()["id"] == current["id"]
    control.seekcur(float(current["duration"]) - 0.5)
    wait_until(lambda: playing(control) == upbeat, what="the kept song removed after it ended")
    assert control.currentsong()["file"] == upbeat[0]
    assert sink.health()["held_until"] is None  # a seek is not a manual change


def test_partition_leaves_the_default_queue_untouched(mpd, control, sinks):
    control.load("comfort")
    before = (control.status()["playlist"], stored(control, "comfort"))
    own = connect(mpd, partition="edgemood-test")
    try:
        own.moveoutput("spare")  # a new partition has no output and cannot play
        sink, errors = sinks(partition="edgemood-test")
        sink.play_playlist("calm")
        wait_until(lambda: playing(own) == stored(own, "calm"), what="calm playing in the partition")
    finally:
        own.disconnect()
    assert errors == []
    assert (control.status()["playlist"], [s["file"] for s in control.playlistinfo()]) == before


def test_open_client_uses_the_configured_timeout_and_partition(mpd):
    """The one connect of the sink, ``doctor`` and ``playlists``: the doctor's own copy once ignored both."""
    client = mpd_session.open_client(MpdConfig(host=mpd.host, port=mpd.port, timeout_s=3.5, partition="edgemood-open"))
    try:
        assert client.timeout == 3.5 and client.status()["partition"] == "edgemood-open"
    finally:
        mpd_session.disconnect(client)


def test_survives_an_mpd_restart_and_plays_again(mpd, sinks):
    def now_playing() -> list[str] | None:
        try:
            client = connect(mpd)
        except OSError:
            return None
        try:
            return playing(client)
        finally:
            client.disconnect()

    sink, errors = sinks()
    sink.play_playlist("calm")
    calm = wait_until(now_playing, what="calm playing")
    mpd.restart()  # no state file: the queue is gone
    wait_until(lambda: now_playing() == calm, timeout=10, what="calm playing after the restart")
    assert sink.health()["reconnects"] >= 1 and sink.health()["connected"]
    assert errors and errors[0].startswith("lost the connection to MPD")


def test_password_file_is_used(tmp_path: Path):
    from edgemood.demo.services.mpd import start_mpd

    server = start_mpd(tmp_path / "mpd", {"calm": 1}, password="s3cret")
    try:
        (tmp_path / "good").write_text("s3cret\n")
        (tmp_path / "bad").write_text("guess\n")
        good = MpdSink(MpdConfig(host=server.host, port=server.port, password_file=str(tmp_path / "good")))
        errors: list[str] = []
        bad = MpdSink(MpdConfig(host=server.host, port=server.port, password_file=str(tmp_path / "bad")), errors.append)
        good.start()
        bad.start()
        try:
            good.play_playlist("calm")
            client = connect(server, password="s3cret")
            wait_until(lambda: playing(client) == stored(client, "calm"), what="calm playing")
            client.disconnect()
            wait_until(lambda: errors, what="a password error")
            assert "incorrect password" in errors[0] and not bad.health()["connected"]
        finally:
            good.stop()
            bad.stop()
    finally:
        server.stop()


def test_an_unreachable_server_is_reported_and_stop_is_prompt():
    errors: list[str] = []
    port = free_port()
    sink = MpdSink(MpdConfig(host="127.0.0.1", port=port), on_error=errors.append)
    sink.start()
    wait_until(lambda: errors, what="a connection error")
    assert errors[0].startswith(f"cannot connect to MPD at 127.0.0.1:{port}")
    assert not sink.health()["connected"]
    sink.stop()
    assert not [t for t in threading.enumerate() if t.name.startswith("edgemood-mpd")]


# -- faults: refused commands, unexpected errors, what belongs to one session -------------------


@pytest.fixture
def thread_deaths(monkeypatch) -> list[threading.ExceptHookArgs]:
    """Exceptions that ended a thread: what ``threading.excepthook`` would only print to stderr."""
    deaths: list[threading.ExceptHookArgs] = []
    monkeypatch.setattr(threading, "excepthook", deaths.append)
    return deaths


def test_a_server_that_refuses_commands_is_a_failed_connection_reported_once(tmp_path: Path, monkeypatch, caplog):
    from edgemood.demo.services.mpd import start_mpd

    server = start_mpd(tmp_path / "mpd", {"calm": 1}, password="s3cret")  # anonymous clients may do nothing
    connects: list[float] = []

    class Counting(MPDClient):
        def connect(self, *args: Any, **kwargs: Any) -> None:
            connects.append(time.monotonic())
            super().connect(*args, **kwargs)

    monkeypatch.setattr(mpd_session, "MPDClient", Counting)
    errors: list[str] = []
    sink = MpdSink(MpdConfig(host=server.host, port=server.port), on_error=errors.append)
    try:
        with caplog.at_level(logging.INFO, logger="edgemood.sinks.mpd"):
            sink.start()
            sink.play_playlist("calm")
            time.sleep(3.4)  # backoff 0.5-1 s, then 1-2 s, then 2-4 s: at most three attempts
            connected = sink.health()["connected"]
    finally:
        sink.stop()
        server.stop()
    assert len(errors) == 1, errors
    assert "permission" in errors[0] and "password_file" in errors[0]
    assert 2 <= len(connects) <= 3, connects
    assert not connected and not any("connected to MPD" in r.getMessage() for r in caplog.records)
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 1


def test_an_unexpected_error_in_the_worker_is_logged_once_and_the_music_still_follows(
    control, sinks, monkeypatch, caplog, thread_deaths
):
    class Flaky(MPDClient):
        failures = 1

        def commands(self) -> list[str]:
            if Flaky.failures:
                Flaky.failures -= 1
                raise RuntimeError("injected fault")
            return super().commands()

    monkeypatch.setattr(mpd_session, "MPDClient", Flaky)
    with caplog.at_level(logging.INFO, logger="edgemood.sinks.mpd"):
        sink, errors = sinks()
        sink.play_playlist("calm")
        wait_until(lambda: playing(control) == stored(control, "calm"), what="calm playing after the fault")
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert len(tracebacks) == 1 and "injected fault" in tracebacks[0].getMessage()
    assert len(errors) == 1 and thread_deaths == []


def test_an_unexpected_error_in_the_idle_thread_renews_the_session(control, sinks, monkeypatch, caplog, thread_deaths):
    class Flaky(MPDClient):
        failures = 1

        def idle(self, *subsystems: str) -> list[str]:
            if Flaky.failures:
                Flaky.failures -= 1
                raise RuntimeError("injected idle fault")
            return super().idle(*subsystems)

    monkeypatch.setattr(mpd_session, "MPDClient", Flaky)
    with caplog.at_level(logging.INFO, logger="edgemood.sinks.mpd"):
        sink, _ = sinks()
        sink.play_playlist("calm")
        wait_until(lambda: playing(control) == stored(control, "calm"), what="calm playing")
        wait_until(lambda: sink.health()["reconnects"] == 1 and sink.health()["connected"], what="a new session")
        control.add(stored(control, "comfort")[0])  # the listener edits the queue: the new idle thread sees it
        wait_until(lambda: sink.health()["held_until"], what="the edit noticed", timeout=5)
    tracebacks = [r for r in caplog.records if r.exc_info]
    assert len(tracebacks) == 1 and "injected idle fault" in tracebacks[0].getMessage()
    assert thread_deaths == []


def test_a_late_idle_thread_of_an_old_session_cannot_end_the_next_one(mpd, control, sinks, monkeypatch):
    class Slow(MPDClient):
        """The first idle connection notices its end only after 3 s; one ``status`` fails on request."""

        slow_idles = 1
        fail_status = False

        def idle(self, *subsystems: str) -> list[str]:
            try:
                return super().idle(*subsystems)
            except MpdConnectionError:
                if Slow.slow_idles:
                    Slow.slow_idles -= 1
                    time.sleep(3.0)  # longer than closing a session waits for its idle thread
                raise

        def status(self) -> dict[str, str]:
            if Slow.fail_status:
                Slow.fail_status = False
                raise MpdConnectionError("injected: connection lost")
            return super().status()

    monkeypatch.setattr(mpd_session, "MPDClient", Slow)
    sink, errors = sinks()
    sink.play_playlist("calm")
    wait_until(lambda: playing(control) == stored(control, "calm"), what="calm playing")
    Slow.fail_status = True
    sink.play_playlist("upbeat")  # wakes the worker, whose next status fails: the first session is lost
    wait_until(lambda: playing(control) == stored(control, "upbeat"), what="upbeat in the second session")
    time.sleep(3.5)  # meanwhile the first session's idle thread ends
    assert sink.health()["connected"] and sink.health()["reconnects"] == 1
    assert errors == [f"lost the connection to MPD at {mpd.host}:{mpd.port}: injected: connection lost"]
