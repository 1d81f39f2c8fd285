"""Which stored playlists the moods need, and which of the library's genres fill each: pure rules.

``edgemood playlists`` asks MPD what exists and which genre tags the library
has, and this module decides, without any I/O, what to report and what to
build. Genre names are compared by their letters and digits only, ignoring
case, so the tag spellings of different taggers meet: "Hip-Hop", "hip hop" and
"HipHop" are one genre, and so are "Lo-Fi" and "lofi".
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from edgemood.classes import CLASSES


def genre_key(name: str) -> str:
    """A genre name reduced to lowercase letters and digits, the form genres are matched in."""
    return "".join(c for c in name.casefold() if c.isalnum())


def moods_by_playlist(playlists: Mapping[str, str]) -> dict[str, list[str]]:
    """Each stored playlist the moods use, with its moods, in the moods' order."""
    grouped: dict[str, list[str]] = {}
    for mood in CLASSES:
        if mood in playlists:
            grouped.setdefault(playlists[mood], []).append(mood)
    return grouped


def matching_genres(library: Iterable[str], wanted: Sequence[str]) -> list[str]:
    """The library's genre tags (as spelled there) that are one of ``wanted``, sorted."""
    keys = {genre_key(name) for name in wanted}
    return sorted({tag for tag in library if tag.strip() and genre_key(tag) in keys}, key=lambda tag: (tag.casefold(), tag))


class Action(enum.Enum):
    """What ``edgemood playlists`` does with one stored playlist."""

    #: Listing only: nothing is built.
    LIST = "list"
    #: It exists and stays as it is.
    KEEP = "keep"
    #: It is missing and gets the songs of its genres.
    CREATE = "create"
    #: It exists and is rebuilt from its genres (``--replace``).
    REPLACE = "replace"
    #: It should be built but no genre of it is in the library (or it has no genres configured).
    NO_SONGS = "no songs"


@dataclass(frozen=True)
class PlaylistPlan:
    """One stored playlist: who plays it, what is on the server, what to do."""

    name: str
    moods: tuple[str, ...]
    #: Songs in the stored playlist now; None: it does not exist.
    songs: int | None
    action: Action
    #: The genre names configured for it (``[genres]``).
    wanted: tuple[str, ...]
    #: The library's tags among them, whose songs it gets (CREATE/REPLACE).
    genres: tuple[str, ...] = ()


def plan_playlists(
    playlists: Mapping[str, str],
    genres: Mapping[str, Sequence[str]],
    existing: Mapping[str, int],
    library_genres: Iterable[str],
    *,
    create: bool,
    replace: bool,
) -> list[PlaylistPlan]:
    """What to do with each stored playlist the moods use.

    ``existing`` maps the server's stored playlists to their song counts,
    ``library_genres`` is MPD's ``list genre``. Without ``create`` every
    playlist is only listed; with it a missing one is built from the songs of
    its genres, and an existing one only when ``replace`` is given. A playlist
    none of whose genres the library has is reported, never emptied.
    """
    library = list(library_genres)
    plans = []
    for name, moods in moods_by_playlist(playlists).items():
        songs = existing.get(name)
        wanted = tuple(genres.get(name, ()))
        found = tuple(matching_genres(library, wanted))
        if not create:
            action = Action.LIST
        elif songs is not None and not replace:
            action = Action.KEEP
        elif not found:
            action = Action.KEEP if songs is not None else Action.NO_SONGS
        else:
            action = Action.CREATE if songs is None else Action.REPLACE
        plans.append(PlaylistPlan(name, tuple(moods), songs, action, wanted, found))
    return plans


def has_genre_tags(library_genres: Iterable[str]) -> bool:
    """Whether any song carries a genre tag (MPD lists an empty genre for the untagged ones)."""
    return any(tag.strip() for tag in library_genres)
