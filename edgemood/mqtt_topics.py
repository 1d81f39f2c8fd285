"""The MQTT contract: topic names, payloads, Home Assistant discovery, commands.

Pure functions and value types only (no sockets, no clocks), so the whole
surface that Home Assistant and users script against is unit-tested without
a broker. :mod:`edgemood.sinks.mqtt` does the I/O.

Layout under ``<base_topic>/<device_id>/``:

=============== ======== =====================================================
``availability`` retained ``online`` / ``offline`` (also the last will)
``mood``         retained JSON: mood, confidence, probabilities, since, playlist
``event``        no       JSON on every debounced change: from, to, confidence, at, playlist
``stats``        retained JSON: whatever the daemon measures; HA reads ``fps``, ``latency_ms.pipeline``
``enabled``      retained ``ON`` / ``OFF``: echo of the detection switch
``error``        no       JSON: error, topic, at; rejected commands and runtime problems
``set/enabled``  command  ``ON`` / ``OFF`` (also true/false/1/0), any case
``set/mood``     command  a class name to force a mood, ``auto`` to release
=============== ======== =====================================================
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from edgemood.classes import ABSENT, CLASSES, MOODS

if TYPE_CHECKING:
    from edgemood.debounce import MoodChange, MoodState

ONLINE: Final = "online"
OFFLINE: Final = "offline"
ON: Final = "ON"
OFF: Final = "OFF"
#: The ``set/mood`` value that hands the mood back to the camera.
AUTO: Final = "auto"
#: Longest command payload accepted; anything longer is not a command a person typed.
MAX_COMMAND_BYTES: Final = 256
#: Keys of the stats JSON that the Home Assistant diagnostic sensors read.
STATS_FPS: Final = "fps"
STATS_LATENCY_MS: Final = "latency_ms"
STATS_LATENCY_PIPELINE: Final = "pipeline"

_TRUE = frozenset({"on", "true", "1"})
_FALSE = frozenset({"off", "false", "0"})


class CommandError(ValueError):
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
    def enabled(self) -> str:
        return self._under("enabled")

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


def discovery_payload(
    topics: Topics, device_id: str, version: str, qos: int = 1, support_url: str | None = None
) -> dict[str, Any]:
    """Home Assistant device-based discovery: one device, all its entities in ``cmps``.

    Keys use Home Assistant's documented abbreviations (``p`` platform,
    ``stat_t`` state topic, ...). Availability and QoS sit at the root, where
    device discovery shares them with every component.
    """

    def unique(name: str) -> str:
        return f"{device_id}_{name}"

    origin: dict[str, Any] = {"name": "edgemood", "sw": version}
    if support_url:
        origin["url"] = support_url
    event_template = (
        "{{ {'event_type': value_json.to, 'from': value_json['from'], "
        "'confidence': value_json.confidence, 'playlist': value_json.playlist} | tojson }}"
    )
    components: dict[str, dict[str, Any]] = {
        "mood": {
            "p": "sensor",
            "name": "Mood",
            "uniq_id": unique("mood"),
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
            "uniq_id": unique("face"),
            "dev_cla": "presence",
            "stat_t": topics.mood,
            "val_tpl": f"{{{{ '{OFF}' if value_json.mood == '{ABSENT}' else '{ON}' }}}}",
            "pl_on": ON,
            "pl_off": OFF,
        },
        "mood_changed": {
            "p": "event",
            "name": "Mood changed",
            "uniq_id": unique("mood_changed"),
            "evt_typ": list(MOODS),
            "stat_t": topics.event,
            "val_tpl": event_template,
        },
        "detection": {
            "p": "switch",
            "name": "Detection",
            "uniq_id": unique("detection"),
            "cmd_t": topics.set_enabled,
            "stat_t": topics.enabled,
            "pl_on": ON,
            "pl_off": OFF,
            "ic": "mdi:face-recognition",
        },
        "mood_override": {
            "p": "select",
            "name": "Mood override",
            "uniq_id": unique("mood_override"),
            "cmd_t": topics.set_mood,
            "ops": [AUTO, *CLASSES],
            "ic": "mdi:account-music",
        },
        "fps": {
            "p": "sensor",
            "name": "Frame rate",
            "uniq_id": unique("fps"),
            "ent_cat": "diagnostic",
            "stat_t": topics.stats,
            "val_tpl": f"{{{{ value_json.{STATS_FPS} }}}}",
            "unit_of_meas": "fps",
            "stat_cla": "measurement",
            "sug_dsp_prc": 1,
        },
        "latency": {
            "p": "sensor",
            "name": "Pipeline latency",
            "uniq_id": unique("latency"),
            "ent_cat": "diagnostic",
            "dev_cla": "duration",
            "stat_t": topics.stats,
            "val_tpl": f"{{{{ value_json.{STATS_LATENCY_MS}.{STATS_LATENCY_PIPELINE} }}}}",
            "unit_of_meas": "ms",
            "stat_cla": "measurement",
            "sug_dsp_prc": 0,
        },
    }
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
        "qos": qos,
        "cmps": components,
    }


def parse_command(topics: Topics, topic: str, payload: bytes) -> Command:
    """Validate one incoming command message; raise :class:`CommandError` saying what is wrong."""
    if topic not in topics.commands:
        raise CommandError(f"{topic}: not a command topic (use {' or '.join(topics.commands)})")
    if len(payload) > MAX_COMMAND_BYTES:
        raise CommandError(f"{topic}: payload of {len(payload)} bytes is longer than {MAX_COMMAND_BYTES}")
    try:
        text = payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        raise CommandError(f"{topic}: payload is not UTF-8 text") from None
    if not text:
        raise CommandError(f"{topic}: empty payload")
    word = text.lower()
    if topic == topics.set_enabled:
        if word in _TRUE:
            return Command("enabled", True)
        if word in _FALSE:
            return Command("enabled", False)
        raise CommandError(f"{topic}: {text!r} is not ON or OFF (also accepted: true/false, 1/0)")
    if word == AUTO:
        return Command("mood", None)
    if word in CLASSES:
        return Command("mood", word)
    raise CommandError(f"{topic}: {text!r} is not one of {AUTO}, {', '.join(CLASSES)}")


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


def mood_payload(state: MoodState, playlist: str | None) -> bytes:
    """The retained ``mood`` document; ``playlist`` is None when no playlist belongs to the mood."""
    return _json(
        {
            "mood": state.mood,
            "confidence": round(float(state.confidence), 4),
            "probabilities": {name: round(float(p), 4) for name, p in state.probabilities.items()},
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
            "confidence": round(float(change.current.confidence), 4),
            "at": iso8601(change.at),
            "playlist": playlist,
        }
    )


def stats_payload(stats: Mapping[str, Any]) -> bytes:
    """The ``stats`` document; Home Assistant reads ``fps`` and ``latency_ms.pipeline`` from it."""
    return _json(stats)


def enabled_payload(enabled: bool) -> bytes:
    """The ``enabled`` echo, in the switch's ON/OFF vocabulary."""
    return (ON if enabled else OFF).encode()


def error_payload(message: str, topic: str | None, at: float) -> bytes:
    """The ``error`` document: what went wrong, on which topic (if any), when."""
    return _json({"error": message, "topic": topic, "at": iso8601(at)})
