"""The MQTT contract: topic names, payloads, Home Assistant discovery, commands.

Pure functions and value types only (no sockets, no clocks), so the whole
surface that Home Assistant and users script against is unit-tested without
a broker. :mod:`edgemood.sinks.mqtt` does the I/O.

Layout under ``<base_topic>/<device_id>/``:

=============== ======== =====================================================
``availability`` retained ``online`` / ``offline`` (also the last will)
``mood``         retained JSON: mood, source, confidence, probabilities, since, playlist
``event``        no       JSON on every debounced change: from, to, source, confidence, at, playlist
``faces``        retained the number of faces in the latest frame, published when it changes
``stats``        retained JSON: whatever the daemon measures; HA reads ``fps``, ``latency_ms.pipeline``
``enabled``      retained ``ON`` / ``OFF``: echo of the detection switch
``override``     retained ``auto`` or the forced class: state of the mood-override select
``error``        no       JSON: error, topic, at; rejected commands and runtime problems
``set/enabled``  command  ``ON`` / ``OFF`` (also true/false/1/0), any case
``set/mood``     command  a class name to force a mood, ``auto`` to release
=============== ======== =====================================================

A forced mood (``source: "override"``) is a person's decision, not a
measurement: its payloads carry ``confidence: null`` and no probabilities, so
nothing reads the camera's last (by then stale) estimate as the reason for it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from edgemood.classes import ABSENT, CLASSES, MOODS

if TYPE_CHECKING:
    from edgemood.mood.debounce import MoodChange, MoodState

ONLINE: Final = "online"
OFFLINE: Final = "offline"
ON: Final = "ON"
OFF: Final = "OFF"
#: The ``set/mood`` value that hands the mood back to the camera.
AUTO: Final = "auto"
#: Longest command payload accepted; anything longer is not a command a person typed.
MAX_COMMAND_BYTES: Final = 256
#: ``source`` of a mood the camera decided, and of one a person forced.
SOURCE_CAMERA: Final = "camera"
SOURCE_OVERRIDE: Final = "override"
#: Keys of the stats JSON that the Home Assistant diagnostic sensors read.
STATS_FPS: Final = "fps"
STATS_LATENCY_MS: Final = "latency_ms"
STATS_LATENCY_PIPELINE: Final = "pipeline"

_TRUE = frozenset({"on", "true", "1"})
_FALSE = frozenset({"off", "false", "0"})


class InvalidCommand(ValueError):
    """A message on a command topic that is not a valid command (the text says why)."""


@dataclass(frozen=True)
class Command:
    """A validated command: ``enabled`` (bool) or ``mood`` (class name, or None for auto)."""

    kind: str
    value: bool | str | None


@dataclass(frozen=True)
class Topics:
    """Every topic of one device, derived from the configured base and device id."""

    base_topic: str
    device_id: str

    def _under(self, suffix: str) -> str:
        return f"{self.base_topic}/{self.device_id}/{suffix}"

    @property
    def availability(self) -> str:
        return self._under("availability")

    @property
    def mood(self) -> str:
        return self._under("mood")

    @property
    def event(self) -> str:
        return self._under("event")

    @property
    def stats(self) -> str:
        return self._under("stats")

    @property
    def faces(self) -> str:
        return self._under("faces")

    @property
    def enabled(self) -> str:
        return self._under("enabled")

    @property
    def override(self) -> str:
        return self._under("override")

    @property
    def error(self) -> str:
        return self._under("error")

    @property
    def set_enabled(self) -> str:
        return self._under("set/enabled")

    @property
    def set_mood(self) -> str:
        return self._under("set/mood")

    @property
    def commands(self) -> tuple[str, ...]:
        """The topics the daemon subscribes to for commands."""
        return (self.set_enabled, self.set_mood)


def discovery_topic(prefix: str, device_id: str) -> str:
    """Where the single retained device-discovery message goes."""
    return f"{prefix}/device/{device_id}/config"


def ha_status_topic(prefix: str) -> str:
    """Home Assistant's birth/last-will topic; ``online`` there means "send discovery again"."""
    return f"{prefix}/status"


def entity_slug(text: str) -> str:
    """``text`` as Home Assistant slugifies an object id: lower case, runs of anything else as one ``_``."""
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def discovery_payload(
    topics: Topics, device_id: str, version: str, qos: int = 1, support_url: str | None = None
) -> dict[str, Any]:
    """Home Assistant device-based discovery: one device, all its entities in ``cmps``.

    Keys use Home Assistant's documented abbreviations (``p`` platform,
    ``stat_t`` state topic, ...). Availability sits at the root, which device
    discovery shares with every component; ``qos`` does not (Home Assistant
    copies only availability, state and command topics from the root), so each
    component carries it.

    Unique ids start with ``edgemood_`` so that a host-name device id cannot
    collide with another integration's ids. Entity ids are suggested twice,
    for every Home Assistant in use: ``default_entity_id`` (``sensor.x``, read
    since 2025.10; older versions drop unknown keys from a discovered entity)
    and ``object_id`` (``x``, read until 2026.3; from 2026.4 it is dropped the
    same way, and while both are present 2025.10+ uses ``default_entity_id``
    without a deprecation warning). Both give the ids the ``deploy/homeassistant``
    examples use, e.g. ``sensor.edgemood_livingroom_mood``.
    """
    origin: dict[str, Any] = {"name": "edgemood", "sw": version}
    if support_url:
        origin["url"] = support_url
    event_template = (
        "{{ {'event_type': value_json.to, 'from': value_json['from'], 'source': value_json.get('source'), "
        "'confidence': value_json.confidence, 'playlist': value_json.playlist} | tojson }}"
    )
    components: dict[str, dict[str, Any]] = {
        "mood": {
            "p": "sensor",
            "name": "Mood",
            "dev_cla": "enum",
            "ops": list(MOODS),
            "stat_t": topics.mood,
            "val_tpl": "{{ value_json.mood }}",
            "json_attr_t": topics.mood,
            "ic": "mdi:emoticon-outline",
        },
        "face": {
            "p": "binary_sensor",
            "name": "Face present",
            "dev_cla": "presence",
            "stat_t": topics.mood,
            "val_tpl": f"{{{{ '{OFF}' if value_json.mood == '{ABSENT}' else '{ON}' }}}}",
            "pl_on": ON,
            "pl_off": OFF,
        },
        "faces": {
            "p": "sensor",
            "name": "Face count",
            "stat_t": topics.faces,
            "stat_cla": "measurement",
            "ic": "mdi:account-group",
        },
        "mood_changed": {
            "p": "event",
            "name": "Mood changed",
            "evt_typ": list(MOODS),
            "stat_t": topics.event,
            "val_tpl": event_template,
        },
        "detection": {
            "p": "switch",
            "name": "Detection",
            "cmd_t": topics.set_enabled,
            "stat_t": topics.enabled,
            "pl_on": ON,
            "pl_off": OFF,
            "ic": "mdi:face-recognition",
        },
        "mood_override": {
            "p": "select",
            "name": "Mood override",
            "cmd_t": topics.set_mood,
            "stat_t": topics.override,
            "ops": [AUTO, *CLASSES],
            "ic": "mdi:account-music",
        },
        "fps": {
            "p": "sensor",
            "name": "Frame rate",
            "ent_cat": "diagnostic",
            "stat_t": topics.stats,
            "val_tpl": f"{{{{ value_json.get('{STATS_FPS}') }}}}",
            "unit_of_meas": "fps",
            "stat_cla": "measurement",
            "sug_dsp_prc": 1,
        },
        "latency": {
            "p": "sensor",
            "name": "Pipeline latency",
            "ent_cat": "diagnostic",
            "dev_cla": "duration",
            "stat_t": topics.stats,
            # A window without frames (paused, camera away) has no latencies: the
            # template then renders None, which Home Assistant shows as unknown.
            "val_tpl": f"{{{{ (value_json.get('{STATS_LATENCY_MS}') or {{}}).get('{STATS_LATENCY_PIPELINE}') }}}}",
            "unit_of_meas": "ms",
            "stat_cla": "measurement",
            "sug_dsp_prc": 0,
        },
    }
    for key, component in components.items():
        object_id = entity_slug(f"edgemood_{device_id}_{component['name']}")
        component["uniq_id"] = f"edgemood_{device_id}_{key}"
        component["object_id"] = object_id
        component["default_entity_id"] = f"{component['p']}.{object_id}"
        component["qos"] = qos
    return {
        "dev": {
            "ids": [f"edgemood_{device_id}"],
            "name": f"edgemood {device_id}",
            "mdl": "edgemood",
            "mf": "edgemood",
            "sw": version,
        },
        "o": origin,
        "avty_t": topics.availability,
        "cmps": components,
    }


def parse_command(topics: Topics, topic: str, payload: bytes) -> Command:
    """Validate one incoming command message; raise :class:`InvalidCommand` saying what is wrong."""
    if topic not in topics.commands:
        raise InvalidCommand(f"{topic}: not a command topic (use {' or '.join(topics.commands)})")
    if len(payload) > MAX_COMMAND_BYTES:
        raise InvalidCommand(f"{topic}: payload of {len(payload)} bytes is longer than {MAX_COMMAND_BYTES}")
    try:
        text = payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise InvalidCommand(f"{topic}: payload is not UTF-8 text") from None
    if not text:
        raise InvalidCommand(f"{topic}: empty payload")
    word = text.lower()
    if topic == topics.set_enabled:
        if word in _TRUE:
            return Command("enabled", True)
        if word in _FALSE:
            return Command("enabled", False)
        raise InvalidCommand(f"{topic}: {text!r} is not ON or OFF (also accepted: true/false, 1/0)")
    if word == AUTO:
        return Command("mood", None)
    if word in CLASSES:
        return Command("mood", word)
    raise InvalidCommand(f"{topic}: {text!r} is not one of {AUTO}, {', '.join(CLASSES)}")


def iso8601(epoch_s: float) -> str:
    """UTC timestamp with millisecond precision and a ``Z``, as Home Assistant and jq expect."""
    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _json(document: Mapping[str, Any]) -> bytes:
    """Compact JSON; numpy scalars (``.item()``) become plain numbers."""

    def plain(value: Any) -> Any:
        if hasattr(value, "item"):
            return value.item()
        raise TypeError(f"{type(value).__name__} is not JSON serialisable")

    return json.dumps(document, separators=(",", ":"), default=plain).encode()


def _measured(state: MoodState) -> dict[str, Any]:
    """Where a mood comes from, and the camera's evidence only when the camera decided it."""
    if state.forced:
        return {"source": SOURCE_OVERRIDE, "confidence": None}
    return {"source": SOURCE_CAMERA, "confidence": round(float(state.confidence), 4)}


def mood_payload(state: MoodState, playlist: str | None) -> bytes:
    """The retained ``mood`` document; ``playlist`` is None when no playlist belongs to the mood."""
    probabilities = {} if state.forced else {name: round(float(p), 4) for name, p in state.probabilities.items()}
    return _json(
        {
            "mood": state.mood,
            **_measured(state),
            "probabilities": probabilities,
            "since": iso8601(state.since),
            "playlist": playlist,
        }
    )


def event_payload(change: MoodChange, playlist: str | None) -> bytes:
    """The ``event`` document for one debounced change."""
    return _json(
        {
            "from": change.previous,
            "to": change.current.mood,
            **_measured(change.current),
            "at": iso8601(change.at),
            "playlist": playlist,
        }
    )


def faces_payload(count: int) -> bytes:
    """The ``faces`` state: how many faces the latest frame showed, as a plain number."""
    return str(int(count)).encode()


def override_payload(mood: str | None) -> bytes:
    """The ``override`` state in the select's vocabulary: the forced class, or ``auto``."""
    return (mood or AUTO).encode()


def stats_payload(stats: Mapping[str, Any]) -> bytes:
    """The ``stats`` document; Home Assistant reads ``fps`` and ``latency_ms.pipeline`` from it."""
    return _json(stats)


def enabled_payload(enabled: bool) -> bytes:
    """The ``enabled`` echo, in the switch's ON/OFF vocabulary."""
    return (ON if enabled else OFF).encode()


def error_payload(message: str, topic: str | None, at: float) -> bytes:
    """The ``error`` document: what went wrong, on which topic (if any), when."""
    return _json({"error": message, "topic": topic, "at": iso8601(at)})
