"""The configuration's sections: every key's type, default, rule and help, declared once.

The type annotation decides the accepted TOML type, ``setting(rule=...)`` adds the
range, choices or file check, and ``setting(help=...)`` is the text the example
config (``deploy/edgemood.example.toml``, made by ``edgemood.config.toml``) shows
above the key; ``{allowed}`` in a help text is the rule's range. ``RULES`` and
``SCHEMA`` are read from these fields for the loader in ``edgemood.config``.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, fields, is_dataclass
from typing import Any, Literal, get_args, get_type_hints

from edgemood.classes import CLASSES
from edgemood.config.rules import (
    GENRE_LIST,
    MODEL_FILE,
    NON_EMPTY,
    READABLE,
    RULE,
    SECRET,
    SOURCE,
    TOPIC,
    TOPIC_LEVEL,
    WRITABLE_FOLDER,
    Rule,
    between,
    one_of,
    setting,
)

#: What to do when several faces are in view: classify the largest (the person
#: nearest the speakers), skip the frame (the seed system's rule), or all (the
#: room's mood, combined by ``edgemood.mood.debounce.room_probabilities``).
#: Here, not in ``edgemood.vision``, so that checking a config needs no OpenCV.
FacePolicy = Literal["largest", "skip", "all"]
FACE_POLICIES: tuple[str, ...] = get_args(FacePolicy)


def default_device_id() -> str:
    """The hostname as an MQTT topic level: lowercased, odd characters as ``_``."""
    return re.sub(r"[^a-z0-9_-]", "_", socket.gethostname().lower()) or "edgemood"


@dataclass(frozen=True)
class CameraConfig:
    """Frame source and pacing."""

    source: str = setting(
        "picamera2",
        'Where frames come from: "picamera2" (the Pi camera, via apt\'s python3-picamera2),\n'
        '"v4l2:/dev/video0" (a USB webcam), "file:/var/lib/edgemood/clip.mp4",\n'
        '"dir:/var/lib/edgemood/frames" (a folder of images) or "rtsp://host/stream".',
        SOURCE,
    )
    interval_s: float = setting(
        1.0,
        "Seconds between sampled frames ({allowed}). One a second is plenty to read a\n"
        "mood and keeps a Pi cool. The unit's watchdog (WatchdogSec=60) expects the\n"
        "main loop to report far more often than once a minute.",
        between(0.05, 3600),
    )
    width: int = setting(
        320, "Capture width in pixels ({allowed}); 320x240 finds faces at desk distance.", between(16, 4096)
    )
    height: int = setting(240, "Capture height in pixels ({allowed}).", between(16, 4096))
    loop: bool = setting(True, 'Replay "file:" and "dir:" sources forever instead of stopping at the end.')


@dataclass(frozen=True)
class DetectConfig:
    """Haar face detector settings; ``DetectorSettings.from_config`` hands them to the detector."""

    scale_factor: float = setting(
        1.1,
        "OpenCV Haar detector: image pyramid step ({allowed}); smaller finds more faces, slower.",
        between(1.01, 2),
    )
    min_neighbors: int = setting(
        5, "Overlapping detections a face needs ({allowed}); higher means fewer false faces.", between(1, 20)
    )
    min_face_px: int = setting(
        48,
        "Smallest face side in pixels ({allowed}); faces far from the camera are ignored.\n"
        "48 px is a face about 2 m from a Pi camera at 640x480. Smaller costs more CPU\n"
        "when nobody is in view: the detector scans every size down to this one.",
        between(16, 1024),
    )
    max_face_px: int = setting(
        400,
        "Largest face side in pixels ({allowed}, not below min_face_px); nearer faces\n"
        "are ignored. 400 px is a face about 0.2 m from a Pi camera at 640x480.",
        between(16, 4096),
    )
    multiple_faces: str = setting(
        "largest",
        'Several faces in a frame: "largest" uses the biggest, "skip" ignores the frame,\n'
        '"all" takes the room\'s mood from every face (bigger, nearer faces count more).',
        one_of(*FACE_POLICIES),
    )


@dataclass(frozen=True)
class ModelConfig:
    """Classifier."""

    path: str = setting("", 'A .tflite with its sidecar .json; "" is the model shipped with edgemood.', MODEL_FILE)
    threads: int = setting(
        1, "TFLite interpreter threads ({allowed}). One keeps the other cores free for MPD.", between(1, 8)
    )
    personal: bool = setting(
        True,
        "Use the personal classifier head made by `edgemood enroll` when one exists in\n"
        "the state directory (/var/lib/edgemood).",
    )


@dataclass(frozen=True)
class MoodConfig:
    """Debouncer settings; see ``edgemood.mood.debounce`` for the semantics and why."""

    smoothing: float = setting(
        0.5,
        "How much the newest frame counts in the running average ({allowed}; 1 = no smoothing).",
        between(0, 1),
    )
    enter_threshold: float = setting(
        0.45, "Averaged probability a class needs to become the mood ({allowed}).", between(0, 1)
    )
    min_dwell_s: float = setting(
        3.0, "Seconds a new mood must hold before the music follows ({allowed}).", between(0, 3600)
    )
    absent_after_s: float = setting(
        10.0, 'Seconds without a face before the mood is "absent" ({allowed}).', between(0.1, 86400)
    )
    hysteresis: float = setting(
        0.1,
        "Margin a new class needs over the current mood, so two close ones don't flicker ({allowed}).",
        between(0, 0.5),
    )


@dataclass(frozen=True)
class MpdConfig:
    """MPD sink."""

    enabled: bool = setting(True, "Switch MPD playlists at all.")
    host: str = setting("localhost", "MPD server: host name or address.", NON_EMPTY)
    port: int = setting(6600, "MPD port ({allowed}).", between(1, 65535))
    password_file: str = setting("", 'File holding the MPD password ("" = none); see "Secrets" at the top.', SECRET)
    crossfade_s: float = setting(
        2.0, "Crossfade between songs in seconds ({allowed}), set on each switch.", between(0, 30)
    )
    shuffle: bool = setting(True, "Shuffle the new playlist.")
    switch: str = setting(
        "now", 'When to switch: "now", or "track_end" to let the current song finish.', one_of("now", "track_end")
    )
    manual_hold_s: float = setting(
        600.0,
        "Seconds automatic switching holds off after another MPD client changed the\n"
        "queue ({allowed}), so a hand-picked album is not interrupted.",
        between(0, 86400),
    )
    partition: str = setting(
        "",
        'MPD partition to play in ("" = the main queue); a partition of its own leaves\nthe main queue untouched.',
    )
    timeout_s: float = setting(5.0, "Seconds to wait for MPD to answer ({allowed}).", between(0.1, 300))
    autoplay: bool = setting(
        True,
        "A pause or stop made by another MPD client (your phone, mpc) is yours: it is\n"
        "never undone, and edgemood follows the mood again once you press play.\n"
        "autoplay: true starts music on a mood change when MPD is idle (stopped\n"
        "with an empty or finished queue, nobody having stopped it); false only\n"
        "switches playlists while something is already playing, for example\n"
        "  autoplay = false    # the music never starts by itself",
    )
    on_absent: str = setting(
        "keep",
        'What to do when nobody has been seen for [mood] absent_after_s: "keep" the\n'
        'music, or "pause" it and resume when a face returns (only a pause edgemood\n'
        "made itself is resumed; one you made, or a stop, stays), for example\n"
        '  on_absent = "pause"    # silence in an empty room',
        one_of("keep", "pause"),
    )


@dataclass(frozen=True)
class MqttConfig:
    """MQTT sink."""

    enabled: bool = setting(True, "Publish moods and events, announce to Home Assistant, take commands.")
    host: str = setting("localhost", "Broker: host name or address.", NON_EMPTY)
    port: int = setting(1883, "Broker port ({allowed}).", between(1, 65535))
    username: str = setting("", 'Broker user name ("" = anonymous).')
    password_file: str = setting("", 'File holding the broker password ("" = none); see "Secrets" at the top.', SECRET)
    tls_ca: str = setting(
        "",
        'CA certificate file to connect with TLS ("" = plain TCP), e.g.\n"/etc/edgemood/broker-ca.pem".',
        READABLE,
    )
    base_topic: str = setting(
        "edgemood", "Topics are <base_topic>/<device_id>/mood, .../event, .../set/mood and so on.", TOPIC
    )
    device_id: str = setting(
        help="This device's topic level. Default: the host name, lower-cased, with\n"
        "characters other than a-z 0-9 _ - replaced by _.",
        rule=TOPIC_LEVEL,
        factory=default_device_id,
        example="livingroom",
    )
    discovery_prefix: str = setting(
        "homeassistant", "Home Assistant's discovery prefix (its MQTT integration setting).", TOPIC
    )
    qos: int = setting(
        1, "QoS of states and events ({allowed}); 1 delivers events made while the broker was away.", between(0, 2)
    )
    stats_interval_s: float = setting(60.0, "Seconds between statistics messages ({allowed}).", between(1, 86400))
    queue_size: int = setting(
        1000, "Messages kept, in order, while the broker is away ({allowed}).", between(1, 100000)
    )
    keepalive_s: int = setting(30, "Seconds between keep-alive pings ({allowed}).", between(5, 3600))


@dataclass(frozen=True)
class LogConfig:
    """Logging and the debug frames."""

    level: str = setting(
        "info",
        "debug, info, warning or error; the journal keeps it (`journalctl -u edgemood`).",
        one_of("debug", "info", "warning", "error"),
    )
    debug_frames_dir: str = setting(
        "",
        "Privacy: camera frames stay in memory. Only when this names a folder are the\n"
        'face crops behind mood changes written there, e.g. "/var/lib/edgemood/frames"\n'
        "(the only place the service may write).",
        WRITABLE_FOLDER,
    )


DEFAULT_PLAYLISTS: Mapping[str, str] = {
    "anger": "calm",
    "contempt": "calm",
    "disgust": "calm",
    "fear": "calm",
    "happy": "upbeat",
    "neutral": "focus",
    "sad": "comfort",
    "surprise": "upbeat",
}

#: Genre tags whose songs ``edgemood playlists --create`` puts in each default
#: playlist; the README says why these. Matched ignoring case, spaces and
#: punctuation ("Hip Hop" is "hip-hop").
DEFAULT_GENRES: Mapping[str, tuple[str, ...]] = {
    "calm": ("Ambient", "Chillout", "Classical", "Downtempo", "Easy Listening", "Lounge", "New Age", "Smooth Jazz"),
    "comfort": ("Acoustic", "Folk", "Gospel", "Motown", "Reggae", "Singer-Songwriter", "Soul"),
    "focus": ("Instrumental", "Jazz", "Lo-Fi", "Piano", "Post-Rock", "Soundtrack", "Trip-Hop"),
    "upbeat": ("Dance", "Disco", "Electronic", "Funk", "Hip-Hop", "House", "Latin", "Pop", "Rock", "Ska"),
}


@dataclass(frozen=True)
class Config:
    """The whole configuration; ``playlists`` maps every class to a stored playlist.

    The help and rule of ``playlists`` and ``genres`` are those of each of their keys.
    """

    camera: CameraConfig = setting(factory=CameraConfig)
    detect: DetectConfig = setting(factory=DetectConfig)
    model: ModelConfig = setting(factory=ModelConfig)
    mood: MoodConfig = setting(factory=MoodConfig)
    playlists: dict[str, str] = setting(
        help="One MPD stored playlist per mood (`mpc lsplaylists` lists them); several moods\n"
        'may share one. "absent" and "uncertain" leave the music as it is.',
        rule=NON_EMPTY,
        factory=lambda: dict(DEFAULT_PLAYLISTS),
    )
    genres: dict[str, tuple[str, ...]] = setting(
        help="Which songs `edgemood playlists --create` puts in a stored playlist that does\n"
        "not exist yet: one key per playlist, the genre tags of its songs (as in\n"
        '`mpc list genre`; case, spaces and punctuation do not matter: "hip hop"\n'
        'matches "Hip-Hop"). A key replaces that playlist\'s whole list. Other\n'
        "playlists your [playlists] uses get a key of their own, for example\n"
        '  rainy = ["Blues", "Jazz", "Singer-Songwriter"]\n'
        "Soothing music for the tense moods, warm and uplifting songs for sad,\n"
        "unobtrusive instrumentals for neutral, lively music for happy and surprise:",
        rule=GENRE_LIST,
        factory=lambda: dict(DEFAULT_GENRES),
    )
    mpd: MpdConfig = setting(factory=MpdConfig)
    mqtt: MqttConfig = setting(factory=MqttConfig)
    log: LogConfig = setting(factory=LogConfig)


def _schema() -> dict[str, dict[str, type]]:
    """section -> key -> expected Python type, read from the dataclass annotations."""
    schema: dict[str, dict[str, type]] = {}
    for section, section_type in get_type_hints(Config).items():
        if is_dataclass(section_type):
            schema[section] = get_type_hints(section_type)
        elif section == "genres":  # keyed by stored playlist: the defaults' names here, any in key_type
            schema[section] = {name: tuple for name in DEFAULT_GENRES}
        else:  # dict[str, str]: one key per class
            schema[section] = {name: get_args(section_type)[1] for name in CLASSES}
    return schema


SCHEMA = _schema()


def section_fields(section: str) -> dict[str, Any]:
    """key -> dataclass field of a dataclass section; {} for ``playlists`` and ``genres``."""
    section_type = get_type_hints(Config)[section]
    return {f.name: f for f in fields(section_type)} if is_dataclass(section_type) else {}


def _rules() -> dict[str, Rule]:
    """ "section.key" (or "section.*" for a dict section) -> its rule, read from the fields."""
    rules: dict[str, Rule] = {}
    for section_field in fields(Config):
        own = section_fields(section_field.name)
        if not own and section_field.metadata[RULE] is not None:
            rules[f"{section_field.name}.*"] = section_field.metadata[RULE]
        rules.update({f"{section_field.name}.{k}": f.metadata[RULE] for k, f in own.items() if f.metadata[RULE]})
    return rules


#: "section.key" (or "section.*") -> extra check; keys absent here are only type-checked.
RULES: dict[str, Rule] = _rules()


def key_type(section: str, key: str) -> type | None:
    """The type ``key`` takes in ``section``, None if it has no such key; ``[genres]`` takes any playlist name."""
    return SCHEMA[section].get(key) or (tuple if section == "genres" else None)
