"""``edgemood playlists``: the mood -> playlist mapping as MPD has it, and the first run's playlists built.

Listing is read-only. ``--create`` builds the stored playlists that do not
exist yet from the library's genre tags (``[genres]``, whose defaults the
README explains), and never touches an existing one unless ``--replace``.
Songs are added with ``playlistadd``, which MPD and Mopidy-MPD both have; the
queue and playback are never touched.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mpd import MPDClient

    from edgemood.config import Config
    from edgemood.sinks.playlist_plan import PlaylistPlan

#: Songs per command list when building a playlist (MPD caps a list's size).
BATCH = 500

EPILOG = """\
Each stored playlist the [playlists] mapping uses is shown with its moods and
how many songs it has on the server (or that it is missing).

--create builds each missing one from the songs whose genre tag is one of its
[genres] (matched ignoring case, spaces and punctuation) and says how many
each got. An existing playlist is left alone unless --replace is given too;
a playlist none of whose genres the library has is never emptied.

Exit status: 0 ok, 1 MPD unreachable or a playlist still missing after
--create, 2 bad usage or configuration.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``edgemood playlists``."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    parser.add_argument(
        "-c", "--config", type=Path, default=None, help="TOML config (default /etc/edgemood/edgemood.toml if present)"
    )
    parser.add_argument("--create", action="store_true", help="build the missing playlists from the library's genre tags")
    parser.add_argument("--replace", action="store_true", help="with --create: rebuild existing playlists too")


def run(args: argparse.Namespace) -> int:
    """List (or build) the stored playlists; see ``EPILOG`` for the exit status."""
    from mpd import MPDError

    from edgemood.config import load_config
    from edgemood.errors import EdgemoodError, UsageError
    from edgemood.sinks.mpd_session import open_client

    if args.replace and not args.create:
        raise UsageError("--replace only works together with --create")
    config = load_config(args.config)
    where = f"MPD at {config.mpd.host}:{config.mpd.port}"
    try:
        client = open_client(config.mpd)
    except (MPDError, OSError) as exc:
        raise EdgemoodError(f"cannot reach {where}: {_reason(exc)}") from None
    try:
        print(f"MPD at {config.mpd.host}:{config.mpd.port} (protocol {client.mpd_version})")
        return _report(client, config, args.create, args.replace)
    except (MPDError, OSError) as exc:
        raise EdgemoodError(f"{where} failed: {_reason(exc)}") from None
    finally:
        try:
            client.disconnect()
        except (MPDError, OSError):
            pass  # already gone


def _reason(exc: BaseException) -> str:
    from mpd import CommandError

    if isinstance(exc, CommandError) and exc.msg:
        return f"{exc.msg} ({exc.command})" if exc.command else exc.msg
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _report(client: MPDClient, config: Config, create: bool, replace: bool) -> int:
    """Print one line per stored playlist (and build them with ``create``); the exit status."""
    from edgemood.sinks.playlist_plan import has_genre_tags, moods_by_playlist, plan_playlists

    stored = {entry["playlist"] for entry in client.listplaylists()}
    existing = {name: len(client.listplaylist(name)) for name in moods_by_playlist(config.playlists) if name in stored}
    library = [entry["genre"] for entry in client.list("genre")] if create else []
    plans = plan_playlists(config.playlists, config.genres, existing, library, create=create, replace=replace)
    width = max(len(plan.name) for plan in plans)
    if not create:
        for plan in plans:
            songs = "missing" if plan.songs is None else f"{plan.songs} songs"
            print(f"  {plan.name:<{width}}  {songs:<10}  {', '.join(plan.moods)}")
        missing = [plan.name for plan in plans if plan.songs is None]
        if missing:
            print(f"missing: {', '.join(missing)}; `edgemood playlists --create` builds them from the library's genre tags")
        return 0
    if not has_genre_tags(library):
        print(
            "the library has no genre tags (MPD's `list genre` is empty), so no playlist can be built from them: "
            "tag your music (e.g. with MusicBrainz Picard or beets) and run `mpc update`, "
            "or make the playlists by hand (mpc add ...; mpc save NAME)"
        )
    for plan in plans:
        print(f"  {plan.name:<{width}}  {_build(client, plan, replace)}")
    return 1 if any(plan.songs is None and not plan.genres for plan in plans) else 0


def _build(client: MPDClient, plan: PlaylistPlan, replace: bool) -> str:
    """Carry out one playlist's plan; the line that says what happened."""
    from edgemood.sinks.playlist_plan import Action

    if plan.action is Action.KEEP:
        if plan.songs is not None and replace:
            return f"kept ({plan.songs} songs): the library has none of {_genres(plan.wanted)}"
        return f"kept: exists with {plan.songs} songs (--replace rebuilds it)"
    if plan.action is Action.NO_SONGS:
        if not plan.wanted:
            return f"not created: no genres for it; set [genres] {plan.name} = [\"...\"]"
        return f"not created: the library has no songs tagged {_genres(plan.wanted)} (change [genres] {plan.name})"
    songs, counts = _songs(client, plan.genres)
    commands: list[tuple[str, Sequence[Any]]] = [("playlistclear", (plan.name,))] if plan.action is Action.REPLACE else []
    commands += [("playlistadd", (plan.name, file)) for file in songs]
    for start in range(0, len(commands), BATCH):
        client.command_list_ok_begin()
        for name, arguments in commands[start : start + BATCH]:
            getattr(client, name)(*arguments)
        client.command_list_end()
    verb = "created" if plan.action is Action.CREATE else "replaced"
    return f"{verb} with {len(songs)} songs ({', '.join(f'{genre} {count}' for genre, count in counts.items())})"


def _songs(client: MPDClient, genres: Sequence[str]) -> tuple[list[str], dict[str, int]]:
    """The files tagged with any of ``genres`` (each once, sorted), and how many each genre has."""
    files: set[str] = set()
    counts: dict[str, int] = {}
    for genre in genres:
        found = [song["file"] for song in client.find("genre", genre)]
        counts[genre] = len(found)
        files.update(found)
    return sorted(files), counts


def _genres(names: Sequence[str]) -> str:
    shown = ", ".join(names[:6])
    return shown + (f" (+{len(names) - 6} more)" if len(names) > 6 else "")
