"""MPD sink: play the stored playlist that fits the mood, without ever blocking the caller.

The daemon's loop only records what it wants (``play_playlist``); a worker
thread owns the MPD connection and makes the server match, with the manners
of ``edgemood.sinks.etiquette`` (the listener is in charge):

* **Switching.** One command list (``edgemood.sinks.mpd_switch``), so the
  queue is never left half-changed; ``crossfade`` is set just before, when it
  differs. A song kept by ``switch = "track_end"`` is deleted once MPD has
  moved on to the next one, so ``repeat`` never brings it back.
* **The listener's changes.** A second connection is parked in ``idle
  playlist player``, so MPD wakes us on every queue or player change, ours
  included. After each of our own commands we take a ``Mark`` of the server;
  anything found different later was another client's doing. A pause or
  stop by them is never undone; a queue edit holds switching for
  ``manual_hold_s``. Our own edits cannot be mistaken for theirs because the
  worker looks at the server only between them.
* **Absence.** With ``on_absent = "pause"`` the music pauses when the mood
  becomes absent and that pause, and only that one, is lifted when a face
  returns.
* **Degrading.** ``commands`` is read on connect; a missing ``crossfade``,
  ``shuffle`` or ``partition`` is logged once and skipped, and so is a
  ``crossfade`` the server lists but refuses (Mopidy-MPD). A partition
  without an audio output is logged once as well: MPD creates partitions
  without one, and taking the user's output away from the main queue is not
  ours to decide.
* **Outages.** A connection counts once its first ``status`` is answered
  (``edgemood.sinks.mpd_session``). Reconnects back off from 1 s to 30 s
  with jitter; the backoff starts again only after a session that lasted
  ``STABLE_S``.
  After a reconnect the queue is trusted only if it is still the one we
  left; otherwise (an MPD restart empties the queue) the wanted playlist is
  loaded again, within the manners above. A ``status`` every ``KEEPALIVE_S``
  keeps MPD's ``connection_timeout`` from closing the idle command
  connection and notices a dead server.
* **No silent deaths.** Both threads catch everything at their top: an
  unexpected error is logged once with its traceback and the session is
  renewed. What belongs to one connection (its commands, whether its idle
  connection was lost) lives in its ``Session``, so a late-dying idle
  thread of an old session cannot end the next one.

Errors (a missing playlist, an unreachable server) go to the log, to
``health()["last_error"]`` and to ``on_error``, once per occurrence rather
than once per retry; a playlist that failed is not tried again until another
one was asked for in between or the connection was renewed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from mpd import CommandError, FailureResponseCode, MPDClient, MPDError

from edgemood.config import MpdConfig
from edgemood.errors import EdgemoodError
from edgemood.platform.backoff import Backoff
from edgemood.sinks.etiquette import PAUSE, PLAY, ListenerChange, Manners, Mark, Step, listener_change
from edgemood.sinks.mpd_session import Session, address, describe, failure, open_session, supported
from edgemood.sinks.mpd_switch import OPTIONAL_COMMANDS, plan_switch

log = logging.getLogger(__name__)

#: Seconds between status checks when nothing happens; well under MPD's
#: default ``connection_timeout`` of 60 s.
KEEPALIVE_S = 30.0
#: Reconnect delays: the shared backoff (1 s doubling to 30 s, jittered).
BACKOFF = Backoff()
#: A session that lasted this long (s) was healthy: the next outage's backoff starts from the beginning.
STABLE_S = 30.0
#: How long ``stop()`` waits for the worker thread.
STOP_WAIT_S = 2.0
#: How long (s) the player may take to reach the state we commanded. MPD is
#: there at once; Mopidy starts playing a moment after it answered ``play``.
SETTLE_S = 2.0
#: MPD subsystems whose changes can be another client's doing.
WATCHED = ("playlist", "player")


class MpdSink:
    """Keeps MPD playing the playlist the daemon last asked for, as far as the listener lets it."""

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
        # Shared with the caller's and the idle thread; guarded by _cond.
        self._desired: str | None = None
        self._absent = False
        self._failed: str | None = None
        self._poked = False
        self._stopping = False
        self._connected = False
        self._loaded: str | None = None
        self._manners = Manners()
        self._last_error: str | None = None
        self._reported: str | None = None
        self._sessions = 0
        self._warned: set[str] = set()
        # The worker's own.
        self._mark: Mark | None = None
        self._kept_song: str | None = None

    # -- the caller's side ------------------------------------------------

    def start(self) -> None:
        """Start the worker thread; returns at once, connecting happens there."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="edgemood-mpd", daemon=True)
            self._thread.start()

    def play_playlist(self, name: str | None, absent: bool = False) -> None:
        """Ask for a stored playlist (None: keep the one asked for); the latest request wins.

        ``absent``: nobody is in front of the camera; with ``on_absent =
        "pause"`` the music pauses then, and resumes at the first call without it.
        """
        with self._cond:
            changed = False
            if name is not None and name != self._desired:
                self._desired = name
                self._failed = None
                changed = True
            if absent != self._absent:
                self._absent = absent
                self._manners.absence(absent, pause=self._config.on_absent == "pause")
                changed = True
            if changed:
                self._poked = True
                self._cond.notify()

    def health(self) -> dict[str, Any]:
        """A snapshot for diagnostics: ``held_until`` is in the sink's clock (monotonic)."""
        with self._cond:
            return {
                "connected": self._connected,
                "playlist": self._loaded,
                "held_until": self._manners.held_until,
                "stopped_by_listener": self._manners.listener_stopped,
                "paused_for_absence": self._manners.own_pause,
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
        """Connect, serve, reconnect with backoff; nothing but ``stop()`` ends this loop."""
        failures = 0
        while not self._stopping:
            session: Session | None = None
            try:
                session = self._open_session()
                self._serve(session)
            except (MPDError, OSError, EdgemoodError) as exc:
                if not self._stopping:
                    self._report(failure(self._config, session is not None, exc))
            except Exception as exc:  # a worker that died would leave the music stuck for good
                self._report(f"MPD sink failed unexpectedly ({type(exc).__name__}: {exc}); reconnecting", traceback=True)
            finally:
                if session is not None:
                    session.close()
                    with self._cond:
                        self._connected = False
            if session is not None and self._clock() - session.opened_at >= STABLE_S:
                failures = 0
            failures += 1
            self._sleep(BACKOFF.delay(failures))

    def _sleep(self, seconds: float) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._stopping, timeout=seconds)

    def _open_session(self) -> Session:
        """Both connections (``open_session``) and the idle thread; the session now counts as connected."""
        session = open_session(self._config, self._warn_once, opened_at=self._clock())
        session.thread = threading.Thread(target=self._watch, args=(session,), name="edgemood-mpd-idle", daemon=True)
        session.thread.start()
        with self._cond:
            self._connected = True
            self._sessions += 1
            self._failed = None
            self._reported = None
        log.info("connected to MPD at %s (protocol %s)", address(self._config), session.client.mpd_version)
        return session

    def _warn_once(self, key: str, message: str, *args: object, traceback: bool = False) -> None:
        with self._cond:
            if key in self._warned:
                return
            self._warned.add(key)
        log.log(logging.ERROR if traceback else logging.WARNING, message, *args, exc_info=traceback)

    def _watch(self, session: Session) -> None:
        """The idle connection: pokes the worker on every change MPD reports; ends only its own session."""
        reason = "the idle connection was closed"
        try:
            while True:
                session.watcher.idle(*WATCHED)
                with self._cond:
                    self._poked = True
                    self._cond.notify()
        except (MPDError, OSError) as exc:
            reason = f"the idle connection was closed: {describe(exc)}"
        except Exception as exc:  # a watcher that died silently would leave the listener's changes unseen
            reason = f"the idle connection failed ({type(exc).__name__}: {exc})"
            if not session.closing:
                self._warn_once(f"idle:{type(exc).__name__}:{exc}", "MPD sink: %s; reconnecting", reason, traceback=True)
        finally:
            with self._cond:
                session.lost = reason
                self._cond.notify()

    def _serve(self, session: Session) -> None:
        client = session.client
        status = session.status
        if self._mark is None or not self._mark.same_queue(status):
            # Not the queue we left (first connect, or MPD restarted): only its state speaks.
            with self._cond:
                self._loaded = None
                self._manners.fresh(status)
            self._kept_song = None
            self._mark = Mark.of(status)
        while True:
            status = self._observe(client, status)
            status = self._act(session, status)
            with self._cond:
                self._cond.wait_for(
                    lambda: self._stopping or self._poked or session.lost is not None, timeout=self._wait_s()
                )
                if self._stopping:
                    return
                if session.lost is not None:
                    raise MPDError(session.lost)
                self._poked = False
            status = client.status()

    def _wait_s(self) -> float:
        held_until = self._manners.held_until
        if held_until is None:
            return KEEPALIVE_S
        return max(0.0, min(KEEPALIVE_S, held_until - self._clock()))

    def _observe(self, client: MPDClient, status: dict[str, str]) -> dict[str, str]:
        """Take in other clients' changes and finish a ``track_end`` switch; returns the fresh status."""
        assert self._mark is not None
        change = listener_change(self._mark, status)
        self._mark = Mark.of(status)
        if change is not None:
            self._respect(change)
        if self._kept_song is not None and status.get("state") == PLAY and status.get("songid") != self._kept_song:
            try:
                client.deleteid(self._kept_song)
            except CommandError as exc:
                if exc.errno != FailureResponseCode.NO_EXIST:
                    raise
            self._kept_song = None
            status = client.status()
            self._mark = Mark.of(status)
        return status

    def _respect(self, change: ListenerChange) -> None:
        hold_s = self._config.manual_hold_s
        with self._cond:
            self._manners.listener(change, self._clock(), hold_s)
            if change.queue:
                self._loaded = None
            stopped = self._manners.listener_stopped
        if change.queue:
            self._kept_song = None
        outcomes = [f"automatic switching held for {hold_s:g} s"] if change.queue and hold_s > 0 else []
        if stopped:
            outcomes.append("edgemood starts nothing until someone plays again")
        elif change.player == PLAY and not outcomes:
            outcomes.append("following the mood again")
        log.info("another MPD client %s%s", change.describe(), "".join(f"; {o}" for o in outcomes))

    def _act(self, session: Session, status: dict[str, str]) -> dict[str, str]:
        """Do the one step the manners allow now; returns the status after it."""
        with self._cond:
            if self._manners.release_hold(self._clock()):
                log.info("manual hold over; automatic switching resumes")
            desired = self._desired
            switch_wanted = desired is not None and desired not in (self._loaded, self._failed)
            step = self._manners.next_step(
                state=status.get("state", "stop"),
                switch_wanted=switch_wanted,
                absent=self._absent,
                autoplay=self._config.autoplay,
            )
        if step is Step.NOTHING:
            return status
        client = session.client
        if step is Step.SWITCH:
            assert desired is not None
            if not self._switch(session, status, desired):
                return client.status()
        else:
            client.pause(1 if step is Step.PAUSE else 0)
            log.info("MPD: %s", "paused: nobody is there" if step is Step.PAUSE else "resumed: a face is back")
        status = self._settle(client, PAUSE if step is Step.PAUSE else PLAY)
        with self._cond:
            self._manners.done(step)
        return status

    def _settle(self, client: MPDClient, state: str) -> dict[str, str]:
        """The status once the player shows the ``state`` we commanded; the mark expects that state.

        Marking what we commanded rather than a moment's reading keeps a
        player that gets there late (Mopidy) from looking like another client.
        """
        deadline = self._clock() + SETTLE_S
        status = client.status()
        while status.get("state") != state and self._clock() < deadline and not self._stopping:
            time.sleep(0.02)
            status = client.status()
        self._mark = Mark(status.get("playlist"), status.get("playlistlength"), state)
        return status

    def _switch(self, session: Session, status: dict[str, str], desired: str) -> bool:
        """Replace the queue with ``desired`` and play it; False (reported) when the server refused."""
        client = session.client
        self._set_crossfade(session, status)
        plan = plan_switch(status, desired, switch=self._config.switch, shuffle=self._config.shuffle)
        commands = [
            command
            for command in plan.commands
            if command[0] not in OPTIONAL_COMMANDS or supported(session.commands, command[0], self._warn_once)
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
                message = f"MPD refused to play playlist '{desired}': {describe(exc)}"
            with self._cond:
                self._failed = desired
            self._report(message)
            self._mark = Mark.of(client.status())
            return False
        self._kept_song = plan.kept_song
        with self._cond:
            self._loaded = desired
            self._reported = None
        log.info("MPD: playing playlist '%s'%s", desired, " after the current song" if plan.kept_song else "")
        return True

    def _set_crossfade(self, session: Session, status: Mapping[str, str]) -> None:
        """Set ``crossfade_s`` if the server has another value; a server that refuses it is left alone."""
        seconds = round(self._config.crossfade_s)  # MPD's crossfade takes whole seconds
        if status.get("xfade", "0") == str(seconds) or "crossfade" in session.refused:
            return
        if not supported(session.commands, "crossfade", self._warn_once):
            return
        try:
            session.client.crossfade(seconds)
        except (CommandError, ValueError) as exc:
            # Mopidy-MPD lists crossfade but answers "ACK [0@0] {crossfade} Not implemented",
            # and python-mpd2 raises ValueError for that unknown error code 0.
            session.refused.add("crossfade")
            reason = describe(exc) if isinstance(exc, CommandError) else "not implemented"
            self._warn_once("crossfade", "MPD server lacks 'crossfade' (%s); carrying on without it", reason)

    def _report(self, message: str, traceback: bool = False) -> None:
        """Log and hand on an error once, however often a retry runs into it again."""
        with self._cond:
            self._last_error = message
            if message == self._reported:
                return
            self._reported = message
        log.log(logging.ERROR if traceback else logging.WARNING, "%s", message, exc_info=traceback)
        if self._on_error is not None:
            try:
                self._on_error(message)
            except Exception:  # a broken callback must not stop the music
                log.exception("MPD sink: on_error callback failed")
