"""The MQTT sink's connection: the configured paho client, and telling a client id conflict from an outage.

Another client with the same client id (two daemons with one ``device_id``)
makes the broker drop each connection as soon as the other reconnects, about
once a second, and paho only says "Unspecified error". ``TakeoverDetector``
keeps the lifetimes of connections, without I/O, so the sink can say so
plainly and slow its reconnects; ``configured_client`` is shared with
``edgemood doctor``.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from edgemood.config import MqttConfig, read_secret
from edgemood.errors import UsageError


@dataclass(frozen=True)
class TakeoverRule:
    """When repeated drops mean "another client has our client id", and what to do then.

    ``drops`` connections in a row lost within ``short_s`` of being made are
    the pattern (a broker outage drops a connection once, not again right
    after each reconnect); reconnects then wait ``backoff_s`` (paho doubles it
    up to the second value) until a connection lasts ``stable_s``.
    """

    drops: int = 3
    short_s: float = 10.0
    backoff_s: tuple[int, int] = (60, 300)
    stable_s: float = 300.0


class TakeoverDetector:
    """Pure bookkeeping of connection lifetimes; the sink feeds it and acts on its verdicts."""

    def __init__(self, rule: TakeoverRule) -> None:
        self.rule = rule
        self.suspected = False
        self.detections = 0
        self._short_in_a_row = 0

    def connection_lost(self, lifetime_s: float) -> str | None:
        """Account for an unexpected drop after ``lifetime_s``; ``"detected"``, ``"cleared"`` or None."""
        if lifetime_s >= self.rule.stable_s or (not self.suspected and lifetime_s >= self.rule.short_s):
            self._short_in_a_row = 0
            if self.suspected:
                self.suspected = False
                return "cleared"
            return None
        self._short_in_a_row += 1
        if not self.suspected and self._short_in_a_row >= self.rule.drops:
            self.suspected = True
            self.detections += 1
            return "detected"
        return None


def configured_client(cfg: MqttConfig, client_id: str) -> mqtt.Client:
    """A paho client with the config's credentials and TLS, and nothing else.

    Shared by the sink and ``edgemood doctor`` (which must not set a last will
    or reuse the daemon's client id).
    """
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
    if cfg.username:
        client.username_pw_set(cfg.username, read_secret(cfg.password_file) if cfg.password_file else None)
    if cfg.tls_ca:
        try:
            client.tls_set(ca_certs=cfg.tls_ca)
        except (OSError, ssl.SSLError) as exc:
            raise UsageError(f"[mqtt] tls_ca = {cfg.tls_ca}: not a usable CA certificate file ({exc})") from None
    return client
