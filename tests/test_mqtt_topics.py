"""The MQTT contract without a broker: topics, discovery, command parsing, payloads."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edgemood.classes import ABSENT, CLASSES, MOODS, UNCERTAIN
from edgemood.mood.debounce import MoodChange, MoodState
from edgemood.platform.stats import StatsCollector
from edgemood.sinks.mqtt_topics import (
    AUTO,
    MAX_COMMAND_BYTES,
    STATS_FPS,
    STATS_LATENCY_MS,
    STATS_LATENCY_PIPELINE,
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
    iso8601,
    mood_payload,
    override_payload,
    parse_command,
    stats_payload,
)

TOPICS = Topics("edgemood", "kitchen")
DEPLOY_HA = Path(__file__).resolve().parent.parent / "deploy" / "homeassistant"
# 2024-05-01T12:00:00.250Z
T0 = 1714564800.25


def state(mood: str = "happy", confidence: float = 0.8) -> MoodState:
    probabilities = {name: (confidence if name == mood else (1 - confidence) / 7) for name in CLASSES}
    return MoodState(mood=mood, confidence=confidence, probabilities=probabilities, since=T0)


# -- topics ------------------------------------------------------------------------------


def test_every_topic_lives_under_base_and_device() -> None:
    topics = Topics("home/edgemood", "pi-4")
    expected = {
        "availability": "home/edgemood/pi-4/availability",
        "mood": "home/edgemood/pi-4/mood",
        "event": "home/edgemood/pi-4/event",
        "stats": "home/edgemood/pi-4/stats",
        "faces": "home/edgemood/pi-4/faces",
        "enabled": "home/edgemood/pi-4/enabled",
        "override": "home/edgemood/pi-4/override",
        "error": "home/edgemood/pi-4/error",
        "set_enabled": "home/edgemood/pi-4/set/enabled",
        "set_mood": "home/edgemood/pi-4/set/mood",
    }
    assert {name: getattr(topics, name) for name in expected} == expected
    assert topics.commands == (expected["set_enabled"], expected["set_mood"])


def test_discovery_and_birth_topics_follow_the_prefix() -> None:
    assert discovery_topic("ha", "pi-4") == "ha/device/pi-4/config"
    assert ha_status_topic("ha") == "ha/status"


# -- discovery ---------------------------------------------------------------------------

#: Home Assistant's documented discovery abbreviations that this payload may use.
KNOWN_COMPONENT_KEYS = {
    "p", "name", "uniq_id", "dev_cla", "ops", "stat_t", "val_tpl", "json_attr_t", "ic", "pl_on", "pl_off",
    "evt_typ", "cmd_t", "ent_cat", "unit_of_meas", "stat_cla", "sug_dsp_prc", "qos",
    # spelled out: Home Assistant before 2025.10 knows no abbreviation for default_entity_id
    "object_id", "default_entity_id",
}  # fmt: skip
KNOWN_ROOT_KEYS = {"dev", "o", "avty_t", "cmps"}
KNOWN_DEVICE_KEYS = {"ids", "name", "mdl", "mf", "sw"}
KNOWN_ORIGIN_KEYS = {"name", "sw", "url"}
#: Keys each platform cannot work without.
REQUIRED = {
    "sensor": {"stat_t"},
    "binary_sensor": {"stat_t"},
    "event": {"stat_t", "evt_typ"},
    "switch": {"cmd_t", "stat_t"},
    "select": {"cmd_t", "ops", "stat_t"},
}


@pytest.fixture(scope="module")
def discovery() -> dict:
    return discovery_payload(TOPICS, "kitchen", "1.2.3", qos=1, support_url="https://example.org/edgemood")


def test_discovery_uses_only_known_abbreviations(discovery: dict) -> None:
    assert set(discovery) <= KNOWN_ROOT_KEYS
    assert set(discovery["dev"]) <= KNOWN_DEVICE_KEYS
    assert set(discovery["o"]) <= KNOWN_ORIGIN_KEYS
    for name, component in discovery["cmps"].items():
        assert set(component) <= KNOWN_COMPONENT_KEYS, name


def test_discovery_device_origin_and_availability(discovery: dict) -> None:
    assert discovery["dev"] == {
        "ids": ["edgemood_kitchen"],
        "name": "edgemood kitchen",
        "mdl": "edgemood",
        "mf": "edgemood",
        "sw": "1.2.3",
    }
    assert discovery["o"] == {"name": "edgemood", "sw": "1.2.3", "url": "https://example.org/edgemood"}
    assert "url" not in discovery_payload(TOPICS, "kitchen", "1.2.3")["o"]
    assert discovery["avty_t"] == TOPICS.availability
    json.dumps(discovery)  # one retained JSON message


def test_qos_is_set_in_every_component_not_at_the_root() -> None:
    # Home Assistant copies only availability, state and command topics from the
    # root of a device discovery message into its components.
    for qos in (0, 1, 2):
        payload = discovery_payload(TOPICS, "kitchen", "1.2.3", qos=qos)
        assert "qos" not in payload
        assert {c["qos"] for c in payload["cmps"].values()} == {qos}


def test_every_component_has_platform_unique_id_and_required_keys(discovery: dict) -> None:
    components = discovery["cmps"]
    unique_ids = [c["uniq_id"] for c in components.values()]
    assert len(set(unique_ids)) == len(unique_ids)
    for name, component in components.items():
        assert component["uniq_id"] == f"edgemood_kitchen_{name}"
        assert component["name"]
        assert REQUIRED[component["p"]] <= set(component), name
    platforms = sorted(c["p"] for c in components.values())
    assert platforms == ["binary_sensor", "event", "select", "sensor", "sensor", "sensor", "sensor", "switch"]


def test_entity_ids_are_suggested_for_old_and_new_home_assistant() -> None:
    components = discovery_payload(Topics("edgemood", "Pi-4"), "Pi-4", "1.2.3")["cmps"]
    suggested = {c["default_entity_id"] for c in components.values()}
    assert suggested == {
        "sensor.edgemood_pi_4_mood", "binary_sensor.edgemood_pi_4_face_present", "sensor.edgemood_pi_4_face_count",
        "event.edgemood_pi_4_mood_changed", "switch.edgemood_pi_4_detection", "select.edgemood_pi_4_mood_override",
        "sensor.edgemood_pi_4_frame_rate", "sensor.edgemood_pi_4_pipeline_latency",
    }  # fmt: skip
    for component in components.values():
        assert component["default_entity_id"] == f"{component['p']}.{component['object_id']}"


def test_the_dashboard_card_shows_every_discovered_entity() -> None:
    # (tests/test_deploy.py checks that the examples use no entity that discovery does not make)
    components = discovery_payload(Topics("edgemood", "livingroom"), "livingroom", "1.2.3")["cmps"]
    card = (DEPLOY_HA / "dashboard-card.yaml").read_text()
    assert {c["default_entity_id"] for c in components.values() if c["default_entity_id"] not in card} == set()


def test_discovery_wires_entities_to_the_right_topics(discovery: dict) -> None:
    c = discovery["cmps"]
    assert c["mood"]["dev_cla"] == "enum"
    assert c["mood"]["ops"] == [*CLASSES, ABSENT, UNCERTAIN]
    assert c["mood"]["stat_t"] == c["mood"]["json_attr_t"] == TOPICS.mood
    assert c["face"]["stat_t"] == TOPICS.mood
    assert c["mood_changed"]["stat_t"] == TOPICS.event
    assert c["mood_changed"]["evt_typ"] == list(MOODS)
    assert (c["detection"]["cmd_t"], c["detection"]["stat_t"]) == (TOPICS.set_enabled, TOPICS.enabled)
    assert (c["detection"]["pl_on"], c["detection"]["pl_off"]) == ("ON", "OFF")
    assert (c["mood_override"]["cmd_t"], c["mood_override"]["stat_t"]) == (TOPICS.set_mood, TOPICS.override)
    assert c["mood_override"]["ops"] == [AUTO, *CLASSES]
    assert c["faces"]["stat_t"] == TOPICS.faces and "val_tpl" not in c["faces"]
    for name in ("fps", "latency"):
        assert c[name]["ent_cat"] == "diagnostic"
        assert c[name]["stat_t"] == TOPICS.stats


def test_every_select_option_is_a_command_the_parser_accepts(discovery: dict) -> None:
    for option in discovery["cmps"]["mood_override"]["ops"]:
        command = parse_command(TOPICS, TOPICS.set_mood, option.encode())
        # and what the override topic then says is that same option again
        assert override_payload(command.value) == option.encode()  # type: ignore[arg-type]
    for payload in ("pl_on", "pl_off"):
        parse_command(TOPICS, TOPICS.set_enabled, discovery["cmps"]["detection"][payload].encode())


def _strict_paths(template: str) -> set[tuple[str, ...]]:
    """Every ``value_json.a.b`` / ``value_json['a']`` path a template reads without a guard.

    Home Assistant logs a warning and keeps the old state when such a path is
    missing; reads through ``.get(...)`` render None instead, which it shows
    as unknown.
    """
    paths = set()
    for match in re.finditer(r"value_json((?:\.\w+|\['\w+'\])+)", template):
        path = tuple(re.findall(r"\w+", match.group(1)))
        if path[0] != "get":
            paths.add(path)
    return paths


def _has_path(document: dict, path: tuple[str, ...]) -> bool:
    for key in path:
        if not isinstance(document, dict) or key not in document:
            return False
        document = document[key]
    return True


def test_templates_read_keys_that_every_payload_carries(discovery: dict) -> None:
    forced = MoodState(mood="sad", confidence=0.3, probabilities={}, since=T0, forced=True)
    idle = StatsCollector(clock=lambda: 5.0, cpu_clock=lambda: 1.0)  # a window without frames
    busy = StatsCollector(clock=lambda: 5.0, cpu_clock=lambda: 1.0)
    busy.record(1, {"detect": 0.01, "classify": 0.002})
    documents = {
        TOPICS.mood: [json.loads(mood_payload(s, p)) for s, p in ((state(), "upbeat"), (forced, None))],
        TOPICS.event: [json.loads(event_payload(MoodChange("neutral", s, T0), None)) for s in (state(), forced)],
        TOPICS.stats: [json.loads(stats_payload(c.snapshot())) for c in (idle, busy)],
    }
    checked = 0
    for name, component in discovery["cmps"].items():
        for path in _strict_paths(component.get("val_tpl", "")):
            for document in documents[component["stat_t"]]:
                assert _has_path(document, path), (name, path, document)
                checked += 1
    assert checked >= 10


def test_stats_templates_read_what_the_collector_reports(discovery: dict) -> None:
    busy = StatsCollector(clock=lambda: 5.0, cpu_clock=lambda: 1.0)
    busy.record(1, {"detect": 0.01, "classify": 0.002})
    document = busy.snapshot()
    assert document["fps"] >= 0 and document["latency_ms"]["pipeline"] == 12.0
    assert f"get('{STATS_FPS}')" in discovery["cmps"]["fps"]["val_tpl"]
    latency = discovery["cmps"]["latency"]["val_tpl"]
    assert f"get('{STATS_LATENCY_MS}')" in latency and f"get('{STATS_LATENCY_PIPELINE}')" in latency


def test_face_sensor_is_off_exactly_when_absent(discovery: dict) -> None:
    template = discovery["cmps"]["face"]["val_tpl"]
    assert template == "{{ 'OFF' if value_json.mood == 'absent' else 'ON' }}"


# -- commands ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "value"),
    [(b"ON", True), (b"on", True), (b" On \n", True), (b"true", True), (b"1", True),
     (b"OFF", False), (b"off", False), (b"FALSE", False), (b"0", False)],
)  # fmt: skip
def test_set_enabled_accepts_switch_words(payload: bytes, value: bool) -> None:
    assert parse_command(TOPICS, TOPICS.set_enabled, payload) == Command("enabled", value)


@pytest.mark.parametrize("mood", CLASSES)
def test_set_mood_accepts_every_class_in_any_case(mood: str) -> None:
    assert parse_command(TOPICS, TOPICS.set_mood, f"  {mood.upper()} ".encode()) == Command("mood", mood)


@pytest.mark.parametrize("payload", [b"auto", b"AUTO", b" Auto\n"])
def test_set_mood_auto_releases(payload: bytes) -> None:
    assert parse_command(TOPICS, TOPICS.set_mood, payload) == Command("mood", None)


@pytest.mark.parametrize(
    ("topic", "payload", "says"),
    [
        ("edgemood/kitchen/set/volume", b"ON", "not a command topic"),
        ("edgemood/other/set/mood", b"happy", "not a command topic"),
        (TOPICS.mood, b"happy", "not a command topic"),
        (TOPICS.set_mood, b"\xff\xfe", "not UTF-8"),
        (TOPICS.set_mood, b"", "empty"),
        (TOPICS.set_enabled, b"   \n", "empty"),
        (TOPICS.set_mood, b"x" * (MAX_COMMAND_BYTES + 1), "longer than"),
        (TOPICS.set_enabled, b"maybe", "not ON or OFF"),
        (TOPICS.set_enabled, b"2", "not ON or OFF"),
        (TOPICS.set_mood, b"absent", "not one of"),
        (TOPICS.set_mood, b"unknown", "not one of"),
        (TOPICS.set_mood, b"uncertain", "not one of"),
        (TOPICS.set_mood, b"joy", "not one of"),
        (TOPICS.set_mood, b'{"mood": "happy"}', "not one of"),
    ],
)
def test_bad_commands_are_rejected_with_a_reason(topic: str, payload: bytes, says: str) -> None:
    with pytest.raises(InvalidCommand, match=says) as caught:
        parse_command(TOPICS, topic, payload)
    assert topic in str(caught.value)


@given(topic=st.sampled_from(TOPICS.commands), payload=st.binary(max_size=300))
def test_any_payload_gives_a_command_or_a_command_error(topic: str, payload: bytes) -> None:
    try:
        command = parse_command(TOPICS, topic, payload)
    except InvalidCommand:
        return
    assert command.kind in ("enabled", "mood")
    assert command.value in (True, False, None, *CLASSES)


# -- payloads ----------------------------------------------------------------------------


def test_iso8601_is_utc_with_z() -> None:
    assert iso8601(T0) == "2024-05-01T12:00:00.250Z"
    assert datetime.fromisoformat(iso8601(T0)).timestamp() == pytest.approx(T0)


def test_mood_payload() -> None:
    document = json.loads(mood_payload(state("sad", 0.61234567), "comfort"))
    assert (document["mood"], document["source"]) == ("sad", "camera")
    assert document["confidence"] == pytest.approx(0.6123, abs=1e-4)
    assert set(document["probabilities"]) == set(CLASSES)
    assert document["probabilities"]["sad"] == pytest.approx(0.6123, abs=1e-4)
    assert document["since"] == "2024-05-01T12:00:00.250Z"
    assert document["playlist"] == "comfort"


def test_mood_payload_without_playlist_or_probabilities() -> None:
    absent = MoodState(mood=ABSENT, confidence=0.0, probabilities={}, since=T0)
    assert json.loads(mood_payload(absent, None)) == {
        "mood": "absent",
        "source": "camera",
        "confidence": 0.0,
        "probabilities": {},
        "since": "2024-05-01T12:00:00.250Z",
        "playlist": None,
    }


def test_event_payload() -> None:
    change = MoodChange(previous="neutral", current=state("happy", 0.9), at=T0 + 5)
    assert json.loads(event_payload(change, "upbeat")) == {
        "from": "neutral",
        "to": "happy",
        "source": "camera",
        "confidence": 0.9,
        "at": "2024-05-01T12:00:05.250Z",
        "playlist": "upbeat",
    }


def test_a_forced_mood_says_so_and_claims_no_camera_evidence() -> None:
    # the debouncer keeps smoothing while a mood is forced: those numbers are the
    # camera's, not the reason for the forced mood, so they are not published with it
    forced = replace(state("happy", 0.8), mood="sad", forced=True)
    assert json.loads(mood_payload(forced, "comfort")) == {
        "mood": "sad",
        "source": "override",
        "confidence": None,
        "probabilities": {},
        "since": "2024-05-01T12:00:00.250Z",
        "playlist": "comfort",
    }
    event = json.loads(event_payload(MoodChange(previous="happy", current=forced, at=T0), "comfort"))
    assert (event["to"], event["source"], event["confidence"]) == ("sad", "override", None)

def test_stats_payload_accepts_numpy_numbers() -> None:
    np = pytest.importorskip("numpy")
    document = json.loads(stats_payload({"frames": np.int64(12), "fps": np.float32(0.5), "latency_ms": {"pipeline": 3}}))
    assert document == {"frames": 12, "fps": 0.5, "latency_ms": {"pipeline": 3}}
    with pytest.raises(TypeError, match="object"):
        stats_payload({"bad": object()})


def test_enabled_faces_and_override_payloads() -> None:
    assert (enabled_payload(True), enabled_payload(False)) == (b"ON", b"OFF")
    assert (faces_payload(0), faces_payload(3)) == (b"0", b"3")
    assert (override_payload(None), override_payload("fear")) == (b"auto", b"fear")


def test_error_payload() -> None:
    assert json.loads(error_payload("bad mood", TOPICS.set_mood, T0)) == {
        "error": "bad mood",
        "topic": TOPICS.set_mood,
        "at": "2024-05-01T12:00:00.250Z",
    }
