"""Which MPD commands replace the queue with a stored playlist, without I/O.

One command list: ``load`` first (a missing playlist then fails before
anything was removed), then delete the old songs, ``shuffle`` and ``play``.
With ``switch = "track_end"`` the song playing now is kept: everything around
it is deleted and the playlist is appended after it (and shuffled there); the
sink deletes the kept song once MPD has moved on. Kept apart from the sink's
worker so this order can be read and tested on its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from edgemood.sinks.etiquette import PLAY

#: Commands we can do without, each skipped with one log line when missing.
OPTIONAL_COMMANDS = ("crossfade", "shuffle")

#: A command for ``MPDClient``: its name, then its arguments.
MpdCommand = tuple[Any, ...]

@dataclass(frozen=True)
class SwitchPlan:
    """The commands that load a playlist, and the song left playing meanwhile."""

    commands: tuple[MpdCommand, ...]
    #: ``songid`` kept until it ends (``switch = "track_end"``), else None.
    kept_song: str | None


def plan_switch(status: Mapping[str, str], playlist: str, *, switch: str, shuffle: bool) -> SwitchPlan:
    """How to replace the queue described by ``status`` with a stored playlist.

    ``load`` comes before any deletion so that a missing playlist fails while
    the old queue is still intact. With ``switch = "track_end"`` and a song
    playing, that song stays at position 0 and the playlist follows it;
    otherwise the old queue goes and playback starts at the top of the new one.
    """
    length = int(status.get("playlistlength", "0"))
    commands: list[MpdCommand] = [("load", playlist)]
    if switch == "track_end" and status.get("state") == PLAY and "song" in status:
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

