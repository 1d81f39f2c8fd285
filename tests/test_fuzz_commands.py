"""Fuzzing the running daemon's MQTT commands: nothing a broker client sends may take it down.

``tests/test_mqtt_topics.py`` fuzzes ``parse_command`` alone; here the payloads
go through a real broker into ``edgemood run``: random bytes, huge payloads,
invalid UTF-8, JSON of every shape, and valid commands in odd spellings, all
mixed. Every rejected one must come back on the ``error`` topic and in the
log, every valid ``set/enabled`` must be echoed, and the daemon must still be
running and stop cleanly at the end.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from daemon_harness import ALTERNATING, DaemonProcess, daemon_config
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from edgemood.classes import CLASSES
from edgemood.demo.frames import write_replay
from edgemood.demo.services import LocalService
from edgemood.sinks.mqtt_topics import MAX_COMMAND_BYTES, Topics

pytestmark = pytest.mark.integration

#: What the contract accepts, per command, after trimming and in any case (DESIGN.md, MQTT).
ACCEPTED = {"enabled": {"on", "off", "true", "false", "1", "0"}, "mood": {"auto", *CLASSES}}


def accepted(kind: str, payload: bytes) -> bool:
    """Whether the contract accepts ``payload`` on ``set/<kind>``."""
    if len(payload) > MAX_COMMAND_BYTES:
        return False
    try:
        return payload.decode("utf-8").strip().lower() in ACCEPTED[kind]
    except UnicodeDecodeError:
        return False


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
spelled = st.tuples(
    st.sampled_from(sorted(ACCEPTED["enabled"] | ACCEPTED["mood"])),
    st.sampled_from(["", " ", "\n", "\t ", "\r\n"]),
    st.booleans(),
).map(lambda t: f"{t[1]}{t[0].upper() if t[2] else t[0]}{t[1]}".encode())
payloads = st.one_of(
    st.binary(max_size=MAX_COMMAND_BYTES + 44),
    st.text(max_size=MAX_COMMAND_BYTES + 44).map(str.encode),
    st.binary(max_size=64).map(lambda b: b"\xc3(" + b),  # never valid UTF-8
    json_values.map(lambda v: json.dumps(v).encode()),
    st.sampled_from([{"mood": "happy"}, {"state": "ON"}, ["ON"], "happy"]).map(lambda v: json.dumps(v).encode()),
    st.integers(MAX_COMMAND_BYTES + 1, 1 << 20).map(lambda n: b"\x00\xff" * (n // 2) + b"Z"),
    spelled,
)
commands = st.lists(st.tuples(st.sampled_from(sorted(ACCEPTED)), payloads), min_size=1, max_size=8)


@dataclass
class Fuzzed:
    """The daemon under fire, its topics, a subscriber, and what was sent so far."""

    daemon: DaemonProcess
    topics: Topics
    messages: Any
    rejected: int = 0
    sent: list[tuple[str, int]] = field(default_factory=list)


@pytest.fixture
def fuzzed(
    tmp_path: Path, mosquitto: LocalService, mqtt_messages: Callable[..., Any]
) -> Iterator[Fuzzed]:
    """One daemon for every example: what matters is that it survives all of them in a row."""
    replay = tmp_path / "replay"
    write_replay(replay, ALTERNATING)
    config = daemon_config(replay, interval_s=0.5, mqtt=mosquitto, device_id="fuzz")
    topics = Topics(config.mqtt.base_topic, config.mqtt.device_id)
    messages = mqtt_messages(topics.error, topics.enabled)
    with DaemonProcess(config, tmp_path / "run") as daemon:
        messages.wait_on(topics.enabled, timeout=30)  # subscribed and publishing
        state = Fuzzed(daemon, topics, messages)
        yield state
        assert daemon.alive(), daemon.log()[-3000:]
        log = daemon.log()
        assert daemon.stop() == 0, log[-3000:]
    assert "Traceback" not in log and not re.search(r"^\S+ \S+ (ERROR|CRITICAL) ", log, re.MULTILINE), log[-3000:]
    assert log.count("MQTT: rejected command") == state.rejected
    print(f"fuzz: {len(state.sent)} commands, {state.rejected} rejected, largest {max(n for _, n in state.sent)} bytes")


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(batch=commands)
def test_fuzzed_commands_never_crash_the_daemon_and_each_bad_one_is_reported(
    fuzzed: Fuzzed, batch: list[tuple[str, bytes]]
) -> None:
    topics, messages = fuzzed.topics, fuzzed.messages
    topic = {"enabled": topics.set_enabled, "mood": topics.set_mood}
    errors_before, echoes_before = len(messages.on(topics.error)), len(messages.on(topics.enabled))
    for kind, payload in batch:
        messages.publish(topic[kind], payload)
        fuzzed.sent.append((kind, len(payload)))
    # A valid command last: its echo comes after everything the batch caused, on one connection.
    messages.publish(topics.set_enabled, "ON")
    bad = [(kind, payload) for kind, payload in batch if not accepted(kind, payload)]
    echoes = sum(kind == "enabled" for kind, payload in batch if accepted(kind, payload)) + 1
    messages.wait_on(topics.enabled, echoes_before + echoes, timeout=10)
    fuzzed.rejected += len(bad)

    errors = [json.loads(m.payload) for m in messages.on(topics.error)[errors_before:]]
    assert [e["topic"] for e in errors] == [topic[kind] for kind, _ in bad]
    # Each names its topic and quotes at most the 256 accepted bytes (repr: up to 4 characters a byte).
    assert all(e["error"].startswith(e["topic"]) and len(e["error"]) < 4 * MAX_COMMAND_BYTES + 200 for e in errors)
    assert fuzzed.daemon.alive()
