"""MqttSink against a real mosquitto: retained state, events, discovery, commands, outages."""

from __future__ import annotations

import itertools
import json
import logging
import queue
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from needs import missing
from polling import wait_until

from edgemood.classes import CLASSES
from edgemood.config import MqttConfig
from edgemood.demo.services import LocalService, ServiceError
from edgemood.demo.services.mosquitto import start_mosquitto
from edgemood.errors import UsageError
from edgemood.mood.debounce import MoodChange, MoodState
from edgemood.platform.clock import Clock
from edgemood.sinks.mqtt import REFUSED_LOG_EVERY_S, MqttSink
from edgemood.sinks.mqtt_connection import TakeoverDetector, TakeoverRule
from edgemood.sinks.mqtt_topics import Command, discovery_payload, discovery_topic, ha_status_topic

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

VERSION = "9.9.9"
T0 = 1714564800.0
_ids = itertools.count()


def mood(name: str = "happy", since: float = T0) -> MoodState:
    probabilities = {c: 0.75 if c == name else 0.0 for c in CLASSES}
    return MoodState(mood=name, confidence=0.75, probabilities=probabilities, since=since)


def change(previous: str, current: str, at: float) -> MoodChange:
    return MoodChange(previous=previous, current=mood(current, at), at=at)


class Harness:
    """Builds sinks with a per-test device id and prefix, records their commands, stops them all."""

    def __init__(self, broker: LocalService) -> None:
        n = next(_ids)
        self.config = MqttConfig(
            host=broker.host,
            port=broker.port,
            base_topic="test",
            device_id=f"dev{n}",
            discovery_prefix=f"ha{n}",
        )
        self.commands: queue.Queue[Command] = queue.Queue()
        self.sinks: list[MqttSink] = []

    def sink(self, on_command: Callable[[Command], None] | None = None, **overrides: object) -> MqttSink:
        sink = MqttSink(
            replace(self.config, **overrides), on_command or self.commands.put, VERSION, clock=Clock(wall=lambda: T0)
        )
        self.sinks.append(sink)
        return sink

    def started(self, **overrides: object) -> MqttSink:
        sink = self.sink(**overrides)
        sink.start()
        return sink

    def close(self) -> None:
        for sink in self.sinks:
            sink.stop()


@pytest.fixture
def harness(mosquitto: LocalService) -> Iterator[Harness]:
    h = Harness(mosquitto)
    yield h
    h.close()


@contextmanager
def broker_in(workdir: Path, extra_conf: str) -> Iterator[LocalService]:
    """A private broker for tests that restart it or need a special config."""
    try:
        broker = start_mosquitto(workdir, extra_conf=extra_conf)
    except ServiceError as exc:
        missing(f"needs a local mosquitto: {exc}")
    with broker:
        yield broker


def wait_online(messages: Any, sink: MqttSink) -> None:
    messages.wait_for(lambda ms: any(m.topic == sink.topics.availability and m.payload == b"online" for m in ms))


def test_online_and_mood_are_retained(harness: Harness, mqtt_messages: Callable[..., Any]) -> None:
    sink = harness.started()
    sink.publish_mood(mood("sad"), "comfort")
    sink.publish_enabled(True)
    # Subscribe only afterwards: what a fresh subscriber sees is the retained state.
    first = mqtt_messages(sink.topics.mood, sink.topics.enabled)
    first.wait_for(lambda ms: len(ms) >= 2)
    late = mqtt_messages(sink.topics.availability, sink.topics.mood, sink.topics.enabled)
    late.wait_for(lambda ms: len(ms) >= 3)
    got = {m.topic: m for m in late.messages}
    assert got[sink.topics.availability].payload == b"online" and got[sink.topics.availability].retain
    assert got[sink.topics.enabled].payload == b"ON" and got[sink.topics.enabled].retain
    document = json.loads(got[sink.topics.mood].payload)
    assert got[sink.topics.mood].retain
    assert (document["mood"], document["playlist"], document["since"]) == ("sad", "comfort", "2024-05-01T12:00:00.000Z")


def test_events_are_delivered_and_not_retained(harness: Harness, mqtt_messages: Callable[..., Any]) -> None:
    sink = harness.started()
    live = mqtt_messages(sink.topics.event, sink.topics.availability)
    wait_online(live, sink)
    sink.publish_event(change("neutral", "happy", T0 + 1), "upbeat")
    event = live.wait_on(sink.topics.event)[0]
    assert not event.retain
    assert json.loads(event.payload) == {
        "from": "neutral",
        "to": "happy",
        "source": "camera",
        "confidence": 0.75,
        "at": "2024-05-01T12:00:01.000Z",
        "playlist": "upbeat",
    }
    # A later subscriber gets the retained mood (published after the event) but no event:
    # the broker sends retained messages in subscription order, event first.
    sink.publish_mood(mood("happy"), "upbeat")
    late = mqtt_messages(sink.topics.event, sink.topics.mood)
    late.wait_on(sink.topics.mood)
    assert late.on(sink.topics.event) == []


def test_discovery_is_retained_at_the_device_topic(
    harness: Harness, mqtt_messages: Callable[..., Any]
) -> None:
    sink = harness.started()
    topic = discovery_topic(harness.config.discovery_prefix, harness.config.device_id)
    mqtt_messages(topic).wait_on(topic)
    received = mqtt_messages(topic).wait_on(topic)[0]
    assert received.retain
    assert json.loads(received.payload) == discovery_payload(sink.topics, harness.config.device_id, VERSION, 1)


def test_commands_reach_on_command(harness: Harness, mqtt_messages: Callable[..., Any]) -> None:
    sink = harness.started()
    client = mqtt_messages(sink.topics.availability)
    wait_online(client, sink)
    client.publish(sink.topics.set_enabled, "OFF")
    client.publish(sink.topics.set_mood, " Happy ")
    client.publish(sink.topics.set_mood, "auto")
    got = [harness.commands.get(timeout=5) for _ in range(3)]
    assert got == [Command("enabled", False), Command("mood", "happy"), Command("mood", None)]


def test_malformed_commands_are_reported_not_fatal(
    harness: Harness, mqtt_messages: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    sink = harness.started()
    client = mqtt_messages(sink.topics.error, sink.topics.availability)
    wait_online(client, sink)
    client.publish(sink.topics.set_mood, b"\xff\xfe")
    client.publish(sink.topics.set_enabled, "maybe")
    client.publish(sink.topics.set_mood, "x" * 1000)
    client.publish(sink.topics.set_enabled, "on")
    assert harness.commands.get(timeout=5) == Command("enabled", True)
    errors = [json.loads(m.payload) for m in client.wait_on(sink.topics.error, 3)]
    assert [e["topic"] for e in errors] == [sink.topics.set_mood, sink.topics.set_enabled, sink.topics.set_mood]
    assert "not UTF-8" in errors[0]["error"]
    assert "'maybe' is not ON or OFF" in errors[1]["error"]
    assert "longer than 256" in errors[2]["error"]
    assert all(e["at"] == "2024-05-01T12:00:00.000Z" for e in errors)
    assert harness.commands.empty()
    assert "rejected command" in caplog.text


def test_a_failing_command_handler_is_reported(harness: Harness, mqtt_messages: Callable[..., Any]) -> None:
    calls: list[Command] = []

    def explode(command: Command) -> None:
        calls.append(command)
        raise RuntimeError("pipeline is busy")

    sink = harness.sink(on_command=explode)
    sink.start()
    client = mqtt_messages(sink.topics.error, sink.topics.availability)
    wait_online(client, sink)
    client.publish(sink.topics.set_mood, "fear")
    client.publish(sink.topics.set_mood, "sad")
    errors = [json.loads(m.payload) for m in client.wait_on(sink.topics.error, 2)]
    assert errors[0]["error"] == "mood command failed: pipeline is busy"
    assert calls == [Command("mood", "fear"), Command("mood", "sad")]


def test_stop_leaves_offline_retained(harness: Harness, mqtt_messages: Callable[..., Any]) -> None:
    sink = harness.started()
    wait_online(mqtt_messages(sink.topics.availability), sink)
    sink.stop()
    after = mqtt_messages(sink.topics.availability).wait_on(sink.topics.availability)
    assert after[0].payload == b"offline" and after[0].retain
    assert sink.health()["connected"] is False


def test_home_assistant_birth_resends_discovery_and_state(
    harness: Harness, mqtt_messages: Callable[..., Any]
) -> None:
    sink = harness.started()
    topic = discovery_topic(harness.config.discovery_prefix, harness.config.device_id)
    sink.publish_mood(mood("fear"), "calm")
    sink.publish_stats({"fps": 1.0, "latency_ms": {"pipeline": 30.0}})
    everything = {topic, sink.topics.mood, sink.topics.stats}
    # Home Assistant (re)starts after the daemon: all it gets at first is retained.
    mqtt_messages(*everything).wait_for(lambda ms: {m.topic for m in ms} == everything)
    ha = mqtt_messages(*everything)
    ha.wait_for(lambda ms: {m.topic for m in ms} == everything)
    assert all(m.retain for m in ha.messages)
    ha.publish(ha_status_topic(harness.config.discovery_prefix), "online")
    live = ha.wait_for(lambda ms: {m.topic for m in ms if not m.retain} == everything)
    resent = {m.topic: m.payload for m in live if not m.retain}
    assert json.loads(resent[sink.topics.mood])["mood"] == "fear"
    assert json.loads(resent[topic])["dev"]["ids"] == [f"edgemood_{harness.config.device_id}"]


def test_events_before_the_first_connect_are_queued_and_oldest_dropped(
    harness: Harness, mqtt_messages: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    sink = harness.sink(queue_size=2)
    live = mqtt_messages(sink.topics.event)
    for i, (old, new) in enumerate([("uncertain", "happy"), ("happy", "sad"), ("sad", "fear")]):
        sink.publish_event(change(old, new, T0 + i), None)
    assert sink.health() == {
        "published": 0, "dropped": 1, "connected": False, "reconnects": 0, "queued": 2, "refused": 0,
        "client_id_conflict": False,
    }  # fmt: skip
    assert "dropped the oldest" in caplog.text
    sink.start()
    events = [json.loads(m.payload)["to"] for m in live.wait_on(sink.topics.event, 2)]
    assert events == ["sad", "fear"]
    assert sink.health()["queued"] == 0


def test_broker_restart_delivers_queued_events_in_order(
    tmp_path: Path, mqtt_messages: Callable[..., Any]
) -> None:
    # Persistence lets the test subscriber's session (and what is queued for it)
    # survive the restart, so it cannot miss messages by reconnecting late.
    with broker_in(tmp_path, f"persistence true\npersistence_location {tmp_path}/") as broker:
        harness = Harness(broker)
        try:
            outage(harness, broker, mqtt_messages)
        finally:
            harness.close()


def outage(harness: Harness, broker: LocalService, mqtt_messages: Callable[..., Any]) -> None:
    """Stop the broker, make three events and a new mood, start it again; check what arrives."""
    sink = harness.started()
    topics = sink.topics
    watcher = mqtt_messages(topics.availability, topics.event, topics.mood, broker=broker, session="watcher")
    wait_online(watcher, sink)
    sink.publish_mood(mood("neutral"), "focus")
    watcher.wait_on(topics.mood)

    broker.stop()
    wait_until(lambda: not sink.health()["connected"])
    for i, new in enumerate(["happy", "sad", "surprise"]):
        sink.publish_event(change("neutral", new, T0 + i), None)
        sink.publish_mood(mood(new), None)
    assert sink.health()["queued"] == 3
    before = len(watcher.messages)
    broker.restart()

    arrived = watcher.wait_for(lambda ms: sum(m.topic == topics.event for m in ms[before:]) >= 3, timeout=20)
    # Fresh traffic only: the watcher's re-subscription also brings retained copies, and the
    # broker may re-deliver (dup) what it sent the watcher just before it went down.
    after = [m for m in arrived[before:] if not m.retain and not m.dup]
    assert [json.loads(m.payload)["to"] for m in after if m.topic == topics.event] == ["happy", "sad", "surprise"]
    onlines = [i for i, m in enumerate(after) if m.topic == topics.availability and m.payload == b"online"]
    first_event = next(i for i, m in enumerate(after) if m.topic == topics.event)
    assert onlines and onlines[0] < first_event
    moods = [json.loads(m.payload)["mood"] for m in after if m.topic == topics.mood]
    assert moods == ["surprise"]  # the latest state only, never a stale one
    stats = sink.health()
    assert (stats["connected"], stats["reconnects"], stats["dropped"], stats["queued"]) == (True, 1, 0, 0)


def test_password_login_and_no_password_in_logs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    passwd_tool = shutil.which("mosquitto_passwd")
    if not passwd_tool:
        missing("needs mosquitto_passwd (Debian package mosquitto)")
    secret = "s3cret-Pa55word"
    passwd = tmp_path / "passwd"
    subprocess.run([passwd_tool, "-b", "-c", str(passwd), "edgemood", secret], check=True, capture_output=True)
    (tmp_path / "right.secret").write_text(secret + "\n")
    (tmp_path / "wrong.secret").write_text("nope\n")
    caplog.set_level(logging.DEBUG)
    with broker_in(tmp_path / "broker", f"allow_anonymous false\npassword_file {passwd}") as broker:
        harness = Harness(broker)
        try:
            anonymous = harness.started(device_id="anonymous")
            wrong = harness.started(username="edgemood", password_file=str(tmp_path / "wrong.secret"), device_id="wrong")
            right = harness.started(username="edgemood", password_file=str(tmp_path / "right.secret"))
            wait_until(lambda: right.health()["connected"])
            wait_until(lambda: caplog.text.count("refused the connection") >= 2)
            assert not anonymous.health()["connected"] and not wrong.health()["connected"]
        finally:
            harness.close()
    assert secret not in caplog.text


def test_tls_with_a_private_ca(tmp_path: Path) -> None:
    openssl = shutil.which("openssl")
    if not openssl:
        missing("needs openssl to make a test certificate")
    cert, key = tmp_path / "broker.pem", tmp_path / "broker.key"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    with broker_in(tmp_path / "broker", f"certfile {cert}\nkeyfile {key}") as broker:
        harness = Harness(broker)
        try:
            trusting = harness.started(tls_ca=str(cert))
            wait_until(lambda: trusting.health()["connected"])
        finally:
            harness.close()


def test_an_unusable_ca_file_is_a_usage_error(tmp_path: Path) -> None:
    not_a_cert = tmp_path / "ca.pem"
    not_a_cert.write_text("hello\n")
    with pytest.raises(UsageError, match=r"\[mqtt\] tls_ca"):
        MqttSink(MqttConfig(tls_ca=str(not_a_cert), device_id="tls"), print, VERSION)


def test_override_and_face_count_are_retained_states(harness: Harness, mqtt_messages: Callable[..., Any]) -> None:
    sink = harness.started()
    live = mqtt_messages(sink.topics.override, sink.topics.faces)
    # while disconnected only the latest state is kept, so every step shows only once connected
    wait_until(lambda: sink.health()["connected"], timeout=10)
    sink.publish_override(None)
    sink.publish_faces(2)
    sink.publish_faces(2)  # unchanged: not sent again
    sink.publish_faces(0)
    sink.publish_override("sad")
    live.wait_for(lambda ms: len(ms) >= 4)
    assert [(m.topic, m.payload) for m in live.messages] == [
        (sink.topics.override, b"auto"), (sink.topics.faces, b"2"), (sink.topics.faces, b"0"),
        (sink.topics.override, b"sad"),
    ]  # fmt: skip
    late = mqtt_messages(sink.topics.override, sink.topics.faces)
    late.wait_for(lambda ms: len(ms) >= 2)
    assert {(m.topic, m.payload, m.retain) for m in late.messages} == {
        (sink.topics.override, b"sad", True), (sink.topics.faces, b"0", True),
    }  # fmt: skip


def test_retained_commands_are_ignored_reported_once_and_not_reapplied_after_a_reconnect(
    tmp_path: Path, mqtt_messages: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    # Persistence keeps the retained commands across the broker restart, as a real broker does.
    with broker_in(tmp_path, f"persistence true\npersistence_location {tmp_path}/") as broker:
        harness = Harness(broker)
        try:
            topics = harness.sink().topics
            other = mqtt_messages(topics.error, broker=broker)
            other.publish(topics.set_enabled, "OFF", retain=True)  # some client got "retain" wrong
            other.publish(topics.set_mood, "sad", retain=True)
            sink = harness.sinks[0]
            sink.start()
            errors = other.wait_on(topics.error, 2)
            assert {json.loads(m.payload)["topic"] for m in errors} == {topics.set_enabled, topics.set_mood}
            assert all("retained" in json.loads(m.payload)["error"] for m in errors)
            assert harness.commands.empty()

            broker.restart()  # the reconnect subscribes again, and the broker hands both over again
            wait_until(lambda: sink.health()["reconnects"] == 1 and sink.health()["connected"], timeout=15)
            other.publish(topics.set_enabled, "ON")  # a live command, after the retained ones
            assert harness.commands.get(timeout=5) == Command("enabled", True)
            assert harness.commands.empty()
            assert len(other.on(topics.error)) == 2
            assert caplog.text.count("ignored a retained message") == 2
        finally:
            harness.close()


def test_a_second_client_with_the_same_client_id_is_named_and_backed_off(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    first, second = harness.started(), harness.started()  # same device_id: the same client id
    assert first.client_id == second.client_id
    wait_until(lambda: "another MQTT client uses the same client id" in caplog.text, timeout=20)
    flagged = [sink for sink in (first, second) if sink.health()["client_id_conflict"]]
    assert flagged
    connects = {id(sink): sink.health()["reconnects"] for sink in flagged}
    time.sleep(5)  # normal reconnects come after 1 s; after the verdict they wait a minute
    for sink in flagged:
        assert sink.health()["reconnects"] == connects[id(sink)]
    assert any(sink.health()["queued"] >= 1 for sink in flagged)  # the error report waits for a connection
    assert f"same client id '{first.client_id}'" in caplog.text and "device_id" in caplog.text
    assert caplog.text.count("another MQTT client uses the same client id") <= 2  # once per sink


@pytest.mark.parametrize(
    ("lifetimes", "verdicts"),
    [
        ([1, 1, 1], [None, None, "detected"]),
        ([1, 1, 30, 1, 1], [None, None, None, None, None]),  # a lasting connection in between: a broker outage
        ([1, 1, 1, 1, 70, 400], [None, None, "detected", None, None, "cleared"]),
        ([0.5] * 7, [None, None, "detected", None, None, None, None]),  # said once, not at every drop
    ],
)
def test_takeover_rule(lifetimes: list[float], verdicts: list[str | None]) -> None:
    detector = TakeoverDetector(TakeoverRule(drops=3, short_s=10, backoff_s=(60, 300), stable_s=300))
    assert [detector.connection_lost(t) for t in lifetimes] == verdicts
    assert detector.detections == (1 if "detected" in verdicts else 0)


def test_a_refusing_broker_is_logged_once_a_minute(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    now = [1000.0]
    with broker_in(tmp_path, "allow_anonymous false") as broker:
        harness = Harness(broker)
        sink = MqttSink(harness.config, harness.commands.put, VERSION, clock=Clock(monotonic=lambda: now[0]))
        harness.sinks.append(sink)
        try:
            sink.start()
            wait_until(lambda: sink.health()["refused"] >= 2, timeout=10)  # paho retries after 1 s, 2 s, 4 s, ...
            assert caplog.text.count("refused the connection") == 1
            now[0] += REFUSED_LOG_EVERY_S
            refused = sink.health()["refused"]
            wait_until(lambda: sink.health()["refused"] > refused, timeout=10)
            assert caplog.text.count("refused the connection") == 2
            assert not sink.health()["connected"]
        finally:
            harness.close()
