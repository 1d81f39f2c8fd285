"""The listener is in charge: the MPD sink's manners, as pure rules and against real MPD and Mopidy servers.

In the integration tests the listener is ``mpc`` or a second python-mpd2
client (``control``), as a phone app would be; every test runs against MPD and
against Mopidy-MPD.
"""

from __future__ import annotations

import dataclasses

import pytest
from daemon_harness import DaemonProcess, daemon_config
from mpd_helpers import connect, control, holds_for, mopidy, mpc, playing, queue, sinks, stored  # noqa: F401 (fixtures)
from polling import wait_until

from edgemood.demo.services import LocalService
from edgemood.sinks.etiquette import ListenerChange, Manners, Mark, Step, listener_change, stopped_by_someone

# -- who did it ----------------------------------------------------------------------------

PLAYING = {"playlist": "9", "playlistlength": "4", "state": "play", "song": "2", "songid": "7"}
MARK = Mark.of(PLAYING)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (PLAYING, None),
        ({**PLAYING, "song": "3", "songid": "8"}, None),  # the next song, a skip or a seek
        ({**PLAYING, "playlist": "10", "playlistlength": "5"}, ListenerChange(queue=True, player=None)),
        ({**PLAYING, "state": "pause"}, ListenerChange(queue=False, player="pause")),
        ({**PLAYING, "state": "stop"}, ListenerChange(queue=False, player="stop")),  # stopped on a song
        ({"playlist": "9", "playlistlength": "4", "state": "stop"}, None),  # the queue ran out
        ({"playlist": "10", "playlistlength": "0", "state": "stop"}, ListenerChange(queue=True, player="stop")),  # clear
    ],
)
def test_listener_change_from_playing(status, expected):
    assert listener_change(MARK, status) == expected


@pytest.mark.parametrize("before", ["pause", "stop"])
def test_listener_change_play_after_a_pause_or_stop(before):
    assert listener_change(Mark.of({**PLAYING, "state": before}), PLAYING) == ListenerChange(False, "play")


def test_a_pause_becoming_a_stop_is_the_listeners_even_without_a_song():
    paused = Mark.of({**PLAYING, "state": "pause"})
    assert listener_change(paused, {"playlist": "9", "playlistlength": "4", "state": "stop"}) == ListenerChange(
        False, "stop"
    )


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ({"state": "stop", "playlistlength": "0"}, False),  # a fresh MPD, an empty queue
        ({"state": "stop", "playlistlength": "3"}, False),  # a queue that ran out
        ({"state": "stop", "playlistlength": "3", "song": "1"}, True),
        ({"state": "pause", "song": "1"}, True),
        (PLAYING, False),
    ],
)
def test_stopped_by_someone(status, expected):
    assert stopped_by_someone(status) is expected


# -- what may be done ------------------------------------------------------------------------


def step(manners: Manners, state: str, *, wanted: bool = True, absent: bool = False, autoplay: bool = True) -> Step:
    return manners.next_step(state=state, switch_wanted=wanted, absent=absent, autoplay=autoplay)


def test_a_listeners_pause_or_stop_blocks_every_start_until_they_play():
    manners = Manners()
    for player in ("pause", "stop"):
        manners.listener(ListenerChange(False, player), now=0, hold_s=5)
        assert manners.held_until is None  # not a queue edit: no hold that could run out
        assert step(manners, player) is Step.NOTHING
        manners.absence(False, pause=True)
        assert step(manners, player) is Step.NOTHING
    manners.listener(ListenerChange(False, "play"), now=0, hold_s=5)
    assert step(manners, "play") is Step.SWITCH


def test_a_queue_edit_holds_switching_until_the_hold_ends():
    manners = Manners()
    manners.listener(ListenerChange(True, None), now=10, hold_s=5)
    assert manners.held_until == 15 and step(manners, "play") is Step.NOTHING
    assert not manners.release_hold(14.9)
    assert manners.release_hold(15) and step(manners, "play") is Step.SWITCH


def test_autoplay_decides_about_an_idle_player_only():
    assert step(Manners(), "stop", autoplay=True) is Step.SWITCH
    assert step(Manners(), "stop", autoplay=False) is Step.NOTHING
    assert step(Manners(), "play", autoplay=False) is Step.SWITCH
    assert step(Manners(), "play", wanted=False) is Step.NOTHING


def test_a_player_found_paused_or_stopped_on_a_song_is_not_started():
    for status in ({"state": "pause", "song": "0"}, {"state": "stop", "song": "0"}):
        manners = Manners()
        manners.fresh(status)
        assert step(manners, status["state"]) is Step.NOTHING


def test_on_absent_pause_pauses_once_and_resumes_only_its_own_pause():
    manners = Manners()
    manners.absence(True, pause=True)
    assert step(manners, "play", wanted=False, absent=True) is Step.PAUSE
    manners.done(Step.PAUSE)
    assert step(manners, "pause", wanted=False, absent=True) is Step.NOTHING
    manners.absence(False, pause=True)
    assert step(manners, "pause", wanted=False) is Step.RESUME
    assert step(manners, "pause", wanted=True) is Step.SWITCH  # back with another mood: its playlist plays
    manners.done(Step.RESUME)
    assert not manners.own_pause


@pytest.mark.parametrize(
    "change",
    [ListenerChange(False, "play"), ListenerChange(False, "stop"), ListenerChange(True, None)],
    ids=["play", "stop", "queue edit"],
)
def test_any_touch_by_the_listener_makes_edgemoods_pause_theirs(change):
    manners = Manners(own_pause=True)
    manners.listener(change, now=0, hold_s=0)
    assert not manners.own_pause
    state = change.player or "pause"
    assert step(manners, state, wanted=False) is Step.NOTHING  # nothing resumed, nothing paused again


def test_a_pause_for_absence_is_due_only_when_the_absence_begins():
    manners = Manners(listener_stopped=True)
    manners.absence(True, pause=True)
    assert step(manners, "pause", absent=True) is Step.NOTHING
    manners.listener(ListenerChange(False, "play"), now=0, hold_s=0)  # the listener plays, still unseen
    assert step(manners, "play", wanted=False, absent=True) is Step.NOTHING
    keep = Manners()
    keep.absence(True, pause=False)
    assert step(keep, "play", wanted=False, absent=True) is Step.NOTHING


# -- against real servers ----------------------------------------------------------------------


@pytest.fixture(params=["mpd", "mopidy"])
def player(request: pytest.FixtureRequest) -> LocalService:
    """Each integration test runs against MPD and against Mopidy-MPD."""
    return request.getfixturevalue(request.param)


def start_calm(control, sinks, **config):
    sink, errors = sinks(**config)
    sink.play_playlist("calm")
    wait_until(lambda: playing(control) == stored(control, "calm"), what="calm playing")
    return sink, errors


def test_a_pause_by_the_listener_is_never_undone_and_play_follows_the_mood_again(player, control, sinks):
    sink, _ = start_calm(control, sinks, manual_hold_s=0.5)
    calm = stored(control, "calm")
    mpc(player, "pause")
    wait_until(lambda: sink.health().get("stopped_by_listener"), what="the pause taken as the listener's")
    sink.play_playlist("upbeat")  # the mood changes meanwhile
    holds_for(lambda: control.status()["state"] == "pause" and queue(control) == calm, 2.0, "calm stays paused")
    mpc(player, "play")
    wait_until(lambda: playing(control) == stored(control, "upbeat"), what="upbeat once the listener played")


def test_a_stop_by_the_listener_is_never_undone_and_play_follows_the_mood_again(player, control, sinks):
    sink, _ = start_calm(control, sinks, manual_hold_s=0.5)
    calm = stored(control, "calm")
    control.stop()
    wait_until(lambda: sink.health().get("stopped_by_listener"), what="the stop taken as the listener's")
    sink.play_playlist("upbeat")
    holds_for(lambda: control.status()["state"] == "stop" and queue(control) == calm, 2.0, "nothing starts")
    control.play()
    wait_until(lambda: playing(control) == stored(control, "upbeat"), what="upbeat once the listener played")


def test_a_queue_that_ran_out_is_nobodys_stop(player, control, sinks):
    sink, _ = start_calm(control, sinks)
    control.play(len(stored(control, "calm")) - 1)
    control.seekcur(float(control.currentsong()["time"]) - 0.5)
    wait_until(lambda: control.status()["state"] == "stop", what="the queue ran out")
    sink.play_playlist("upbeat")
    wait_until(lambda: playing(control) == stored(control, "upbeat"), what="upbeat on the idle player")
    assert not sink.health()["stopped_by_listener"]


def test_a_queue_edit_holds_switching_and_the_music_plays_on(player, control, sinks):
    sink, _ = start_calm(control, sinks, manual_hold_s=1.5)
    control.add(stored(control, "comfort")[0])
    held_until = wait_until(lambda: sink.health()["held_until"], what="a manual hold")
    sink.play_playlist("focus")
    holds_for(lambda: playing(control) is not None and "focus" not in str(queue(control)), 0.5, "the edit is kept")
    wait_until(lambda: playing(control) == stored(control, "focus"), what="focus after the hold")
    assert sink.health()["held_until"] is None and held_until is not None


@pytest.mark.parametrize("autoplay", [True, False])
def test_autoplay_decides_whether_a_mood_starts_an_idle_player(player, control, sinks, autoplay):
    sink, _ = sinks(autoplay=autoplay, manual_hold_s=0)
    sink.play_playlist("calm")
    if autoplay:
        wait_until(lambda: playing(control) == stored(control, "calm"), what="calm on the idle player")
        return
    wait_until(lambda: sink.health()["connected"], what="connected")
    holds_for(lambda: control.status()["state"] == "stop" and queue(control) == [], 1.5, "the player stays idle")
    control.load("comfort")  # the listener starts some music
    control.play(0)
    wait_until(lambda: playing(control) == stored(control, "calm"), what="calm once something played")


def test_autoplay_leaves_a_player_someone_stopped_before_edgemood_came(player, control, sinks):
    control.load("comfort")
    control.play(0)
    wait_until(lambda: playing(control), what="comfort playing")  # Mopidy starts asynchronously
    control.stop()
    sink, _ = sinks()
    sink.play_playlist("calm")
    wait_until(lambda: sink.health()["stopped_by_listener"], what="the stop found")
    holds_for(lambda: control.status()["state"] == "stop", 1.0, "nothing starts")


def test_on_absent_keep_leaves_the_music_playing(player, control, sinks):
    sink, _ = start_calm(control, sinks)
    sink.play_playlist(None, absent=True)
    holds_for(lambda: playing(control) == stored(control, "calm"), 1.5, "calm plays on")


def test_on_absent_pause_pauses_and_resumes_that_same_song(player, control, sinks):
    sink, _ = start_calm(control, sinks, on_absent="pause")
    song, version = control.currentsong()["id"], control.status()["playlist"]
    sink.play_playlist(None, absent=True)
    wait_until(lambda: control.status()["state"] == "pause", what="paused while nobody is there")
    # the sink's worker notes its own pause once MPD has answered, a moment after the listener can see it
    wait_until(lambda: sink.health()["paused_for_absence"], what="the pause known as edgemood's own")
    sink.play_playlist("calm")  # a face is back, with the same mood's playlist
    wait_until(lambda: control.status()["state"] == "play", what="resumed")
    assert (control.currentsong()["id"], control.status()["playlist"]) == (song, version)  # not reloaded


def test_on_absent_pause_never_resumes_the_listeners_pause(player, control, sinks):
    sink, _ = start_calm(control, sinks, on_absent="pause")
    mpc(player, "pause")
    wait_until(lambda: sink.health()["stopped_by_listener"], what="the listener's pause seen")
    sink.play_playlist(None, absent=True)
    sink.play_playlist("calm")
    holds_for(lambda: control.status()["state"] == "pause", 1.5, "the listener's pause stays")


@pytest.mark.parametrize("action", ["stop", "play"])
def test_the_listener_touching_edgemoods_pause_makes_it_theirs(player, control, sinks, action):
    sink, _ = start_calm(control, sinks, on_absent="pause")
    sink.play_playlist(None, absent=True)
    wait_until(lambda: sink.health()["paused_for_absence"], what="paused for the absence")
    mpc(player, action)
    wait_until(lambda: not sink.health()["paused_for_absence"], what="the listener's action seen")
    expected = {"stop": "stop", "play": "play"}[action]
    holds_for(lambda: control.status()["state"] == expected, 1.0, f"{action} kept while nobody is seen")
    sink.play_playlist("calm")  # a face is back
    holds_for(lambda: control.status()["state"] == expected, 1.0, f"{action} kept when a face is back")


# -- through the daemon ---------------------------------------------------------------------



@pytest.mark.timeout(120)
def test_the_daemon_pauses_for_nobody_and_resumes_for_a_face(tmp_path, replay, mpd):
    """A smiling face and nobody in turn, with ``on_absent = "pause"``: the happy playlist pauses and resumes."""
    listener = connect(mpd)
    listener.clear()
    config = daemon_config(replay, mpd=mpd)
    config = dataclasses.replace(config, mpd=dataclasses.replace(config.mpd, on_absent="pause"))
    with DaemonProcess(config, tmp_path / "run") as daemon:
        wait_until(lambda: playing(listener) == stored(listener, "upbeat"), what="upbeat for the smile", timeout=30)
        version = listener.status()["playlist"]
        wait_until(lambda: listener.status()["state"] == "pause", what="paused for nobody", timeout=15)
        wait_until(lambda: listener.status()["state"] == "play", what="resumed for the face", timeout=15)
        assert listener.status()["playlist"] == version  # resumed, not reloaded
        log = daemon.wait_for(lambda text: "resumed: a face is back" in text, "the resume logged")
        assert daemon.stop() == 0
    listener.disconnect()
    assert "paused: nobody is there" in log and "Traceback" not in log
