#!/usr/bin/env python3
"""A real Home Assistant against a real ``edgemood run``: discovery, states, commands, restarts.

Opt-in, because it installs Home Assistant Core from PyPI (once, into a cache
outside the checkout) and runs it for a few minutes:

    .venv/bin/python scripts/ha_check.py                 # install if needed, then check
    .venv/bin/python scripts/ha_check.py --report ha.json

What it does, all on localhost:

1. Home Assistant Core (``--ha-version``, default the newest release that runs
   on Python 3.13.0) goes into its own venv under ``--cache``
   (``~/.cache/edgemood-ha``), made with a Python 3.13 (``--python``, else
   ``python3.13`` on PATH, else pyenv's). The Python packages of the
   integrations it will load (the MQTT integration, its dependencies and
   Home Assistant's default set) are installed in the same step, from the
   manifests of the installed release, so Home Assistant itself runs with
   ``--skip-pip`` and downloads nothing.
2. A configuration folder is written without the UI: ``configuration.yaml``
   (http on a free port, the REST API), a config entry for the MQTT
   integration in ``.storage/core.config_entries``, onboarding marked done,
   and an owner with a long-lived access token in ``.storage/auth`` (the
   script signs the token itself, as Home Assistant does).
3. A throw-away mosquitto (``edgemood.demo.services.mosquitto``), Home Assistant,
   and ``edgemood run`` on a replay folder of real faces, as the demo does.
4. Through Home Assistant's REST API it checks: every entity the discovery
   promises, with the ids the examples in ``deploy/homeassistant`` use, and
   sensible states (the select reads ``auto`` at once, fps and latency within
   seconds); the switch round trip (and the latency turning unknown while
   paused); the select round trip, including an override sent by another
   MQTT client; Home Assistant restarted through its own restart service;
   the broker restarted (retained messages lost); and at the end, Home
   Assistant's log: no warning or error from its MQTT integration, and none
   that names edgemood at all. The daemon must stop with exit 0.

Exit status 0 when every check passed, 1 when one failed (the first failure
stops the run; its logs stay in the work folder, which is printed).
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import hashlib
import hmac
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from daemon_harness import DaemonProcess  # noqa: E402

from edgemood.classes import MOODS  # noqa: E402
from edgemood.config import CameraConfig, Config, ModelConfig, MpdConfig, MqttConfig  # noqa: E402
from edgemood.demo.frames import DEMO_SCENES, write_replay  # noqa: E402
from edgemood.demo.services import LocalService, free_port  # noqa: E402
from edgemood.demo.services.mosquitto import start_mosquitto  # noqa: E402
from edgemood.sinks.mqtt_topics import Topics, discovery_payload  # noqa: E402

#: The newest Home Assistant that installs on Python 3.13.0 (2025.5 and later need 3.13.2+).
DEFAULT_HA_VERSION = "2025.4.4"
DEFAULT_CACHE = Path.home() / ".cache" / "edgemood-ha"
DEVICE_ID = "hacheck"
#: Short, so that a paused window (no frames, latency unknown) shows within seconds.
STATS_INTERVAL_S = 10
#: Integrations configured in configuration.yaml, besides the MQTT config entry.
CONFIGURED = ("http", "api", "logger")
#: Home Assistant's own lines about the connection while the broker is down: expected during
#: the broker restart check, and only then.
OUTAGE_LINES = re.compile(r"Disconnected from MQTT server|Error returned from MQTT server|Failed to connect to MQTT")
#: The start of one record in Home Assistant's log; lines that do not match continue the record.
HA_LOG_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \S+ (\w+) \([^)]*\) \[([^\]]+)\] ", re.MULTILINE)
#: Home Assistant's log line once its MQTT client is up: subscribed, birth message sent.
HA_MQTT_READY = "MQTT client initialized, birth message sent"

T = TypeVar("T")


class CheckFailed(AssertionError):
    """One check did not hold; the message says what was seen."""


@dataclasses.dataclass
class Report:
    """What was measured, for the printout and ``--report``."""

    ha_version: str
    python: str
    install_s: float | None = None
    install_mb: float | None = None
    steps: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    entities: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    outage_log_lines: list[str] = dataclasses.field(default_factory=list)
    passed: bool = False

    def step(self, name: str, seconds: float, detail: str = "") -> None:
        self.steps.append({"step": name, "seconds": round(seconds, 1), "detail": detail})
        print(f"  ok  {name:<52} {seconds:6.1f} s  {detail}", flush=True)


def wait_for(probe: Callable[[], T], what: str, timeout: float, every: float = 0.5) -> T:
    """Poll ``probe`` until it returns something truthy; raise CheckFailed naming ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        try:
            last = probe()
        except (OSError, ValueError, KeyError) as exc:
            last = exc
        else:
            if last:
                return last
        if time.monotonic() > deadline:
            raise CheckFailed(f"{what}: not within {timeout:g} s (last seen: {last!r})")
        time.sleep(every)


# -- Home Assistant: install ------------------------------------------------------------


def find_python313(given: str | None) -> str:
    """A working Python 3.13: ``--python``, ``python3.13`` on PATH, or pyenv's newest 3.13.

    Each candidate is run once: a pyenv shim on PATH exists but may refuse to run.
    """
    candidates = [given] if given else []
    candidates.append(shutil.which("python3.13") or "")
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates += [str(p / "bin" / "python3.13") for p in sorted(pyenv.glob("3.13*"), reverse=True)]
    for candidate in filter(None, candidates):
        try:
            probe = subprocess.run([candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 13))"],
                                   capture_output=True, text=True, timeout=30)  # fmt: skip
        except OSError:
            continue
        if probe.stdout.strip() == "True":
            return candidate
    raise SystemExit("ha_check: needs a Python 3.13 for Home Assistant (--python PATH, or install python3.13)")


#: Run under Home Assistant's own interpreter: the Python packages of every integration it
#: will set up (configured ones, the MQTT entry, the default set, and their dependencies).
_REQUIREMENTS_PROBE = """
import json, pathlib, sys
import homeassistant, homeassistant.bootstrap as bootstrap
components = pathlib.Path(homeassistant.__file__).parent / "components"
todo = [*bootstrap.CORE_INTEGRATIONS, *bootstrap.DEFAULT_INTEGRATIONS, "mqtt", *sys.argv[1:]]
seen, requirements = set(), set()
while todo:
    domain = todo.pop()
    if domain in seen:
        continue
    seen.add(domain)
    manifest = json.loads((components / domain / "manifest.json").read_text())
    requirements.update(manifest.get("requirements", []))
    todo.extend(manifest.get("dependencies", []))
print(json.dumps(sorted(requirements)))
"""


def ensure_home_assistant(cache: Path, version: str, python: str, report: Report) -> Path:
    """The venv's interpreter with Home Assistant ``version`` and its integrations' packages installed."""
    venv = cache / f"venv-{version}"
    ready = venv / ".edgemood-ready"
    interpreter = venv / "bin" / "python"
    if ready.exists():
        return interpreter
    print(f"installing Home Assistant {version} into {venv} (once; a few minutes)", flush=True)
    shutil.rmtree(venv, ignore_errors=True)
    started = time.monotonic()
    log = cache / f"install-{version}.log"
    cache.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as out:

        def run(*argv: str | Path) -> str:
            result = subprocess.run([str(a) for a in argv], stdout=subprocess.PIPE, stderr=out, text=True)
            if result.returncode:
                raise SystemExit(f"ha_check: {' '.join(map(str, argv[:4]))} ... failed; see {log}")
            return result.stdout

        run(python, "-m", "venv", venv)
        run(interpreter, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
        run(interpreter, "-m", "pip", "install", "--quiet", f"homeassistant=={version}")
        requirements = json.loads(run(interpreter, "-c", _REQUIREMENTS_PROBE, *CONFIGURED))
        constraints = run(interpreter, "-c", "import homeassistant, os; print(os.path.dirname(homeassistant.__file__))")
        run(interpreter, "-m", "pip", "install", "--quiet", "-c", Path(constraints.strip()) / "package_constraints.txt",
            *requirements)  # fmt: skip
    report.install_s = time.monotonic() - started
    report.install_mb = sum(f.stat().st_size for f in venv.rglob("*") if f.is_file()) / 2**20
    ready.write_text(json.dumps({"version": version, "requirements": requirements}))
    return interpreter


# -- Home Assistant: configuration without the UI ---------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def access_token(refresh_id: str, jwt_key: str, lifetime_s: int = 86400) -> str:
    """An HS256 JWT as Home Assistant signs one for a long-lived token (``iss`` = its refresh token)."""
    now = int(time.time())
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    claims = _b64(json.dumps({"iss": refresh_id, "iat": now, "exp": now + lifetime_s}).encode())
    signature = hmac.new(jwt_key.encode(), f"{header}.{claims}".encode(), hashlib.sha256).digest()
    return f"{header}.{claims}.{_b64(signature)}"


def _store(key: str, data: Any, version: int = 1, minor_version: int = 1) -> str:
    return json.dumps({"version": version, "minor_version": minor_version, "key": key, "data": data}, indent=1)


def write_ha_config(folder: Path, http_port: int, broker: LocalService) -> str:
    """Home Assistant's configuration folder, ready to run; returns an access token for its API.

    The config entry and the auth store are written in their oldest formats
    that Home Assistant still migrates on load, so newer releases read them too.
    """
    storage = folder / ".storage"
    storage.mkdir(parents=True)
    (folder / "configuration.yaml").write_text(
        "homeassistant:\n  name: edgemood check\n  latitude: 52.5\n  longitude: 13.4\n  elevation: 34\n"
        "  unit_system: metric\n  time_zone: UTC\n  country: DE\n  currency: EUR\n"
        f"http:\n  server_host: 127.0.0.1\n  server_port: {http_port}\n"
        "api:\nlogger:\n  default: info\n"
    )
    now = datetime.now(UTC).isoformat()
    mqtt_entry = {
        "entry_id": uuid.uuid4().hex,
        "version": 1,
        "minor_version": 1,
        "domain": "mqtt",
        "title": f"{broker.host}:{broker.port}",
        "data": {"broker": broker.host, "port": broker.port, "discovery": True},
        "source": "user",
    }
    (storage / "core.config_entries").write_text(_store("core.config_entries", {"entries": [mqtt_entry]}))
    (storage / "onboarding").write_text(
        _store("onboarding", {"done": ["user", "core_config", "analytics", "integration"]}, version=4)
    )
    user_id, refresh_id, jwt_key = uuid.uuid4().hex, uuid.uuid4().hex, secrets.token_hex(64)
    auth = {
        "users": [{
            "id": user_id, "group_ids": ["system-admin"], "is_owner": True, "is_active": True,
            "name": "edgemood check", "system_generated": False, "local_only": False,
        }],
        "groups": [{"id": "system-admin"}, {"id": "system-users"}, {"id": "system-read-only"}],
        "credentials": [],
        "refresh_tokens": [{
            "id": refresh_id, "user_id": user_id, "client_id": None, "client_name": "edgemood ha_check",
            "client_icon": None, "token_type": "long_lived_access_token", "created_at": now,
            "access_token_expiration": 86400.0, "token": secrets.token_hex(64), "jwt_key": jwt_key,
            "last_used_at": None, "last_used_ip": None,
        }],
    }  # fmt: skip
    (storage / "auth").write_text(_store("auth", auth))
    return access_token(refresh_id, jwt_key)


# -- Home Assistant: the running process -------------------------------------------------


class HomeAssistant:
    """``python -m homeassistant`` on a configuration folder, and its REST API."""

    def __init__(self, interpreter: Path, folder: Path, port: int, token: str) -> None:
        self.interpreter, self.folder, self.port, self.token = interpreter, folder, port, token
        self.process: subprocess.Popen[bytes] | None = None
        self.logs: list[Path] = []

    def start(self) -> None:
        log = self.folder / f"ha-run{len(self.logs) + 1}.log"
        self.logs.append(log)
        self.process = subprocess.Popen(
            [str(self.interpreter), "-m", "homeassistant", "--config", str(self.folder), "--skip-pip",
             "--log-no-color", "--log-file", str(log), "--ignore-os-check"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self) -> None:
        if self.alive():
            assert self.process is not None
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/api/{path}",
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            text = response.read().decode()
        return json.loads(text) if text else None

    def service(self, domain: str, name: str, **data: Any) -> None:
        self.api("POST", f"services/{domain}/{name}", data)

    def states(self) -> dict[str, dict[str, Any]]:
        return {s["entity_id"]: s for s in self.api("GET", "states")}

    def state(self, entity_id: str) -> dict[str, Any]:
        return self.api("GET", f"states/{entity_id}")

    def wait_ready(self, timeout: float) -> None:
        """Until the API answers and the MQTT config entry is loaded."""

        def mqtt_loaded() -> bool:
            if not self.alive():
                raise CheckFailed(f"Home Assistant exited ({self.process.returncode}); see {self.logs[-1]}")  # type: ignore[union-attr]
            entries = self.api("GET", "config/config_entries/entry")
            return any(e["domain"] == "mqtt" and e["state"] == "loaded" for e in entries)

        wait_for(mqtt_loaded, "Home Assistant's API with the MQTT integration loaded", timeout, every=1.0)

    def log_text(self) -> str:
        """The current run's log so far."""
        return self.logs[-1].read_text(errors="replace") if self.logs and self.logs[-1].exists() else ""

    def wait_mqtt_ready(self, timeout: float, after: int = 0) -> None:
        """Until the MQTT client has (re)subscribed and sent its birth message, in this run's log past ``after``.

        Home Assistant sends it after a 5 s discovery cool-down; a broker outage
        before that makes Home Assistant 2025.4 itself log an unretrieved task
        exception, so the checks wait for it as a careful operator would.
        """
        wait_for(lambda: HA_MQTT_READY in self.log_text()[after:], "Home Assistant's MQTT birth message", timeout)

    def log_problems(self) -> list[tuple[str, str, str]]:
        """(level, logger, whole record with any traceback) of every WARNING or worse in every run's log."""
        problems = []
        for log in self.logs:
            text = log.read_text(errors="replace") if log.exists() else ""
            starts = list(HA_LOG_RECORD.finditer(text))
            for match, following in zip(starts, [*starts[1:], None]):
                if match.group(1) in ("WARNING", "ERROR", "CRITICAL"):
                    record = text[match.start() : following.start() if following else len(text)].rstrip()
                    problems.append((match.group(1), match.group(2), record))
        return problems


# -- edgemood ------------------------------------------------------------------------------


#: Discovery component -> the entity id edgemood suggests for it (what Home Assistant must use).
ENTITY_IDS = {
    key: component["default_entity_id"]
    for key, component in discovery_payload(Topics("edgemood", DEVICE_ID), DEVICE_ID, "check")["cmps"].items()
}
MOOD, SELECT, SWITCH = ENTITY_IDS["mood"], ENTITY_IDS["mood_override"], ENTITY_IDS["detection"]
FPS, LATENCY, FACES = ENTITY_IDS["fps"], ENTITY_IDS["latency"], ENTITY_IDS["faces"]
PRESENT, CHANGED = ENTITY_IDS["face"], ENTITY_IDS["mood_changed"]


def edgemood_config(replay: Path, broker: LocalService) -> Config:
    """The demo's replay at its pace, the MQTT sink on the check's broker, MPD off."""
    return Config(
        camera=CameraConfig(source=f"dir:{replay}", interval_s=0.5),
        model=ModelConfig(personal=False),
        mpd=MpdConfig(enabled=False),
        mqtt=MqttConfig(host=broker.host, port=broker.port, device_id=DEVICE_ID, stats_interval_s=STATS_INTERVAL_S),
    )


def publish(broker: LocalService, topic: str, payload: str) -> None:
    """One message from another MQTT client (not Home Assistant), at QoS 1, acknowledged."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="ha-check-other")
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        client.publish(topic, payload, qos=1).wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()


def is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


# -- the checks ------------------------------------------------------------------------------


def check_entities(ha: HomeAssistant, report: Report, started: float) -> None:
    """Every promised entity, none unavailable, sensible states; the select at ``auto`` from the start."""
    expected = set(ENTITY_IDS.values())

    def all_there() -> dict[str, dict[str, Any]]:
        states = ha.states()
        ours = {k: v for k, v in states.items() if k in expected}
        return ours if len(ours) == len(expected) and all(s["state"] != "unavailable" for s in ours.values()) else {}

    ours = wait_for(all_there, f"all {len(expected)} entities available", 60)
    report.step("entities discovered and available", time.monotonic() - started, f"{len(ours)} entities")
    extra = sorted(k for k in ha.states() if f"edgemood_{DEVICE_ID}" in k and k not in expected)
    if extra:
        raise CheckFailed(f"entities with unexpected ids (object_id / default_entity_id not honoured?): {extra}")
    wait_for(lambda: is_number(ha.state(FPS)["state"]), "a frame rate (first stats)", 30)
    report.step("first stats in Home Assistant (fps, latency)", time.monotonic() - started,
                f"fps {ha.state(FPS)['state']}, latency {ha.state(LATENCY)['state']} ms")  # fmt: skip
    states = ha.states()
    checks = {
        MOOD: lambda s: s["state"] in MOODS and s["attributes"].get("source") in ("camera", "override"),
        SELECT: lambda s: s["state"] == "auto",
        SWITCH: lambda s: s["state"] == "on",
        PRESENT: lambda s: s["state"] in ("on", "off"),
        FACES: lambda s: s["state"].isdigit(),
        FPS: lambda s: is_number(s["state"]),
        LATENCY: lambda s: is_number(s["state"]) and s["attributes"].get("unit_of_measurement") == "ms",
    }
    for entity_id, holds in checks.items():
        if not holds(states[entity_id]):
            raise CheckFailed(f"{entity_id}: unexpected state {states[entity_id]}")
    for entity_id in expected:
        s = states[entity_id]
        report.entities[entity_id] = {"state": s["state"], "name": s["attributes"].get("friendly_name")}


def check_switch(ha: HomeAssistant, daemon: DaemonProcess, report: Report) -> None:
    """Off through Home Assistant pauses detection; the latency of an empty window shows as unknown; on again."""
    started = time.monotonic()
    ha.service("switch", "turn_off", entity_id=SWITCH)
    wait_for(lambda: ha.state(SWITCH)["state"] == "off", "the switch echoed off", 15)
    daemon.wait_for(lambda log: "detection paused by MQTT command" in log, "the daemon pausing", 15)
    report.step("switch off -> detection paused (echoed)", time.monotonic() - started)
    started = time.monotonic()
    wait_for(lambda: ha.state(LATENCY)["state"] == "unknown", "latency unknown for a window without frames",
             2.5 * STATS_INTERVAL_S)  # fmt: skip
    report.step("paused window: latency shows unknown", time.monotonic() - started, f"fps {ha.state(FPS)['state']}")
    started = time.monotonic()
    ha.service("switch", "turn_on", entity_id=SWITCH)
    wait_for(lambda: ha.state(SWITCH)["state"] == "on", "the switch echoed on", 15)
    report.step("switch on -> detection resumed", time.monotonic() - started)


def check_select(ha: HomeAssistant, broker: LocalService, report: Report) -> None:
    """A forced mood through the select, one from another MQTT client, then back to auto."""
    started = time.monotonic()
    ha.service("select", "select_option", entity_id=SELECT, option="sad")

    def forced(mood: str) -> bool:
        s = ha.state(MOOD)
        return ha.state(SELECT)["state"] == mood and s["state"] == mood and s["attributes"].get("source") == "override"

    wait_for(lambda: forced("sad"), "select sad -> mood sad, source override", 15)
    if ha.state(MOOD)["attributes"].get("confidence") is not None:
        raise CheckFailed(f"a forced mood claims a confidence: {ha.state(MOOD)['attributes']}")
    report.step("select sad -> mood sad (source override)", time.monotonic() - started)
    started = time.monotonic()
    publish(broker, f"edgemood/{DEVICE_ID}/set/mood", "fear")
    wait_for(lambda: forced("fear"), "another client's override shown by the select", 15)
    report.step("override by another MQTT client -> select fear", time.monotonic() - started)
    started = time.monotonic()
    ha.service("select", "select_option", entity_id=SELECT, option="auto")
    wait_for(lambda: ha.state(SELECT)["state"] == "auto" and ha.state(MOOD)["attributes"].get("source") == "camera",
             "select auto -> the camera decides again", 15)  # fmt: skip
    report.step("select auto -> source camera", time.monotonic() - started, f"mood {ha.state(MOOD)['state']}")


def check_event(ha: HomeAssistant, report: Report) -> None:
    """The mood-changed event entity has fired with a mood as its type."""
    started = time.monotonic()
    fired = wait_for(lambda: ha.state(CHANGED)["attributes"].get("event_type"), "a mood-changed event", 60)
    if fired not in MOODS:
        raise CheckFailed(f"event type {fired!r} is not a mood")
    report.step("mood-changed event fired", time.monotonic() - started, f"event_type {fired}")


def states_back(ha: HomeAssistant, what: str, timeout: float) -> dict[str, dict[str, Any]]:
    """Until every entity is available again with a sensible select, switch, mood and frame rate."""

    def back() -> dict[str, dict[str, Any]]:
        states = ha.states()
        ours = {k: states.get(k, {"state": "missing"}) for k in ENTITY_IDS.values()}
        ok = (
            all(s["state"] != "unavailable" and s["state"] != "missing" for s in ours.values())
            and ours[SELECT]["state"] == "auto"
            and ours[SWITCH]["state"] == "on"
            and ours[MOOD]["state"] in MOODS
            and is_number(ours[FPS]["state"])
        )
        return ours if ok else {}

    return wait_for(back, what, timeout)


def check_ha_restart(ha: HomeAssistant, daemon: DaemonProcess, report: Report) -> None:
    """Home Assistant's own restart service; started again as a supervisor would.

    Its birth message must bring discovery and every state from the daemon again.
    """
    started = time.monotonic()
    births = daemon.log().count("Home Assistant is back")
    try:
        ha.service("homeassistant", "restart")
    except (urllib.error.URLError, ConnectionError):
        pass  # it may close the connection while stopping
    assert ha.process is not None
    code = ha.process.wait(120)
    if code != 100:
        raise CheckFailed(f"Home Assistant's restart exited with {code}, expected 100 (restart requested)")
    ha.start()
    ha.wait_ready(180)
    states_back(ha, "every entity back after Home Assistant's restart", 60)
    ha.wait_mqtt_ready(60)
    daemon.wait_for(lambda log: log.count("Home Assistant is back") > births, "the daemon answering the birth", 15)
    report.step("Home Assistant restarted: birth answered, states back", time.monotonic() - started)


def check_broker_restart(ha: HomeAssistant, broker: LocalService, daemon: DaemonProcess, report: Report) -> None:
    """The broker stops for a few seconds and comes back empty; discovery, states and commands come back."""
    started = time.monotonic()
    mark = len(ha.log_text())
    broker.stop()
    time.sleep(5)
    broker.restart()
    states_back(ha, "every entity back after the broker's restart", 90)
    report.step("broker restarted (retained lost): states back", time.monotonic() - started)
    ha.wait_mqtt_ready(60, after=mark)
    report.outage_log_lines = [
        record for level, logger, record in ha.log_problems() if record in ha.log_text()[mark:]
    ]
    started = time.monotonic()
    ha.service("switch", "turn_off", entity_id=SWITCH)
    wait_for(lambda: ha.state(SWITCH)["state"] == "off", "the switch works after the broker's restart", 15)
    ha.service("switch", "turn_on", entity_id=SWITCH)
    wait_for(lambda: ha.state(SWITCH)["state"] == "on", "the switch back on", 15)
    report.step("switch round trip after the broker's restart", time.monotonic() - started)
    daemon.wait_for(lambda log: "MQTT: connected" in log.split("lost the broker")[-1], "the daemon reconnecting", 30)


def check_logs(ha: HomeAssistant, daemon_log: str, report: Report) -> None:
    """No MQTT warning in Home Assistant's log (bar the outage's own lines), none naming edgemood."""
    bad, others = [], set()
    for level, logger, record in ha.log_problems():
        about_mqtt = logger.startswith("homeassistant.components.mqtt") or "components/mqtt" in record
        if about_mqtt or "edgemood" in record.lower():
            # the outage's own "connection lost" line, logged while the broker was down, is expected
            if not (record in report.outage_log_lines and OUTAGE_LINES.search(record.splitlines()[0])):
                bad.append(record)
        else:
            others.add(f"{level} [{logger}]")
    if bad:
        raise CheckFailed("Home Assistant logged about MQTT or edgemood:\n  " + "\n  ".join(bad))
    if "Traceback" in daemon_log or re.search(r"^\S+ \S+ (ERROR|CRITICAL) ", daemon_log, re.MULTILINE):
        raise CheckFailed(f"the daemon logged an error:\n{daemon_log[-3000:]}")
    report.step("logs: no MQTT or edgemood warning", 0.0, f"other warnings: {', '.join(sorted(others)) or 'none'}")


# -- the run -------------------------------------------------------------------------------------


@contextmanager
def running(ha: HomeAssistant) -> Iterator[HomeAssistant]:
    try:
        yield ha
    finally:
        ha.stop()


def run_checks(args: argparse.Namespace, workdir: Path, report: Report) -> None:
    python = find_python313(args.python)
    report.python = subprocess.run([python, "--version"], capture_output=True, text=True).stdout.strip()
    interpreter = ensure_home_assistant(args.cache, args.ha_version, python, report)
    if report.install_s is not None:
        report.step("install Home Assistant and its integrations' packages", report.install_s,
                    f"{report.install_mb:.0f} MB in {args.cache}")  # fmt: skip
    replay = workdir / "replay"
    write_replay(replay, DEMO_SCENES)
    with ExitStack() as stack:
        broker = stack.enter_context(start_mosquitto(workdir / "mosquitto"))
        port = free_port()
        token = write_ha_config(workdir / "homeassistant", port, broker)
        ha = stack.enter_context(running(HomeAssistant(interpreter, workdir / "homeassistant", port, token)))
        started = time.monotonic()
        ha.start()
        ha.wait_ready(300)
        report.step("Home Assistant started, MQTT entry loaded", time.monotonic() - started,
                    f"version {ha.api('GET', 'config')['version']}")  # fmt: skip
        ha.wait_mqtt_ready(60)
        daemon = stack.enter_context(DaemonProcess(edgemood_config(replay, broker), workdir / "edgemood"))
        check_entities(ha, report, time.monotonic())
        check_switch(ha, daemon, report)
        check_select(ha, broker, report)
        check_event(ha, report)
        check_ha_restart(ha, daemon, report)
        check_broker_restart(ha, broker, daemon, report)
        started = time.monotonic()
        code = daemon.stop()
        if code != 0 or "stopped on SIGTERM" not in daemon.log():
            raise CheckFailed(f"the daemon's stop: exit {code}, log ends {daemon.log()[-500:]}")
        wait_for(lambda: ha.state(MOOD)["state"] == "unavailable", "entities unavailable after the daemon's stop", 15)
        report.step("daemon stopped (exit 0): entities unavailable", time.monotonic() - started)
        check_logs(ha, daemon.log(), report)
    report.passed = True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ha-version", default=DEFAULT_HA_VERSION, help=f"Home Assistant Core release ({DEFAULT_HA_VERSION})")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help=f"where its venv lives ({DEFAULT_CACHE})")
    parser.add_argument("--python", help="a Python 3.13 for that venv (default: python3.13, else pyenv's)")
    parser.add_argument("--report", type=Path, help="also write the figures as JSON here")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs) when the check passes")
    args = parser.parse_args(argv)
    report = Report(ha_version=args.ha_version, python="")
    workdir = Path(tempfile.mkdtemp(prefix="edgemood-ha-check-"))
    print(f"edgemood against Home Assistant {args.ha_version}; work folder {workdir}", flush=True)
    started = time.monotonic()
    try:
        run_checks(args, workdir, report)
    except CheckFailed as exc:
        print(f"FAIL  {exc}\n(logs kept in {workdir})", file=sys.stderr)
    total = time.monotonic() - started
    print(f"\n{'passed' if report.passed else 'FAILED'} in {total:.0f} s; entities:")
    for entity_id, seen in report.entities.items():
        print(f"  {entity_id:<45} {seen['state']!s:<26} {seen['name']}")
    if report.outage_log_lines:
        print("Home Assistant's own warnings while the broker was down (expected, not counted):")
        print("\n".join(f"  {record}" for record in report.outage_log_lines))
    if args.report:
        args.report.write_text(json.dumps({**dataclasses.asdict(report), "total_s": round(total, 1)}, indent=1))
    if report.passed and not args.keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
