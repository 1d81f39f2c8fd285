"""The MPD tests' shared parts: a listener's client, sinks on a real server, Mopidy, mpc.

Test modules import the fixtures they use from here (``from mpd_helpers import
control, sinks``); ``player`` is the server they talk to, the session's MPD
unless a module overrides it (the etiquette tests run on Mopidy too).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from mpd import CommandError, MPDClient
from needs import missing

from edgemood.config import MpdConfig
from edgemood.demo.services import LocalService, ServiceError
from edgemood.sinks.mpd import MpdSink


def connect(server: LocalService, partition: str = "", password: str = "") -> MPDClient:
    """A plain python-mpd2 client: the listener's phone app, or the test's eyes."""
    client = MPDClient()
    client.timeout = 5
    client.connect(server.host, server.port)
    if password:
        client.password(password)
    if partition:
        try:
            client.newpartition(partition)
        except CommandError:
            pass  # made by an earlier test
        client.partition(partition)
    return client


def playing(client: MPDClient) -> list[str] | None:
    """The queue's files while the server plays, else None."""
    if client.status()["state"] != "play":
        return None
    return [song["file"] for song in client.playlistinfo()]


def queue(client: MPDClient) -> list[str]:
    """The queue's files, whatever the state."""
    return [song["file"] for song in client.playlistinfo()]


def stored(client: MPDClient, name: str) -> list[str]:
    """A stored playlist's files."""
    return list(client.listplaylist(name))


def holds_for(predicate: Callable[[], object], seconds: float, what: str) -> None:
    """Assert that ``predicate()`` stays true for ``seconds``: something that must *not* happen, watched."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert predicate(), f"{what}: no longer true after {seconds - (deadline - time.monotonic()):.1f} s"
        time.sleep(0.05)


def mpc(server: LocalService, *args: str) -> str:
    """Run ``mpc`` against ``server``, as a listener at a terminal would; returns its output."""
    binary = shutil.which("mpc")
    if binary is None:
        missing("needs mpc (sudo apt-get install mpc)")
    done = subprocess.run(
        [binary, "-h", server.host, "-p", str(server.port), *args], capture_output=True, text=True, timeout=10
    )
    assert done.returncode == 0, f"mpc {' '.join(args)} failed: {done.stderr.strip()}"
    return done.stdout


@pytest.fixture(scope="session")
def mopidy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalService]:
    """One Mopidy (MPD frontend, local files) for the session, with the default playlists and ``many`` (8)."""
    from edgemood.demo.services.mopidy import start_mopidy
    from edgemood.demo.services.mpd import default_playlists

    try:
        server = start_mopidy(tmp_path_factory.mktemp("mopidy"), {**default_playlists(), "many": 8})
    except ServiceError as exc:
        missing(f"needs mopidy with mopidy-mpd and mopidy-local: {exc}")
    yield server
    server.stop()


@pytest.fixture
def player(mpd: LocalService) -> LocalService:
    """The server under test: the session's MPD."""
    return mpd


@pytest.fixture
def control(player: LocalService) -> Iterator[MPDClient]:
    """A second client, like a user's phone app, on an emptied, stopped default queue."""
    client = connect(player)
    client.stop()
    client.clear()
    yield client
    client.disconnect()


@pytest.fixture
def sinks(player: LocalService) -> Iterator[Callable[..., tuple[MpdSink, list[str]]]]:
    """Factory: ``sinks(**mpd_config)`` -> a started sink on ``player`` and its error list."""
    started: list[MpdSink] = []

    def make(**overrides: Any) -> tuple[MpdSink, list[str]]:
        errors: list[str] = []
        settings = {"host": player.host, "port": player.port, "crossfade_s": 0, "shuffle": False, **overrides}
        sink = MpdSink(MpdConfig(**settings), on_error=errors.append)
        sink.start()
        started.append(sink)
        return sink, errors

    yield make
    for sink in started:
        sink.stop()
