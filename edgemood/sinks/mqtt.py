"""MQTT sink: mood state, events, stats and Home Assistant discovery out; commands in.

paho-mqtt 2.x does the protocol, the network thread and the reconnect with
backoff (``connect_async`` + ``loop_start``, ``reconnect_delay_set`` with the
bounds of ``edgemood.platform.backoff``); this class decides what is sent
when, so that a broker outage loses nothing that matters:

* Every (re)connect, in paho's connect callback: ``online`` (retained), the
  command subscriptions, the discovery message and the latest retained
  states, then everything that was held back while away, oldest first.
  Home Assistant's birth message brings discovery and the states again.
* States (``mood``, ``enabled``, ``stats``) are only ever needed in their latest
  version, so while the broker is away they are kept, not queued.
* Events and error reports made while the broker is away go to a bounded FIFO
  (``queue_size``; when full the oldest is dropped, counted and logged).
* Commands are events: a retained message on a ``set/`` topic (left by any
  client) would otherwise be applied again at every reconnect, overriding what
  the user did since. It is ignored, and reported once (log and ``error``).
* Another client with the same client id (two daemons with one ``device_id``)
  makes the broker drop each connection as soon as the other reconnects,
  about once a second, and paho only says "Unspecified error". Several drops
  shortly after connecting are taken as that: said plainly in the log and on
  ``error``, counted in the stats, and reconnects back off to once a minute
  until a connection lasts.
* A broker that refuses the connection (credentials) is logged once a minute,
  not at every retry.

Why our own FIFO rather than paho's offline queue: paho does keep QoS>0
messages published while disconnected and re-sends them after reconnecting,
also across a broker restart with a clean session (checked with paho 2.2
against mosquitto 2.0, MQTT 3.1.1 and 5). But it re-sends them *after* the
connect callback has run, so the fresh ``online``/state messages would be
followed by every stale state from the outage; it drops the newest message,
not the oldest, when ``max_queued_messages`` is reached; and it queues
nothing at QoS 0. So while disconnected nothing is handed to paho, and what
paho still holds unacknowledged from the moment the connection died is
taken back with ``drop_out_messages()`` (paho >= 2.2) in the connect callback
and re-sent ahead of the FIFO, which keeps events in order. Delivery is at
least once (QoS 1): a message in flight when the broker dies can arrive twice.

Callbacks run on paho's network thread; ``on_command`` is called there too and
must be quick and thread-safe.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import paho.mqtt.client as mqtt

from edgemood.config import MqttConfig
from edgemood.mood.debounce import MoodChange, MoodState
from edgemood.platform.backoff import FIRST_S, LONGEST_S
from edgemood.platform.clock import Clock, RateLimit
from edgemood.sinks.mqtt_connection import TakeoverDetector, TakeoverRule, configured_client
from edgemood.sinks.mqtt_topics import (
    MAX_COMMAND_BYTES,
    OFFLINE,
    ONLINE,
    Command,
    InvalidCommand,
    Topics,
    discovery_payload,
    discovery_topic,
    enabled_payload,
    error_payload,
    event_payload,
    faces_payload,
    ha_status_topic,
    mood_payload,
    override_payload,
    parse_command,
    stats_payload,
)

log = logging.getLogger(__name__)

#: How long ``stop()`` waits for ``offline`` to be acknowledged.
STOP_WAIT_S = 0.8
#: paho's reconnect delay, doubling from the first to the second (s): the shared backoff's bounds.
RECONNECT_DELAY_S = (FIRST_S, LONGEST_S)
#: Retained commands remembered as reported (a bound on what a hostile client can make us keep).
RETAINED_REMEMBERED = 64
#: A refused connection (wrong credentials) is logged at most this often (s).
REFUSED_LOG_EVERY_S = 60.0


class MqttSink:
    """Publishes the daemon's state to an MQTT broker and hands commands back to it."""

    def __init__(
        self,
        config: MqttConfig,
        on_command: Callable[[Command], None],
        version: str,
        clock: Clock = Clock(),
        takeover: TakeoverRule = TakeoverRule(),
    ) -> None:
        self._config = config
        self._topics = Topics(config.base_topic, config.device_id)
        self._on_command = on_command
        self._clock = clock
        self._takeover = TakeoverDetector(takeover)
        self._ha_status = ha_status_topic(config.discovery_prefix)
        self._discovery = (
            discovery_topic(config.discovery_prefix, config.device_id),
            json.dumps(discovery_payload(self._topics, config.device_id, version, config.qos)).encode(),
        )
        # One re-entrant lock orders "connected?" decisions against the connect
        # and disconnect callbacks, so nothing slips between backlog and broker.
        self._lock = threading.RLock()
        self._count_lock = threading.Lock()
        self._connected = False
        self._stopped = False
        self._connects = 0
        self._connect_error: str | None = None  # paho's thread only
        self._connected_at = 0.0  # paho's thread only, monotonic
        self._refused = 0
        self._refused_reason: str | None = None  # paho's thread only, with its log's rate limit:
        self._refused_log = RateLimit(REFUSED_LOG_EVERY_S, clock.monotonic)
        self._retained_seen: set[tuple[str, bytes]] = set()  # paho's thread only
        self._published = 0
        self._dropped = 0
        self._states: dict[str, bytes] = {}
        self._backlog: deque[tuple[str, bytes]] = deque()
        self.client_id = f"edgemood-{config.device_id}"
        self._client = self._make_client()

    @property
    def topics(self) -> Topics:
        """The topics this sink publishes to and listens on."""
        return self._topics

    def _make_client(self) -> mqtt.Client:
        client = configured_client(self._config, self.client_id)
        client.will_set(self._topics.availability, OFFLINE, qos=self._config.qos, retain=True)
        client.reconnect_delay_set(*RECONNECT_DELAY_S)
        client.on_connect = self._handle_connect
        client.on_connect_fail = self._handle_connect_fail
        client.on_disconnect = self._handle_disconnect
        client.on_message = self._handle_message
        client.on_publish = self._handle_publish
        return client

    # -- lifecycle -----------------------------------------------------------------

    def start(self) -> None:
        """Begin connecting in the background; returns at once, also when the broker is down."""
        cfg = self._config
        self._client.connect_async(cfg.host, cfg.port, keepalive=cfg.keepalive_s)
        self._client.loop_start()
        log.info("MQTT: connecting to %s:%d as %s", cfg.host, cfg.port, self.client_id)

    def stop(self) -> None:
        """Leave ``offline`` retained (waiting under a second for it), disconnect, end the thread."""
        with self._lock:
            self._stopped = True
            info = self._send(self._topics.availability, OFFLINE.encode(), retain=True) if self._connected else None
            if self._backlog:
                log.warning("MQTT: %d queued event(s) not delivered before stop", len(self._backlog))
        if info is not None and info.rc == mqtt.MQTT_ERR_SUCCESS:
            try:
                info.wait_for_publish(STOP_WAIT_S)
            except (RuntimeError, ValueError):
                log.debug("MQTT: offline message not acknowledged before stop")
        self._client.disconnect()
        self._client.loop_stop()

    # -- outgoing ------------------------------------------------------------------

    def publish_mood(self, state: MoodState, playlist: str | None) -> None:
        """The current mood, retained: what a fresh subscriber (or Home Assistant) sees first."""
        self._publish_state(self._topics.mood, mood_payload(state, playlist))

    def publish_event(self, change: MoodChange, playlist: str | None) -> None:
        """One debounced change, not retained; queued while the broker is away."""
        self._publish_transient(self._topics.event, event_payload(change, playlist))

    def publish_stats(self, stats: Mapping[str, Any]) -> None:
        """The periodic health document, retained."""
        self._publish_state(self._topics.stats, stats_payload(stats))

    def publish_enabled(self, enabled: bool) -> None:
        """Echo of the detection switch, retained, so Home Assistant's switch shows the truth."""
        self._publish_state(self._topics.enabled, enabled_payload(enabled))

    def publish_override(self, mood: str | None) -> None:
        """The override select's state, retained: the forced class, or ``auto`` (None)."""
        self._publish_state(self._topics.override, override_payload(mood))

    def publish_faces(self, count: int) -> None:
        """The number of faces in the latest frame, retained; sent only when it changes."""
        payload = faces_payload(count)
        with self._lock:
            if self._states.get(self._topics.faces) == payload:
                return
        self._publish_state(self._topics.faces, payload)

    def report_error(self, message: str, topic: str | None = None) -> None:
        """Tell MQTT users about a rejected command or a runtime problem (``error`` topic)."""
        self._publish_transient(self._topics.error, error_payload(message, topic, self._clock.wall()))

    def health(self) -> dict[str, Any]:
        """Counters for the stats document and ``doctor``: published (acknowledged), dropped,
        connected, reconnects, queued, refused (connections the broker refused), and
        client_id_conflict (another client seems to use this client id right now)."""
        with self._lock, self._count_lock:
            return {
                "published": self._published,
                "dropped": self._dropped,
                "connected": self._connected,
                "reconnects": max(self._connects - 1, 0),
                "queued": len(self._backlog),
                "refused": self._refused,
                "client_id_conflict": self._takeover.suspected and not self._lasting(),
            }

    def _lasting(self) -> bool:
        """Whether the current connection has lasted long enough to rule out a client id conflict."""
        return self._connected and self._clock.monotonic() - self._connected_at >= self._takeover.rule.stable_s

    def _send(self, topic: str, payload: bytes, retain: bool = False) -> mqtt.MQTTMessageInfo:
        return self._client.publish(topic, payload, qos=self._config.qos, retain=retain)

    def _publish_state(self, topic: str, payload: bytes) -> None:
        with self._lock:
            if self._stopped:
                return
            self._states[topic] = payload
            if self._connected:
                self._send(topic, payload, retain=True)

    def _publish_transient(self, topic: str, payload: bytes) -> None:
        with self._lock:
            if self._stopped:
                return
            if self._connected:
                self._send(topic, payload)
                return
            if len(self._backlog) >= self._config.queue_size:
                self._backlog.popleft()
                self._dropped += 1
                log.warning(
                    "MQTT: broker away and %d messages queued; dropped the oldest (%d dropped so far)",
                    self._config.queue_size,
                    self._dropped,
                )
            self._backlog.append((topic, payload))

    def _send_discovery_and_states(self) -> None:
        self._send(*self._discovery, retain=True)
        for topic, payload in self._states.items():
            self._send(topic, payload, retain=True)

    # -- paho callbacks (network thread) ------------------------------------------

    def _handle_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        if reason.is_failure:
            self._refused_connection(str(reason))
            return
        with self._lock:
            # Unacknowledged leftovers of the previous connection are older than the
            # backlog; states among them are superseded by self._states.
            leftovers = [(m.topic, m.payload) for m in client.drop_out_messages() if not m.retain]
            self._send(self._topics.availability, ONLINE.encode(), retain=True)
            qos = self._config.qos
            client.subscribe([(topic, qos) for topic in (*self._topics.commands, self._ha_status)])
            self._send_discovery_and_states()
            for topic, payload in leftovers:
                self._send(topic, payload)
            while self._backlog:
                self._send(*self._backlog.popleft())
            self._connected = True
            self._connects += 1
            self._connect_error = None
            self._refused_reason = None
            self._connected_at = self._clock.monotonic()
        log.info(
            "MQTT: connected to %s:%d (%d leftover(s) re-sent)", self._config.host, self._config.port, len(leftovers)
        )

    def _refused_connection(self, reason: str) -> None:
        """Count a refused connect; log it when new, or once a minute while it goes on."""
        with self._lock:
            self._refused += 1
        if reason != self._refused_reason:
            self._refused_reason = reason
            self._refused_log = RateLimit(REFUSED_LOG_EVERY_S, self._clock.monotonic)
        if not self._refused_log.due():
            return
        log.warning(
            "MQTT: broker %s:%d refused the connection: %s (%d refusal(s) so far; retrying, logged once a minute)",
            self._config.host,
            self._config.port,
            reason,
            self._refused,
        )

    def _handle_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        # paho retries quietly and passes no reason, but calls this from inside its
        # ``except OSError``, so the exception being handled is the reason. Without this
        # line a wrong CA or host would look like a daemon that simply never connects.
        reason = str(sys.exc_info()[1] or "unknown error")
        if reason != self._connect_error:
            self._connect_error = reason
            log.warning(
                "MQTT: cannot connect to %s:%d: %s; retrying in the background",
                self._config.host,
                self._config.port,
                reason,
            )

    def _handle_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, properties: Any
    ) -> None:
        with self._lock:
            was_connected, self._connected = self._connected, False
            stopping = self._stopped
        if stopping or not was_connected:
            return
        verdict = self._takeover.connection_lost(self._clock.monotonic() - self._connected_at)
        if verdict == "detected":
            rule = self._takeover.rule
            client.reconnect_delay_set(*rule.backoff_s)
            message = (
                f"most likely another MQTT client uses the same client id {self.client_id!r}: the broker dropped this "
                f"connection {rule.drops} times in a row within {rule.short_s:g} s of connecting (is a second "
                f"edgemood running with [mqtt] device_id = {self._config.device_id!r}? give each its own); "
                f"reconnecting every {rule.backoff_s[0]} s or more until a connection lasts"
            )
            log.error("MQTT: %s", message)
            self.report_error(message)
        elif verdict == "cleared":
            client.reconnect_delay_set(*RECONNECT_DELAY_S)
            log.warning("MQTT: lost the broker (%s) after a lasting connection; back to normal reconnects", reason)
        elif self._takeover.suspected:
            log.debug("MQTT: dropped again (%s); the client id is still in use elsewhere", reason)
        else:
            log.warning("MQTT: lost the broker (%s); reconnecting in the background", reason)

    def _handle_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        # paho calls this holding its outgoing-message mutex, which publish() also
        # takes: using self._lock here would deadlock against a publish made under it.
        with self._count_lock:
            self._published += 1

    def _handle_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        if message.topic == self._ha_status:
            if message.payload.strip().lower() == ONLINE.encode():
                log.info("MQTT: Home Assistant is back; re-sending discovery and state")
                with self._lock:
                    if self._connected:
                        self._send_discovery_and_states()
            return
        if message.retain:
            self._ignore_retained_command(message.topic, message.payload)
            return
        try:
            command = parse_command(self._topics, message.topic, message.payload)
        except InvalidCommand as exc:
            log.warning("MQTT: rejected command: %s", exc)
            self.report_error(str(exc), message.topic)
            return
        try:
            self._on_command(command)
        except Exception as exc:  # a bad command must never kill paho's network thread
            log.exception("MQTT: %s command %r failed", command.kind, command.value)
            self.report_error(f"{command.kind} command failed: {exc}", message.topic)

    def _ignore_retained_command(self, topic: str, payload: bytes) -> None:
        """A retained ``set/`` message is a stale order, not a command: say so once, apply never.

        The broker hands it over again at every (re)subscription, so it is
        reported the first time each (topic, payload) shows up.
        """
        key = (topic, payload[:MAX_COMMAND_BYTES])
        if key in self._retained_seen:
            return
        if len(self._retained_seen) >= RETAINED_REMEMBERED:
            self._retained_seen.clear()
        self._retained_seen.add(key)
        shown = payload[:40].decode("utf-8", "replace")
        message = (
            f"{topic}: ignored a retained message ({shown!r}): commands are events and must not be retained; "
            f"clear it with: mosquitto_pub -r -n -t '{topic}'"
        )
        log.warning("MQTT: %s", message)
        self.report_error(message, topic)
