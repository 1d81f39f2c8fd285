"""Shared fixtures: real local servers started from temporary configs."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from needs import missing
from paho.mqtt.enums import CallbackAPIVersion

from edgemood.demo.services import LocalService, ServiceError

# -- mosquitto -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalService]:
    """One broker for the whole session on a free localhost port; tests keep apart by topic."""
    from edgemood.demo.services.mosquitto import start_mosquitto

    try:
        broker = start_mosquitto(tmp_path_factory.mktemp("mosquitto"))
    except ServiceError as exc:
        missing(f"needs a local mosquitto: {exc}")
    yield broker
    broker.stop()


@dataclass(frozen=True)
class Received:
    """One message as a subscriber saw it."""

    topic: str
    payload: bytes
    retain: bool
    #: The broker's own re-delivery of a message it had sent before (QoS 1).
    dup: bool = False


class MessageLog:
    """A paho client that subscribes to topic filters and records every message, in order.

    ``session`` names a persistent session (clean_session off), so the broker
    keeps queueing for it while it is disconnected.
    """

    def __init__(self, broker: LocalService, topics: tuple[str, ...], session: str | None = None) -> None:
        self.messages: list[Received] = []
        self._changed = threading.Condition()
        self._subscribed = threading.Event()
        self._topics = topics
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=session or "", clean_session=session is None)
        client.on_connect = lambda c, u, f, rc, p: c.subscribe([(topic, 1) for topic in self._topics])
        client.on_subscribe = lambda c, u, mid, codes, p: self._subscribed.set()
        client.on_message = self._record
        client.reconnect_delay_set(1, 1)
        client.connect(broker.host, broker.port)
        client.loop_start()
        self.client = client
        if not self._subscribed.wait(5):
            self.close()
            raise AssertionError(f"test subscriber could not subscribe to {topics} on port {broker.port}")

    def _record(self, client: mqtt.Client, userdata: object, message: mqtt.MQTTMessage) -> None:
        with self._changed:
            self.messages.append(Received(message.topic, message.payload, bool(message.retain), bool(message.dup)))
            self._changed.notify_all()

    def on(self, topic: str) -> list[Received]:
        """Messages received so far on exactly ``topic``."""
        with self._changed:
            return [m for m in self.messages if m.topic == topic]

    def wait_for(self, predicate: Callable[[list[Received]], bool], timeout: float = 5.0) -> list[Received]:
        """Block until ``predicate(messages)`` holds; fail with what did arrive otherwise."""
        with self._changed:
            if not self._changed.wait_for(lambda: predicate(self.messages), timeout):
                raise AssertionError(f"expected messages did not arrive within {timeout} s; got {self.messages}")
            return list(self.messages)

    def wait_on(self, topic: str, count: int = 1, timeout: float = 5.0) -> list[Received]:
        """Block until ``count`` messages arrived on ``topic``; return those."""
        self.wait_for(lambda messages: sum(m.topic == topic for m in messages) >= count, timeout)
        return self.on(topic)

    def publish(self, topic: str, payload: bytes | str, retain: bool = False) -> None:
        """Publish at QoS 1 and wait for the broker's acknowledgement."""
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def mqtt_messages(mosquitto: LocalService) -> Iterator[Callable[..., MessageLog]]:
    """Factory: ``mqtt_messages("a/#", "b", broker=None, session=None)`` -> a subscribed MessageLog.

    ``broker`` defaults to the session's mosquitto; every log is closed after the test.
    """
    logs: list[MessageLog] = []

    def subscribe(*topics: str, broker: LocalService | None = None, session: str | None = None) -> MessageLog:
        log = MessageLog(broker or mosquitto, topics, session)
        logs.append(log)
        return log

    yield subscribe
    for log in logs:
        log.close()


# -- mpd -------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def mpd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalService]:
    """One MPD for the whole session on a free localhost port, with generated tracks.

    Stored playlists: the default mapping's (3 tracks each) plus ``many`` (8),
    long enough that a shuffled queue can be told from the stored order.
    """
    from edgemood.demo.services.mpd import default_playlists, start_mpd

    try:
        server = start_mpd(tmp_path_factory.mktemp("mpd"), {**default_playlists(), "many": 8})
    except ServiceError as exc:
        missing(f"needs a local mpd: {exc}")
    yield server
    server.stop()


# -- frames ----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def replay(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A replay folder: a smiling face, then nobody, so the mood alternates happy/absent
    about once a second at the harness's 0.1 s interval (``daemon_harness.ALTERNATING``)."""
    from daemon_harness import ALTERNATING

    from edgemood.demo.frames import write_replay

    folder = tmp_path_factory.mktemp("replay")
    write_replay(folder, ALTERNATING)
    return folder
