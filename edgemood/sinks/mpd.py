"""MPD sink: play the stored playlist that fits the mood, without ever blocking the caller.

The daemon's loop only records what it wants (``play_playlist``); a worker
thread owns the MPD connection and makes the server match:

* **Switching.** One command list, so the queue is never left half-changed:
  ``load`` first (a missing playlist then fails before anything was removed),
  then delete the old songs, ``shuffle`` and ``play``. ``crossfade`` is set in
  the same list. With ``switch = "track_end"`` the song playing now is kept:
  everything around it is deleted, the playlist is appended after it (and
  shuffled there), and once MPD has moved on to the next song the kept one
  is deleted too, so ``repeat`` never brings it back.
* **Manual changes.** A second connection is parked in ``idle playlist
  player``, so MPD wakes us on every queue or player change, ours included.
  After each of our own edits we note the queue version (``status``'s
  ``playlist`` counter, bumped by every queue edit) and whether playback was
  paused. An event that finds a different version, or a pause that was not
  there, was made by another client: automatic switching is then held for
  ``manual_hold_s``, after which the wanted playlist is loaded again if it is
  not what plays. Skipping, seeking or a stop are not counted (a queue that
  simply ran out also stops). Our own edits cannot be mistaken for manual
  ones because the worker looks at the server only between them.
* **Degrading.** ``commands`` is read on connect; a missing ``crossfade``,
  ``shuffle`` or ``partition`` (Mopidy-MPD lacks some) is logged once and
  skipped. A partition without an audio output is logged once as well: MPD
  creates partitions without one, and taking the user's output away from the
  main queue is not ours to decide.
* **Outages.** Reconnects back off from 1 s to 30 s with jitter. After a
  reconnect the queue is trusted only if it is still the one we left and
  still playing; otherwise (an MPD restart empties the queue) the wanted
  playlist is loaded and played again. A ``ping``-like ``status`` every
  ``KEEPALIVE_S`` keeps MPD's ``connection_timeout`` from closing the idle
  command connection and notices a dead server.

Errors (a missing playlist, an unreachable server) go to the log, to
``status()["last_error"]`` and to ``on_error``, once per occurrence rather
than once per retry; a playlist that failed is not tried again until another
one was asked for in between or the connection was renewed.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from mpd import CommandError, FailureResponseCode, MPDClient, MPDError

from edgemood.config import MpdConfig, read_secret
from edgemood.errors import EdgemoodError

log = logging.getLogger(__name__)

#: Seconds between status checks when nothing happens; well under MPD's
#: default ``connection_timeout`` of 60 s.
KEEPALIVE_S = 30.0
#: Reconnect backoff bounds in seconds.
BACKOFF_FIRST_S = 1.0
BACKOFF_MAX_S = 30.0
#: How long ``stop()`` waits for the worker thread.
STOP_WAIT_S = 2.0
#: Commands we can do without, each skipped with one log line when missing.
OPTIONAL_COMMANDS = ("crossfade", "shuffle")
#: MPD subsystems whose changes can be another client's doing.
WATCHED = ("playlist", "player")

#: A command for ``MPDClient``: its name, then its arguments.
MpdCommand = tuple[Any, ...]


@dataclass(frozen=True)
class QueueMark:
    """The server as we last saw it: queue version and whether it was paused."""

    version: str | None
    paused: bool

    @classmethod
    def of(cls, status: Mapping[str, str]) -> "QueueMark":
        """The mark of an MPD ``status`` reply."""
        return cls(version=status.get("playlist"), paused=status.get("state") == "pause")


@dataclass(frozen=True)
class SwitchPlan:
    """The commands that load a playlist, and the song left playing meanwhile."""

    commands: tuple[MpdCommand, ...]
    #: ``songid`` kept until it ends (``switch = "track_end"``), else None.
    kept_song: str | None


def plan_switch(
    status: Mapping[str, str], playlist: str, *, switch: str, shuffle: bool, crossfade_s: float
) -> SwitchPlan:
    """How to replace the queue described by ``status`` with a stored playlist.

    ``load`` comes before any deletion so that a missing playlist fails while
    the old queue is still intact. With ``switch = "track_end"`` and a song
    playing, that song stays at position 0 and the playlist follows it;
    otherwise the old queue goes and playback starts at the top of the new one.
    """
    length = int(status.get("playlistlength", "0"))
    # MPD's crossfade takes whole seconds.
    commands: list[MpdCommand] = [("crossfade", round(crossfade_s)), ("load", playlist)]
    if switch == "track_end" and status.get("state") == "play" and "song" in status:
        current = int(status["song"])
        if current + 1 < length:
            commands.append(("delete", (current + 1, length)))
        if current > 0:
            commands.append(("delete", (0, current)))
        if shuffle:
            commands.append(("shuffle", (1,)))
        return SwitchPlan(tuple(commands), kept_song=status.get("songid"))
    if length:
        commands.append(("delete", (0, length)))
    if shuffle:
        commands.append(("shuffle",))
    commands.append(("play", 0))
    return SwitchPlan(tuple(commands), kept_song=None)


def manual_change(mark: QueueMark, status: Mapping[str, str]) -> str | None:
    """What another client did since ``mark`` was taken, or None.

    ``"queue"``: the queue was edited; ``"pause"``: playback was paused.
    """
    if status.get("playlist") != mark.version:
        return "queue"
    if status.get("state") == "pause" and not mark.paused:
        return "pause"
    return None


def backoff_delays(
    first: float = BACKOFF_FIRST_S, cap: float = BACKOFF_MAX_S, rng: Callable[[], float] = random.random
) -> Iterator[float]:
    """Reconnect delays doubling from ``first`` to ``cap``, each drawn from its upper half.

    The jitter keeps several daemons from hammering a restarted server in step.
    """
    delay = first
    while True:
        yield delay * (0.5 + rng() / 2)
        delay = min(cap, delay * 2)


def _describe(exc: BaseException) -> str:
    """An exception as a short phrase for one log line."""
    if isinstance(exc, CommandError) and exc.msg:
        return exc.msg
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _interrupt(client: MPDClient) -> None:
    """Wake a thread blocked in ``client.idle()`` by shutting the socket down under it.

    python-mpd2's blocking client has no ``noidle``; a shutdown through a
    duplicate descriptor ends the connection for every descriptor, so the
    blocked read returns at once and the idle call raises.
    """
    try:
        with socket.socket(fileno=os.dup(client.fileno())) as duplicate:
            duplicate.shutdown(socket.SHUT_RDWR)
    except (MPDError, OSError):
        pass  # already closed: nothing is blocked on it


@dataclass
class _Session:
    """One connection pair: ``client`` for commands, ``watcher`` parked in idle by ``thread``."""

    client: MPDClient
    watcher: MPDClient
    thread: threading.Thread

    def close(self) -> None:
        """Stop the idle thread and drop both connections."""
        _interrupt(self.watcher)
        self.thread.join(timeout=1.0)
        for connection in (self.watcher, self.client):
            try:
                connection.disconnect()
            except (MPDError, OSError):
                pass  # the server may already be gone


class MpdSink:
    """Keeps MPD playing the playlist the daemon last asked for."""

    def __init__(
        self,
        config: MpdConfig,
        on_error: Callable[[str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._config = config
        self._on_error = on_error
        self._clock = clock
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        # Shared with the caller's and the watcher's threads; guarded by _cond.
        self._desired: str | None = None
        self._failed: str | None = None
        self._poked = False
        self._watch_lost = False
        self._stopping = False
        self._connected = False
        self._loaded: str | None = None
        self._held_until: float | None = None
        self._last_error: str | None = None
        self._sessions = 0
        # The worker's own.
        self._mark: QueueMark | None = None
        self._kept_song: str | None = None
        self._commands: frozenset[str] = frozenset()
        self._warned: set[str] = set()
        self._reported: str | None = None

    # -- the caller's side ------------------------------------------------

    def start(self) -> None:
        """Start the worker thread; returns at once, connecting happens there."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="edgemood-mpd", daemon=True)
            self._thread.start()

    def play_playlist(self, name: str | None) -> None:
        """Ask for a stored playlist (None: leave playback alone); the latest request wins."""
        with self._cond:
            if name != self._desired:
                self._desired = name
                self._failed = None
                self._poked = True
                self._cond.notify()

    def status(self) -> dict[str, Any]:
        """A snapshot for diagnostics: ``held_until`` is in the sink's clock (monotonic)."""
        with self._cond:
            return {
                "connected": self._connected,
                "playlist": self._loaded,
                "held_until": self._held_until,
                "last_error": self._last_error,
                "reconnects": max(0, self._sessions - 1),
            }

    def stop(self) -> None:
        """End the worker and close the connection; safe to call twice."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout=STOP_WAIT_S)

    # -- the worker -------------------------------------------------------

    def _run(self) -> None:
        delays = backoff_delays()
        while not self._stopping:
            try:
                session = self._open_session()
            except (MPDError, OSError, EdgemoodError) as exc:
                self._report(f"cannot connect to MPD at {self._address()}: {_describe(exc)}")
                self._sleep(next(delays))
                continue
            delays = backoff_delays()
            try:
                self._serve(session)
            except (MPDError, OSError) as exc:
                if not self._stopping:
                    self._report(f"lost the connection to MPD at {self._address()}: {_describe(exc)}")
            except Exception:  # a worker that dies silently would leave the music stuck
                log.exception("MPD sink: unexpected failure; reconnecting")
            finally:
                session.close()
                with self._cond:
                    self._connected = False
            self._sleep(next(delays))

    def _sleep(self, seconds: float) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._stopping, timeout=seconds)

    def _address(self) -> str:
        host = self._config.host
        return host if host.startswith(("/", "@")) else f"{host}:{self._config.port}"

    def _open_session(self) -> _Session:
        client = self._connect(first=True)
        try:
            watcher = self._connect(first=False)
        except BaseException:
            client.disconnect()
            raise
        thread = threading.Thread(target=self._watch, args=(watcher,), name="edgemood-mpd-idle", daemon=True)
        session = _Session(client, watcher, thread)
        thread.start()
        with self._cond:
            self._connected = True
            self._sessions += 1
            self._watch_lost = False
            self._failed = None
        self._reported = None
        log.info("connected to MPD at %s (protocol %s)", self._address(), client.mpd_version)
        return session

    def _connect(self, first: bool) -> MPDClient:
        """One authenticated connection in our partition; ``first`` also learns the commands."""
        client = MPDClient()
        client.timeout = self._config.timeout_s
        client.connect(self._config.host, self._config.port)
        try:
            if self._config.password_file:
                client.password(read_secret(self._config.password_file))
            if first:
                self._commands = frozenset(client.commands())
            if self._config.partition:
                self._enter_partition(client, check_outputs=first)
        except BaseException:
            client.disconnect()
            raise
        return client

    def _enter_partition(self, client: MPDClient, check_outputs: bool) -> None:
        name = self._config.partition
        instead = f"playing in the default queue instead of partition '{name}'"
        if not (self._supported("newpartition", instead) and self._supported("partition", instead)):
            return
        try:
            client.newpartition(name)
        except CommandError as exc:
            if exc.errno != FailureResponseCode.EXIST:
                raise
        client.partition(name)
        if check_outputs and not client.outputs():
            self._warn_once(
                f"no-output:{name}",
                "MPD partition '%s' has no audio output, so nothing will be heard; "
                "move one there (e.g. mpc --partition %s moveoutput NAME)",
                name,
                name,
            )

    def _supported(self, command: str, instead: str = "carrying on without it") -> bool:
        """Whether the server has ``command``; the first time it has not, say so and what happens instead."""
        if command in self._commands:
            return True
        self._warn_once(command, "MPD server lacks '%s'; %s", command, instead)
        return False

    def _warn_once(self, key: str, message: str, *args: object) -> None:
        if key not in self._warned:
            self._warned.add(key)
            log.warning(message, *args)

    def _watch(self, watcher: MPDClient) -> None:
        """The idle connection: pokes the worker on every change MPD reports."""
        try:
            while True:
                watcher.idle(*WATCHED)
                with self._cond:
                    self._poked = True
                    self._cond.notify()
        except (MPDError, OSError):
            with self._cond:
                self._watch_lost = True
                self._cond.notify()

    def _serve(self, session: _Session) -> None:
        client = session.client
        status = client.status()
        if self._mark is None or status.get("state") != "play" or QueueMark.of(status) != self._mark:
            # Not the queue we left playing (first connect, or MPD restarted).
            with self._cond:
                self._loaded = None
            self._kept_song = None
        self._mark = QueueMark.of(status)
        while True:
            status = self._observe(client, status)
            self._reconcile(client, status)
            with self._cond:
                self._cond.wait_for(
                    lambda: self._stopping or self._poked or self._watch_lost, timeout=self._wait_s()
                )
                if self._stopping:
                    return
                if self._watch_lost:
                    raise MPDError("the idle connection was closed")
                self._poked = False
            status = client.status()

    def _wait_s(self) -> float:
        if self._held_until is None:
            return KEEPALIVE_S
        return max(0.0, min(KEEPALIVE_S, self._held_until - self._clock()))

    def _observe(self, client: MPDClient, status: dict[str, str]) -> dict[str, str]:
        """Notice other clients' changes and finish a ``track_end`` switch; returns the fresh status."""
        assert self._mark is not None
        change = manual_change(self._mark, status)
        if change is not None:
            self._mark = QueueMark.of(status)
            if change == "queue":
                self._kept_song = None
                with self._cond:
                    self._loaded = None
            if self._config.manual_hold_s > 0:
                log.info(
                    "another MPD client %s; automatic switching held for %g s",
                    "changed the queue" if change == "queue" else "paused playback",
                    self._config.manual_hold_s,
                )
                with self._cond:
                    self._held_until = self._clock() + self._config.manual_hold_s
        if self._kept_song is not None and status.get("state") == "play" and status.get("songid") != self._kept_song:
            try:
                client.deleteid(self._kept_song)
            except CommandError as exc:
                if exc.errno != FailureResponseCode.NO_EXIST:
                    raise
            self._kept_song = None
            status = client.status()
            self._mark = QueueMark.of(status)
        return status

    def _reconcile(self, client: MPDClient, status: dict[str, str]) -> None:
        """Load the wanted playlist unless it already plays, a hold is on, or it failed."""
        with self._cond:
            if self._held_until is not None:
                if self._clock() < self._held_until:
                    return
                self._held_until = None
                log.info("manual hold over; automatic switching resumes")
            desired = self._desired
            if desired is None or desired == self._loaded or desired == self._failed:
                return
        config = self._config
        plan = plan_switch(
            status, desired, switch=config.switch, shuffle=config.shuffle, crossfade_s=config.crossfade_s
        )
        commands = [
            command for command in plan.commands if command[0] not in OPTIONAL_COMMANDS or self._supported(command[0])
        ]
        try:
            client.command_list_ok_begin()
            for name, *args in commands:
                getattr(client, name)(*args)
            client.command_list_end()
        except CommandError as exc:
            if exc.errno == FailureResponseCode.NO_EXIST and exc.command == "load":
                message = f"playlist '{desired}' does not exist on MPD"
            else:
                message = f"MPD refused to play playlist '{desired}': {_describe(exc)}"
            with self._cond:
                self._failed = desired
            self._report(message)
            self._mark = QueueMark.of(client.status())
            return
        self._mark = QueueMark.of(client.status())
        self._kept_song = plan.kept_song
        self._reported = None
        with self._cond:
            self._loaded = desired
        log.info("MPD: playing playlist '%s'%s", desired, " after the current song" if plan.kept_song else "")

    def _report(self, message: str) -> None:
        """Log and hand on an error once, however often a retry runs into it again."""
        with self._cond:
            self._last_error = message
        if message == self._reported:
            return
        self._reported = message
        log.warning("%s", message)
        if self._on_error is not None:
            try:
                self._on_error(message)
            except Exception:  # a broken callback must not stop the music
                log.exception("MPD sink: on_error callback failed")
