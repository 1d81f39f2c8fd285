"""A throw-away mosquitto broker on a localhost port, for the demo and the tests.

Persistence is off on purpose: a restart then behaves like a broker that lost
everything (retained messages and sessions), the harshest case the MQTT sink
has to recover from.
"""

from __future__ import annotations

import os
import pwd
import subprocess
from pathlib import Path

from edgemood.demo.services import LocalService, find_binary, free_port, wait_for_port

HOST = "127.0.0.1"


#: Settings written unless ``extra_conf`` sets the same option itself.
DEFAULTS: dict[str, str] = {"allow_anonymous": "true", "persistence": "false"}


def mosquitto_conf(port: int, log_file: Path, extra_conf: str = "") -> str:
    """The broker config: one plain listener, anonymous and without persistence by default.

    ``user`` is the current user: started as root, mosquitto would otherwise
    switch to the ``mosquitto`` user and could not write to the work directory.
    """
    given = {line.split()[0] for line in extra_conf.splitlines() if line.strip() and not line.lstrip().startswith("#")}
    lines = [
        f"user {pwd.getpwuid(os.getuid()).pw_name}",
        f"listener {port} {HOST}",
        f"log_dest file {log_file}",
        "log_type error",
        "log_type warning",
        "log_type notice",
        "log_type information",
        "connection_messages true",
        *(f"{key} {value}" for key, value in DEFAULTS.items() if key not in given),
    ]
    if extra_conf.strip():
        lines.append(extra_conf.strip())
    return "\n".join(lines) + "\n"


def start_mosquitto(workdir: Path, port: int | None = None, extra_conf: str = "") -> LocalService:
    """Start mosquitto from a config written into ``workdir`` and wait until it listens.

    ``restart()`` on the result keeps the port, so clients can reconnect to
    the same address after a simulated outage.
    """
    binary = find_binary("mosquitto")
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    conf = workdir / "mosquitto.conf"
    conf.write_text(mosquitto_conf(port, workdir / "mosquitto.log", extra_conf))
    argv = [binary, "-c", str(conf)]
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    service = LocalService(name="mosquitto", host=HOST, port=port, workdir=workdir, process=process, argv=argv)
    try:
        wait_for_port(HOST, port, process)
    except BaseException:
        service.stop()
        raise
    return service
