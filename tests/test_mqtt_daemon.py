"""What Home Assistant reads from a running ``edgemood run``, end to end over a real broker.

The states a fresh subscriber gets at start (override ``auto``, the face count,
early stats), a forced mood's payload, and the clean stop's log line.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from daemon_harness import DaemonProcess, daemon_config

from edgemood.demo.frames import Scene, write_replay
from edgemood.demo.services import LocalService
from edgemood.sinks.mqtt_topics import Topics

pytestmark = [pytest.mark.integration, pytest.mark.timeout(120)]


def test_states_at_start_a_forced_mood_and_the_stop(
    tmp_path: Path, mosquitto: LocalService, mqtt_messages: Callable[..., Any]
) -> None:
    replay = tmp_path / "replay"
    write_replay(replay, (Scene("astronaut", 30),))
    config = daemon_config(replay, interval_s=0.2, mqtt=mosquitto, device_id="hastates")
    # the stats interval of a real install: the first stats must not wait for it
    config = dataclasses.replace(config, mqtt=dataclasses.replace(config.mqtt, stats_interval_s=60))
    topics = Topics(config.mqtt.base_topic, config.mqtt.device_id)
    watched = (topics.override, topics.faces, topics.stats, topics.mood, topics.enabled)
    messages = mqtt_messages(*watched)
    with DaemonProcess(config, tmp_path / "run") as daemon:
        started = time.monotonic()
        stats = json.loads(messages.wait_on(topics.stats, timeout=30)[0].payload)
        first_stats_after = time.monotonic() - started
        assert stats["frames"] >= 1 and "pipeline" in stats["latency_ms"]
        assert messages.on(topics.override)[0].payload == b"auto"
        assert messages.on(topics.faces)[-1].payload == b"1"
        messages.wait_for(lambda ms: any(json.loads(m.payload)["mood"] == "happy" for m in ms if m.topic == topics.mood))
        happy = [json.loads(m.payload) for m in messages.on(topics.mood)][-1]
        assert happy["source"] == "camera" and happy["confidence"] > 0.4 and happy["probabilities"]["happy"] > 0.4

        messages.publish(topics.set_mood, "sad")
        messages.wait_for(lambda ms: [m.payload for m in ms if m.topic == topics.override][-1] == b"sad")
        forced = [json.loads(m.payload) for m in messages.on(topics.mood)][-1]
        assert (forced["mood"], forced["source"], forced["confidence"], forced["probabilities"]) == (
            "sad", "override", None, {},
        )  # fmt: skip
        late = mqtt_messages(topics.override)  # what Home Assistant sees after its own restart
        assert late.wait_on(topics.override)[0].payload == b"sad"

        assert daemon.stop() == 0
        log = daemon.log()
    assert first_stats_after < 20, f"first stats after {first_stats_after:.1f} s"
    assert "stopped on SIGTERM" in log
