"""The MPD sink's manners: who changed the player, and what edgemood may do next.

MPD's idle events say *that* the queue or the player changed, never *who*
changed it. So the sink keeps a ``Mark`` of the server as its own last look or
command left it; whatever it finds different later was done by another
client, that is, by the listener. These rules decide, without any I/O:

* A pause or a stop by the listener is their decision: nothing starts or
  un-pauses until they play again, however long that takes and whatever the
  mood does meanwhile. Once they play, edgemood follows the mood again.
* A queue edit by the listener holds automatic switching for
  ``manual_hold_s`` (their album is not replaced under them).
* A queue that simply ran out is nobody's decision. MPD and Mopidy-MPD tell
  it apart from a stop: a stopped player keeps its current ``song``, a queue
  that ran out has none.
* ``autoplay`` decides whether a mood may start music on an idle player (one
  that nobody stopped); with it off, playlists change only while music plays.
* ``on_absent = "pause"`` pauses when the mood becomes absent and resumes when
  a face returns, but only that pause, made by edgemood itself, is ever
  resumed: any touch by the listener in between makes the player theirs.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

PLAY, PAUSE, STOP = "play", "pause", "stop"


@dataclass(frozen=True)
class Mark:
    """The server as edgemood last saw or left it: queue version and length, player state."""

    version: str | None
    length: str | None
    state: str

    @classmethod
    def of(cls, status: Mapping[str, str]) -> Mark:
        """The mark of an MPD ``status`` reply."""
        return cls(status.get("playlist"), status.get("playlistlength"), status.get("state", STOP))

    def same_queue(self, status: Mapping[str, str]) -> bool:
        """Whether ``status`` still shows the queue of this mark (after a reconnect: no MPD restart, no edit)."""
        return (status.get("playlist"), status.get("playlistlength")) == (self.version, self.length)


@dataclass(frozen=True)
class ListenerChange:
    """What another client did: edited the queue, and/or put the player in a new state."""

    queue: bool
    #: ``"play"``, ``"pause"`` or ``"stop"``: the state the listener chose; None: the player was not touched.
    player: str | None

    def describe(self) -> str:
        """For the log: "another MPD client ..." followed by this."""
        parts = ["changed the queue"] if self.queue else []
        if self.player is not None:
            parts.append({PLAY: "started playback", PAUSE: "paused playback", STOP: "stopped playback"}[self.player])
        return " and ".join(parts)


def listener_change(mark: Mark, status: Mapping[str, str]) -> ListenerChange | None:
    """What another client did since ``mark`` was taken, or None.

    A skip or a seek changes neither the queue version nor the state, so it
    is not counted. A stop without a current song on an untouched queue is a
    queue that ran out, not a decision.
    """
    queue = status.get("playlist") != mark.version
    state = status.get("state", STOP)
    ran_out = state == STOP and mark.state == PLAY and not queue and "song" not in status
    player = state if state != mark.state and not ran_out else None
    return ListenerChange(queue, player) if queue or player is not None else None


def stopped_by_someone(status: Mapping[str, str]) -> bool:
    """On a player edgemood has not touched yet: paused, or stopped on a song, is someone's decision.

    An idle player (a fresh MPD, an empty queue, a queue that ran out) has no
    current song when stopped; one stopped on a song was stopped by a person.
    """
    state = status.get("state", STOP)
    return state == PAUSE or (state == STOP and "song" in status)


class Step(enum.Enum):
    """What the sink does next."""

    NOTHING = "nothing"
    #: Load the wanted playlist and play it.
    SWITCH = "switch"
    #: Pause because nobody is there (``on_absent = "pause"``).
    PAUSE = "pause"
    #: Resume edgemood's own pause: a face is back.
    RESUME = "resume"


@dataclass
class Manners:
    """What the listener decided (edgemood respects it) and what edgemood did itself (it may undo that)."""

    #: The listener paused or stopped and has not played since: nothing may start.
    listener_stopped: bool = False
    #: The pause now on was made by edgemood for an absence; the only one it may resume.
    own_pause: bool = False
    #: Automatic switching is held until then (the sink's monotonic clock), after a queue edit.
    held_until: float | None = None
    #: The mood just became absent and ``on_absent = "pause"``: pause at the next step if music plays.
    pause_due: bool = False

    def fresh(self, status: Mapping[str, str]) -> None:
        """A player edgemood has not touched (first connect, or MPD restarted): only its state speaks."""
        self.listener_stopped = stopped_by_someone(status)
        self.own_pause = False

    def listener(self, change: ListenerChange, now: float, hold_s: float) -> None:
        """Take in another client's change: hold on a queue edit, respect a pause or stop, follow on play."""
        if change.queue and hold_s > 0:
            self.held_until = now + hold_s
        if change.player in (PAUSE, STOP):
            self.listener_stopped = True
        elif change.player == PLAY:
            self.listener_stopped = False
        elif change.queue and self.own_pause:
            self.listener_stopped = True  # they edited the queue edgemood paused: the pause is theirs now
        self.own_pause = False  # whatever they touched, a pause that follows is not edgemood's to lift

    def absence(self, absent: bool, pause: bool) -> None:
        """The mood became absent (``absent``) or a face came back; ``pause``: ``on_absent = "pause"``."""
        self.pause_due = absent and pause

    def release_hold(self, now: float) -> bool:
        """End a hold whose time is up; True when one just ended."""
        if self.held_until is not None and now >= self.held_until:
            self.held_until = None
            return True
        return False

    def next_step(self, *, state: str, switch_wanted: bool, absent: bool, autoplay: bool) -> Step:
        """What to do with a player in ``state``; ``switch_wanted``: a playlist is wanted that is not loaded.

        A due pause is used up here whatever the outcome: the pause belongs to
        the moment the mood became absent, so music the listener starts later,
        still unseen, is not paused.
        """
        pause_due, self.pause_due = self.pause_due, False
        if self.listener_stopped:
            return Step.NOTHING
        if self.own_pause and state == PAUSE:
            if absent:
                return Step.NOTHING
            return Step.SWITCH if switch_wanted and self.held_until is None else Step.RESUME
        if pause_due and state == PLAY:
            return Step.PAUSE
        if self.held_until is not None or not switch_wanted:
            return Step.NOTHING
        if state == PLAY or (state == STOP and autoplay):
            return Step.SWITCH
        return Step.NOTHING

    def done(self, step: Step) -> None:
        """Record a step the server carried out."""
        if step is Step.PAUSE:
            self.own_pause = True
        elif step in (Step.RESUME, Step.SWITCH):
            self.own_pause = False
