"""Connections to MPD with python-mpd2: the one way to connect, and the sink's pair of them.

``open_client`` is how everything in edgemood reaches MPD (the sink, ``edgemood
doctor``, ``edgemood playlists``), so the config's address, timeout, password
and partition mean the same everywhere. ``open_session`` makes the sink's
pair: a command connection and a second one to park in ``idle``, counted as
connected only once a ``status`` is answered: a server that accepts the
socket but refuses commands (a password is needed) is a failed connection,
said in a line that tells what to do (``Refused``).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from mpd import CommandError, FailureResponseCode, MPDClient, MPDError

from edgemood.config import MpdConfig, read_secret

log = logging.getLogger(__name__)

#: How long closing a session waits for its idle thread.
IDLE_JOIN_S = 1.0

#: ``warn(key, message, *args)``: log ``message`` once per ``key`` (the sink's), or every time.
Warn = Callable[..., None]


def _log_warning(key: str, message: str, *args: object) -> None:
    """The default ``Warn`` for one-shot commands: each warning is logged (they connect once)."""
    log.warning(message, *args)


def describe(exc: BaseException) -> str:
    """An exception as a short phrase for one log line."""
    if isinstance(exc, CommandError) and exc.msg:
        return exc.msg
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def supported(commands: frozenset[str], command: str, warn: Warn, instead: str = "carrying on without it") -> bool:
    """Whether the server has ``command``; when it has not, ``warn`` says so and what happens instead."""
    if command in commands:
        return True
    warn(command, "MPD server lacks '%s'; %s", command, instead)
    return False


def open_client(config: MpdConfig, warn: Warn = _log_warning, check_outputs: bool = False) -> MPDClient:
    """One connection to the configured server: its timeout, password (when a file is set) and partition.

    A partition the server lacks the commands for is skipped with a warning
    (the default queue plays instead); with ``check_outputs`` a partition
    without an audio output is warned about, as nothing would be heard.
    """
    client = MPDClient()
    client.timeout = config.timeout_s
    client.connect(config.host, config.port)
    try:
        if config.password_file:
            client.password(read_secret(config.password_file))
        if config.partition:
            _enter_partition(client, config.partition, warn, check_outputs)
    except BaseException:
        disconnect(client)
        raise
    return client


def _enter_partition(client: MPDClient, name: str, warn: Warn, check_outputs: bool) -> None:
    """Create partition ``name`` if needed and switch ``client`` to it."""
    commands = frozenset(client.commands())
    instead = f"playing in the default queue instead of partition '{name}'"
    if not (supported(commands, "newpartition", warn, instead) and supported(commands, "partition", warn, instead)):
        return
    try:
        client.newpartition(name)
    except CommandError as exc:
        if exc.errno != FailureResponseCode.EXIST:
            raise
    client.partition(name)
    if check_outputs and not client.outputs():
        warn(
            f"no-output:{name}",
            "MPD partition '%s' has no audio output, so nothing will be heard; "
            "move one there (e.g. mpc --partition %s moveoutput NAME)",
            name,
            name,
        )


def disconnect(client: MPDClient) -> None:
    """Close ``client``; one that is already gone is fine."""
    try:
        client.disconnect()
    except (MPDError, OSError):
        pass  # the server may already be gone


def interrupt(client: MPDClient) -> None:
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


def address(config: MpdConfig) -> str:
    """The server as the user wrote it: ``host:port``, or a socket path / abstract name alone."""
    host = config.host
    return host if host.startswith(("/", "@")) else f"{host}:{config.port}"


def failure(config: MpdConfig, connected: bool, exc: BaseException) -> str:
    """The one line for a failed (``connected`` False) or lost connection."""
    if connected:
        return f"lost the connection to MPD at {address(config)}: {describe(exc)}"
    if isinstance(exc, Refused):
        return f"MPD at {address(config)} {exc}"
    return f"cannot connect to MPD at {address(config)}: {describe(exc)}"


class Refused(MPDError):
    """The server took the connection but refused a command needed to use it."""


def refusal(exc: CommandError, config: MpdConfig) -> Refused:
    """A command refused while connecting, as a line that says what to do."""
    hint = ""
    if exc.errno == FailureResponseCode.PERMISSION:
        hint = (
            "; the password in [mpd] password_file lacks that permission"
            if config.password_file
            else "; MPD wants a password: set [mpd] password_file to a file holding it"
        )
    return Refused(f"refused '{exc.command or 'status'}': {describe(exc)}{hint}")


@dataclass(eq=False)
class Session:
    """One connection pair and what belongs to it alone.

    ``client`` runs the commands, ``watcher`` is parked in idle by ``thread``.
    ``lost`` (guarded by the sink's lock) says why the idle connection ended;
    it is this session's, so an old idle thread dying late cannot end a newer
    session.
    """

    client: MPDClient
    watcher: MPDClient
    #: What the server offers (``commands``), and what it listed but refused.
    commands: frozenset[str]
    #: The first ``status`` reply, which proved the server takes our commands.
    status: dict[str, str]
    refused: set[str] = field(default_factory=set)
    thread: threading.Thread | None = None
    lost: str | None = None
    closing: bool = False
    opened_at: float = 0.0

    def close(self) -> None:
        """Stop the idle thread and drop both connections."""
        self.closing = True
        interrupt(self.watcher)
        if self.thread is not None:
            self.thread.join(timeout=IDLE_JOIN_S)
        for connection in (self.watcher, self.client):
            disconnect(connection)


def open_session(config: MpdConfig, warn: Warn, opened_at: float) -> Session:
    """Both connections, in our partition, with a ``status`` answered; raises otherwise.

    A wrong password stays python-mpd2's ``CommandError`` ("incorrect
    password" says it all); any other command refused here is ``Refused``.
    """
    try:
        client = open_client(config, warn, check_outputs=True)
    except CommandError as exc:
        if exc.command == "password":
            raise
        raise refusal(exc, config) from exc
    try:
        commands = frozenset(client.commands())
        status = client.status()
        watcher = open_client(config, warn)
    except CommandError as exc:
        disconnect(client)
        raise refusal(exc, config) from exc
    except BaseException:
        disconnect(client)
        raise
    return Session(client, watcher, commands, status, opened_at=opened_at)
