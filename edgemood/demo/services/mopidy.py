"""A throw-away Mopidy with its MPD frontend on a localhost port, for the tests.

Mopidy is the other server edgemood promises to work with, and it differs
from MPD in ways that matter (it lacks partitions, lists ``crossfade`` but
does not implement it, numbers its queue versions from 0). So the tests run
against the real thing: ``mopidy`` with ``mopidy-mpd`` and ``mopidy-local``
(Debian packages of those names), started from a config in one working
directory. The music is the same generated, genre-tagged tones as the local
MPD's (``edgemood.demo.services.mpd``); ``mopidy local scan`` indexes them before the
server starts, and the stored playlists are M3U files of ``local:track:``
URIs, which the local backend plays. Audio goes to GStreamer's ``fakesink``
with ``sync=true``, so songs take their real time as on a player.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path

from edgemood.demo.services import LocalService, ServiceError, find_binary, free_port, poll_until, wait_for_port
from edgemood.demo.services.mpd import HOST, default_genres, default_playlists, write_tracks

#: Seconds Mopidy may take to scan the library or come up (it starts in well under 2 s here).
START_TIMEOUT_S = 30.0


def mopidy_conf(workdir: Path, port: int) -> str:
    """The server config: MPD frontend on localhost only, local files and M3U playlists, nothing else."""
    return f"""\
[core]
cache_dir = {workdir / "cache"}
config_dir = {workdir / "config"}
data_dir = {workdir / "data"}

[logging]
verbosity = 0

[audio]
output = fakesink sync=true

[http]
enabled = false

[file]
enabled = false

[stream]
enabled = false

[m3u]
enabled = true
playlists_dir = {workdir / "playlists"}
base_dir = {workdir / "music"}

[local]
enabled = true
media_dir = {workdir / "music"}

[mpd]
enabled = true
hostname = {HOST}
port = {port}
zeroconf =
"""


def wait_for_playlists(host: str, port: int, names: set[str], timeout: float = START_TIMEOUT_S) -> None:
    """Block until Mopidy's MPD frontend lists every stored playlist in ``names``."""
    from mpd import MPDClient  # imported here: only the tests start a server

    client = MPDClient()
    client.timeout = timeout
    client.connect(host, port)
    try:
        poll_until(
            lambda: names <= {entry["playlist"] for entry in client.listplaylists()},
            timeout,
            f"mopidy did not list the playlists {sorted(names)} within {timeout} s",
        )
    finally:
        client.disconnect()


def start_mopidy(
    workdir: Path, playlists: Mapping[str, int] | None = None, genres: Mapping[str, str] | None = None
) -> LocalService:
    """Start Mopidy with generated tracks and stored playlists; return once they are loadable.

    ``playlists`` and ``genres`` as for ``start_mpd``. ``restart()`` on the
    result keeps the port and the library; the queue is lost.
    """
    binary = find_binary("mopidy")
    workdir.mkdir(parents=True, exist_ok=True)
    playlists = default_playlists() if playlists is None else playlists
    tracks = write_tracks(workdir / "music", playlists, default_genres(playlists) if genres is None else genres)
    stored = workdir / "playlists"
    stored.mkdir(exist_ok=True)
    for name, files in tracks.items():
        (stored / f"{name}.m3u").write_text("".join(f"local:track:{file}\n" for file in files), encoding="utf-8")
    port = free_port()
    conf = workdir / "mopidy.conf"
    conf.write_text(mopidy_conf(workdir, port), encoding="utf-8")
    log = workdir / "mopidy.log"
    scan = subprocess.run(
        [binary, "--config", str(conf), "local", "scan"], capture_output=True, text=True, timeout=START_TIMEOUT_S
    )
    if scan.returncode != 0:
        tail = (scan.stderr or scan.stdout).strip().splitlines()[-1:] or ["no output"]
        raise ServiceError(f"mopidy local scan failed ({scan.returncode}): {tail[0]} (is mopidy-local installed?)")
    argv = [binary, "--config", str(conf)]
    with log.open("ab") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
    service = LocalService(name="mopidy", host=HOST, port=port, workdir=workdir, process=process, argv=argv)
    try:
        wait_for_port(HOST, port, process, timeout=START_TIMEOUT_S)
        wait_for_playlists(HOST, port, set(playlists))
    except ServiceError as exc:
        service.stop()
        raise ServiceError(f"{exc} (is mopidy-mpd installed? see {log})") from None
    except BaseException:
        service.stop()
        raise
    return service
