"""A throw-away MPD on a localhost port, with generated music, for the demo and the tests.

Everything lives in one working directory: the config, the music, the stored
playlists, the database and the log, so nothing touches ``/run`` or ``/var``.
There is no ``state_file`` on purpose: a restart then loses the queue, the
harshest case the MPD sink has to recover from. The outputs use MPD's
``null`` plugin, which keeps real-time pace without a sound card, so "what is
playing" behaves as on a real player. Every generated track carries a title
and, for the default playlists, a genre tag (RIFF ``INFO`` chunk, which MPD and
Mopidy both read), so ``edgemood playlists --create`` has a library to work on.
"""

from __future__ import annotations

import math
import struct
import subprocess
import wave
from collections.abc import Mapping
from pathlib import Path

from edgemood.config import DEFAULT_GENRES, DEFAULT_PLAYLISTS
from edgemood.demo.services import LocalService, find_binary, free_port, poll_until, wait_for_port

HOST = "127.0.0.1"
#: Seconds per generated track: long enough that the current song is stable
#: during a test, short enough to keep the files small (8 kHz, 8 bit, mono).
TRACK_S = 60.0
SAMPLE_RATE = 8000
TRACKS_PER_PLAYLIST = 3
OUTPUTS = ("null", "spare")


def default_playlists() -> dict[str, int]:
    """The stored playlists the default ``[playlists]`` mapping refers to, 3 tracks each."""
    return {name: TRACKS_PER_PLAYLIST for name in dict.fromkeys(DEFAULT_PLAYLISTS.values())}


def mpd_conf(workdir: Path, port: int, password: str = "") -> str:
    """The server config: localhost only, ``null`` outputs, no zeroconf, no auto-update.

    Two outputs: ``null`` for the default partition and ``spare``, which a
    client can move into its own partition (``moveoutput spare``); a new MPD
    partition starts without any output and cannot play.
    """
    lines = [
        f'music_directory "{workdir / "music"}"',
        f'playlist_directory "{workdir / "playlists"}"',
        f'db_file "{workdir / "database"}"',
        f'log_file "{workdir / "mpd.log"}"',
        f'bind_to_address "{HOST}"',
        f'port "{port}"',
        'auto_update "no"',
        'zeroconf_enabled "no"',
    ]
    for name in OUTPUTS:
        lines += ["audio_output {", '    type "null"', f'    name "{name}"', '    mixer_type "none"', "}"]
    if password:
        lines += [f'password "{password}@read,add,control,admin"', 'default_permissions ""']
    return "\n".join(lines) + "\n"


def default_genres(playlists: Mapping[str, int]) -> dict[str, str]:
    """The genre tag of each generated playlist's tracks: the first default genre of its name, if any."""
    return {name: DEFAULT_GENRES[name][0] for name in playlists if name in DEFAULT_GENRES}


def riff_info(tags: Mapping[str, str]) -> bytes:
    """A RIFF ``LIST``/``INFO`` chunk: ``{"INAM": title, "IGNR": genre, ...}``, NUL-ended, padded to even sizes."""
    body = b"INFO"
    for key, value in tags.items():
        data = value.encode("utf-8") + b"\0"
        data += b"\0" * (len(data) % 2)
        body += key.encode("ascii") + struct.pack("<I", len(data)) + data
    return b"LIST" + struct.pack("<I", len(body)) + body


def write_tone(path: Path, frequency: int, seconds: float = TRACK_S, tags: Mapping[str, str] | None = None) -> None:
    """A mono 8-bit sine WAV, tagged with ``tags`` (see ``riff_info``); one second is computed and repeated.

    An integer ``frequency`` makes that second a whole number of periods, so
    the repeats join without clicks.
    """
    period = [round(128 + 60 * math.sin(2 * math.pi * i * frequency / SAMPLE_RATE)) for i in range(SAMPLE_RATE)]
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(1)
        out.setframerate(SAMPLE_RATE)
        whole, rest = divmod(int(seconds * SAMPLE_RATE), SAMPLE_RATE)
        out.writeframes(bytes(period) * whole + bytes(period[:rest]))
    if tags:
        riff = bytearray(path.read_bytes())
        chunk = riff_info(tags)
        riff[4:8] = struct.pack("<I", len(riff) - 8 + len(chunk))  # the RIFF size covers the new chunk
        path.write_bytes(bytes(riff) + chunk)


def write_tracks(music: Path, playlists: Mapping[str, int], genres: Mapping[str, str]) -> dict[str, list[str]]:
    """Tracks ``<name>-<n>.wav`` in ``music``, titled, with ``genres[name]`` as genre tag when given.

    Returns each name's files, in order.
    """
    music.mkdir(parents=True, exist_ok=True)
    tone = 220
    files: dict[str, list[str]] = {}
    for name, count in playlists.items():
        files[name] = [f"{name}-{n}.wav" for n in range(1, count + 1)]
        for n, file in enumerate(files[name], start=1):
            tags = {"INAM": f"{name} {n}", "IART": "edgemood"}
            if name in genres:
                tags["IGNR"] = genres[name]
            write_tone(music / file, tone, tags=tags)
            tone += 20
    return files


def write_library(workdir: Path, playlists: Mapping[str, int], genres: Mapping[str, str] | None = None) -> None:
    """Tracks ``music/<name>-<n>.wav`` and a stored playlist ``<name>.m3u`` per name.

    ``genres`` maps a name to its tracks' genre tag (default: ``default_genres``).
    """
    stored = workdir / "playlists"
    stored.mkdir(parents=True, exist_ok=True)
    tracks = write_tracks(workdir / "music", playlists, default_genres(playlists) if genres is None else genres)
    for name, files in tracks.items():
        (stored / f"{name}.m3u").write_text("".join(f"{file}\n" for file in files), encoding="utf-8")


def wait_for_database(host: str, port: int, password: str = "", timeout: float = 10.0) -> None:
    """Ask MPD to scan the music directory and block until the scan is over."""
    from mpd import MPDClient  # imported here: only the demo and the tests start a server

    client = MPDClient()
    client.timeout = timeout
    client.connect(host, port)
    try:
        if password:
            client.password(password)
        client.update()
        poll_until(
            lambda: "updating_db" not in client.status(),
            timeout,
            f"mpd did not finish its database update within {timeout} s",
        )
    finally:
        client.disconnect()


def start_mpd(
    workdir: Path,
    playlists: Mapping[str, int] | None = None,
    port: int | None = None,
    password: str = "",
    genres: Mapping[str, str] | None = None,
) -> LocalService:
    """Start MPD with generated tracks and stored playlists; return once they are loadable.

    ``playlists`` maps a stored-playlist name to its number of tracks
    (default: the playlists of the default mood mapping, 3 tracks each);
    ``genres`` a name to its tracks' genre tag (default: ``default_genres``).
    ``password`` (optional) then grants every permission and anonymous
    clients none. ``restart()`` on the result keeps the port; the database and
    the playlists survive it, the queue does not.
    """
    binary = find_binary("mpd")
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    write_library(workdir, default_playlists() if playlists is None else playlists, genres)
    conf = workdir / "mpd.conf"
    conf.write_text(mpd_conf(workdir, port, password), encoding="utf-8")
    argv = [binary, "--no-daemon", str(conf)]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    service = LocalService(name="mpd", host=HOST, port=port, workdir=workdir, process=process, argv=argv)
    try:
        wait_for_port(HOST, port, process)
        wait_for_database(HOST, port, password)
    except BaseException:
        service.stop()
        raise
    return service
