"""Configuration: TOML file plus ``EDGEMOOD_SECTION__KEY`` overrides, validated once.

Every key is optional. Validation is one walk over the dataclass fields below:
the field's type annotation decides the accepted TOML type (a bool is not an
int; an int is accepted for a float) and ``_RULES`` adds ranges, choices and
file checks. Anything wrong becomes a ``UsageError`` with one line naming the
key (or the environment variable), the value and what is allowed, so the
daemon exits 2 before it opens the camera instead of failing an hour later.

Relative paths in the config are relative to the daemon's working directory
(``/`` under systemd), so absolute paths are the safe choice there.
"""

from __future__ import annotations

import json
import os
import re
import socket
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from pathlib import Path
from typing import Any, get_args, get_type_hints

from edgemood.classes import CLASSES
from edgemood.errors import UsageError
from edgemood.platform.logsetup import add_redaction

DEFAULT_CONFIG_PATH = Path("/etc/edgemood/edgemood.toml")
ENV_PREFIX = "EDGEMOOD_"


def default_device_id() -> str:
    """The hostname as an MQTT topic level: lowercased, odd characters as ``_``."""
    return re.sub(r"[^a-z0-9_-]", "_", socket.gethostname().lower()) or "edgemood"


@dataclass(frozen=True)
class CameraConfig:
    """Frame source and pacing.

    source: ``"picamera2"``, ``"v4l2:/dev/video0"``, ``"file:clip.mp4"``,
    ``"dir:frames/"`` or ``"rtsp://..."``. interval_s (0.05..3600): seconds
    between sampled frames; 1 s is plenty for a mood and keeps a Pi cool.
    width/height (16..4096): capture size; 320x240 finds faces at desk
    distance. loop: replay file/dir sources forever.
    """

    source: str = "picamera2"
    interval_s: float = 1.0
    width: int = 320
    height: int = 240
    loop: bool = True


@dataclass(frozen=True)
class DetectConfig:
    """Haar face detector settings.

    scale_factor (1.01..2), min_neighbors (1..20), min_face_px (16..1024),
    max_face_px (16..4096, not below min_face_px): OpenCV's detectMultiScale
    parameters; only faces in that size range are looked for. multiple_faces:
    ``"largest"`` (use the biggest face), ``"skip"`` (ignore frames with more than one face) or
    ``"all"`` (the room's mood from every face, see ``debounce.room_probabilities``).
    """

    scale_factor: float = 1.1
    min_neighbors: int = 5
    min_face_px: int = 48
    max_face_px: int = 400
    multiple_faces: str = "largest"


@dataclass(frozen=True)
class ModelConfig:
    """Classifier. path: ``""`` = the shipped model, else an existing ``.tflite``.

    threads (1..8): TFLite interpreter threads. personal: use an enrolled head
    if one is present.
    """

    path: str = ""
    threads: int = 1
    personal: bool = True


@dataclass(frozen=True)
class MoodConfig:
    """Debouncer settings; see ``edgemood.mood.debounce`` for the semantics and why.

    smoothing (0..1): EMA weight of the newest frame, 1 = no smoothing.
    enter_threshold (0..1): smoothed probability a class needs to become the mood.
    min_dwell_s (0..3600): how long a new mood must hold before it is accepted.
    absent_after_s (0.1..86400): seconds without a face before ``absent``.
    hysteresis (0..0.5): margin a challenger needs over the current mood.
    """

    smoothing: float = 0.5
    enter_threshold: float = 0.45
    min_dwell_s: float = 3.0
    absent_after_s: float = 10.0
    hysteresis: float = 0.1


@dataclass(frozen=True)
class MpdConfig:
    """MPD sink.

    port (1..65535); password_file: a readable file holding the password
    (``""`` = none); crossfade_s (0..30); switch: ``"now"`` or ``"track_end"``;
    manual_hold_s (0..86400): pause automatic switching after another client
    changed the queue; partition: MPD partition name (``""`` = the default
    queue); timeout_s (0.1..300): socket timeout. autoplay: start playback
    when MPD is idle and nobody stopped it (false: switch only while
    something plays); on_absent: ``"keep"`` the music when nobody is seen,
    or ``"pause"`` it (and resume that pause when a face returns).
    """

    enabled: bool = True
    host: str = "localhost"
    port: int = 6600
    password_file: str = ""
    crossfade_s: float = 2.0
    shuffle: bool = True
    switch: str = "now"
    manual_hold_s: float = 600.0
    partition: str = ""
    timeout_s: float = 5.0
    autoplay: bool = True
    on_absent: str = "keep"


@dataclass(frozen=True)
class MqttConfig:
    """MQTT sink.

    port (1..65535); password_file / tls_ca: readable files (``""`` = none);
    base_topic, device_id, discovery_prefix: MQTT topic levels (non-empty, no
    ``+``/``#``, no leading/trailing ``/``; device_id no ``/`` at all);
    qos (0..2); stats_interval_s (1..86400); queue_size (1..100000): messages
    kept while the broker is away; keepalive_s (5..3600).
    """

    enabled: bool = True
    host: str = "localhost"
    port: int = 1883
    username: str = ""
    password_file: str = ""
    tls_ca: str = ""
    base_topic: str = "edgemood"
    device_id: str = field(default_factory=default_device_id)
    discovery_prefix: str = "homeassistant"
    qos: int = 1
    stats_interval_s: float = 60.0
    queue_size: int = 1000
    keepalive_s: int = 30


@dataclass(frozen=True)
class LogConfig:
    """level: debug/info/warning/error. debug_frames_dir: frames are written
    there only when set (privacy: never by default)."""

    level: str = "info"
    debug_frames_dir: str = ""


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
    """The whole configuration; ``playlists`` maps every class to a stored playlist."""

    camera: CameraConfig = field(default_factory=CameraConfig)
    detect: DetectConfig = field(default_factory=DetectConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    mood: MoodConfig = field(default_factory=MoodConfig)
    playlists: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_PLAYLISTS))
    genres: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_GENRES))
    mpd: MpdConfig = field(default_factory=MpdConfig)
    mqtt: MqttConfig = field(default_factory=MqttConfig)
    log: LogConfig = field(default_factory=LogConfig)


# --------------------------------------------------------------------------- rules


@dataclass(frozen=True)
class _Rule:
    """A check beyond the type; ``template`` may use ``{noun}`` ("an integer")."""

    ok: Callable[[Any], bool]
    template: str


def _between(low: float, high: float) -> _Rule:
    return _Rule(lambda v: low <= v <= high, f"must be {{noun}} in {low:g}..{high:g}")


def _one_of(*choices: str) -> _Rule:
    return _Rule(lambda v: v in choices, "must be one of " + ", ".join(json.dumps(c) for c in choices))


def _is_source(value: str) -> bool:
    from edgemood.sources.spec import parse_source  # one parser for config and sources; no OpenCV

    try:
        parse_source(value)
    except ValueError:
        return False
    return True


def _topic(allow_slash: bool) -> _Rule:
    def ok(value: str) -> bool:
        bad = "+#\0" if allow_slash else "+#/\0"
        edges_ok = not value.startswith("/") and not value.endswith("/")
        return bool(value) and edges_ok and not any(c in bad for c in value)

    what = "without +, # or a leading/trailing /" if allow_slash else "without +, # or /"
    return _Rule(ok, f"must be a non-empty MQTT topic {what}")


_NON_EMPTY = _Rule(lambda v: bool(v.strip()), "must be a non-empty string (not only spaces)")
_READABLE = _Rule(
    lambda v: not v or (os.path.isfile(v) and os.access(v, os.R_OK)), 'must be a readable file ("" for none)'
)
_TOPIC = _topic(allow_slash=True)


def _is_secret_file(path: str) -> bool:
    """Readable, UTF-8 and not empty, checked now: the daemon reads a password only when
    it connects, long after a config error could still be reported as one."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    return bool(text.rstrip("\r\n")) and not _has_control_chars(text.rstrip("\r\n"))


_SECRET = _Rule(
    lambda v: not v or _is_secret_file(v),
    'must be a readable file holding one line of UTF-8 text, not empty ("" for none)',
)


def _is_writable_folder(path: str) -> bool:
    """A folder the daemon can create files in, or can create (its nearest existing parent).

    ``os.access`` also reports a read-only mount (the unit's ``ProtectSystem=strict``),
    and /proc or /sys are refused outright: they are never a place for pictures.
    """
    folder = Path(path).absolute()
    if folder.parts[1:2] in (("proc",), ("sys",), ("dev",)):
        return False
    while not folder.exists():
        if folder.parent == folder:
            return False
        folder = folder.parent
    return folder.is_dir() and os.access(folder, os.W_OK | os.X_OK)


_WRITABLE_FOLDER = _Rule(
    lambda v: not v or _is_writable_folder(v), 'must be a folder the service can write ("" for none)'
)


def _has_control_chars(text: str) -> bool:
    """A control character in a value that ends up in a protocol line (MPD, MQTT, HTTP) breaks it."""
    return any(ord(c) < 32 or ord(c) == 127 for c in text)

#: "section.key" (or "section.*") -> extra check; keys absent here are only type-checked.
_RULES: dict[str, _Rule] = {
    "camera.source": _Rule(
        _is_source,
        'must be "picamera2", "v4l2:/dev/videoN" or "v4l2:N", "file:PATH", "dir:PATH", a glob, or an rtsp:// or http(s):// URL',
    ),
    "camera.interval_s": _between(0.05, 3600),
    "camera.width": _between(16, 4096),
    "camera.height": _between(16, 4096),
    "detect.scale_factor": _between(1.01, 2),
    "detect.min_neighbors": _between(1, 20),
    "detect.min_face_px": _between(16, 1024),
    "detect.max_face_px": _between(16, 4096),
    "detect.multiple_faces": _one_of("largest", "skip", "all"),
    "model.path": _Rule(
        lambda v: not v or os.path.isfile(v), 'must be an existing model file ("" for the shipped one)'
    ),
    "model.threads": _between(1, 8),
    "mood.smoothing": _between(0, 1),
    "mood.enter_threshold": _between(0, 1),
    "mood.min_dwell_s": _between(0, 3600),
    "mood.absent_after_s": _between(0.1, 86400),
    "mood.hysteresis": _between(0, 0.5),
    "playlists.*": _NON_EMPTY,
    "mpd.host": _NON_EMPTY,
    "mpd.port": _between(1, 65535),
    "mpd.password_file": _SECRET,
    "mpd.crossfade_s": _between(0, 30),
    "mpd.switch": _one_of("now", "track_end"),
    "mpd.manual_hold_s": _between(0, 86400),
    "mpd.timeout_s": _between(0.1, 300),
    "mpd.on_absent": _one_of("keep", "pause"),
    "genres.*": _Rule(
        lambda v: bool(v) and all(g.strip() and not _has_control_chars(g) for g in v),
        "must be {noun}: one or more genre names, none blank",
    ),
    "mqtt.host": _NON_EMPTY,
    "mqtt.port": _between(1, 65535),
    "mqtt.password_file": _SECRET,
    "mqtt.tls_ca": _READABLE,
    "mqtt.base_topic": _TOPIC,
    # Home Assistant ignores discovery topics whose node id has other characters
    "mqtt.device_id": _Rule(lambda v: re.fullmatch(r"[A-Za-z0-9_-]+", v) is not None, "must be letters, digits, _ or -"),
    "mqtt.discovery_prefix": _TOPIC,
    "mqtt.qos": _between(0, 2),
    "mqtt.stats_interval_s": _between(1, 86400),
    "mqtt.queue_size": _between(1, 100000),
    "mqtt.keepalive_s": _between(5, 3600),
    "log.level": _one_of("debug", "info", "warning", "error"),
    "log.debug_frames_dir": _WRITABLE_FOLDER,
}

_NOUNS: dict[type, str] = {
    bool: "true or false", int: "an integer", float: "a number", str: "a string", tuple: "an array of strings"
}


def _schema() -> dict[str, dict[str, type]]:
    """section -> key -> expected Python type, read from the dataclass annotations."""
    schema: dict[str, dict[str, type]] = {}
    for section, section_type in get_type_hints(Config).items():
        if is_dataclass(section_type):
            schema[section] = get_type_hints(section_type)
        elif section == "genres":  # keyed by stored playlist: the defaults' names here, any in _key_type
            schema[section] = {name: tuple for name in DEFAULT_GENRES}
        else:  # dict[str, str]: one key per class
            schema[section] = {name: get_args(section_type)[1] for name in CLASSES}
    return schema


SCHEMA = _schema()


def _key_type(section: str, key: str) -> type | None:
    """The type ``key`` takes in ``section``, None if it has no such key; ``[genres]`` takes any playlist name."""
    return SCHEMA[section].get(key) or (tuple if section == "genres" else None)


# --------------------------------------------------------------------------- loading

#: (section, key) -> (value, label naming where it came from)
_Raw = dict[tuple[str, str], tuple[Any, str]]


def _render(value: Any) -> str:
    """A value as the user wrote it (TOML-ish), shortened for a one-line message."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = json.dumps(value, ensure_ascii=False)
    elif isinstance(value, (int, float)):
        text = repr(value)
    else:
        text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def _convert(value: Any, expected: type) -> Any:
    """The value as ``expected``, or ``None`` when its TOML type does not fit."""
    if expected is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if expected is int and isinstance(value, bool):
        return None
    if expected is tuple:
        return tuple(value) if isinstance(value, list) and all(isinstance(v, str) for v in value) else None
    return value if isinstance(value, expected) else None


def _check(section: str, key: str, value: Any, label: str) -> Any:
    """Type- and rule-check one value; raise the one-line error naming ``label``."""
    expected = _key_type(section, key)
    assert expected is not None, (section, key)  # unknown keys were refused while reading
    rule = _RULES.get(f"{section}.{key}") or _RULES.get(f"{section}.*")
    allowed = (rule.template if rule else "must be {noun}").format(noun=_NOUNS[expected])
    converted = _convert(value, expected)
    if isinstance(converted, str) and _has_control_chars(converted):
        raise UsageError(f"{label} = {_render(value)}: must not contain control characters")
    if converted is None or (rule is not None and not rule.ok(converted)):  # NaN fails every range
        raise UsageError(f"{label} = {_render(value)}: {allowed}")
    return converted


def _from_file(path: Path) -> _Raw:
    """Read and flatten the TOML file; unknown sections and keys are errors here."""
    where = f"config {path}"
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise UsageError(f"{where}: no such file") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{where} is not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{where} is not valid TOML: not UTF-8 text") from None
    except OSError as exc:
        raise UsageError(f"{where}: cannot read: {exc.strerror or exc}") from None
    except RecursionError:
        raise UsageError(f"{where} is not usable: values nested too deeply") from None
    raw: _Raw = {}
    for section, table in data.items():
        if section not in SCHEMA:
            raise UsageError(f"{where}: unknown section [{section}]; allowed: {', '.join(SCHEMA)}")
        if not isinstance(table, dict):
            raise UsageError(f"{where}: {section} = {_render(table)}: must be a table [{section}]")
        for key, value in table.items():
            if _key_type(section, key) is None:
                raise UsageError(
                    f"{where}: [{section}] {key} = {_render(value)}: unknown key; "
                    f"allowed: {', '.join(SCHEMA[section])}"
                )
            raw[section, key] = (value, f"{where}: [{section}] {key}")
    return raw


def _parse_env_value(text: str, expected: type) -> Any:
    """Strings stay as written; other values are read as a TOML value when they parse."""
    if expected is str:
        return text
    try:
        parsed = tomllib.loads(f"v = {text}")
    except (tomllib.TOMLDecodeError, RecursionError):
        return text
    return parsed["v"] if len(parsed) == 1 else text


def _from_environ(environ: Mapping[str, str]) -> _Raw:
    """``EDGEMOOD_SECTION__KEY`` variables (any case); unknown ones are errors."""
    raw: _Raw = {}
    for name, text in environ.items():
        if not name.upper().startswith(ENV_PREFIX):
            continue
        label = f"environment variable {name}"
        section, _, key = name[len(ENV_PREFIX) :].lower().partition("__")
        if section not in SCHEMA or _key_type(section, key) is None:
            raise UsageError(
                f"{label}: no such setting; use {ENV_PREFIX}<SECTION>__<KEY> with a section of "
                f"{', '.join(SCHEMA)} and one of its keys"
            )
        raw[section, key] = (_parse_env_value(text, _key_type(section, key)), label)
    return raw


def _build(raw: _Raw) -> Config:
    """One walk over the schema: check every given value, keep defaults for the rest."""
    default = Config()
    sections: dict[str, Any] = {}
    for section in SCHEMA:
        given = {key: _check(section, key, *entry) for (where, key), entry in raw.items() if where == section}
        current = getattr(default, section)
        sections[section] = {**current, **given} if isinstance(current, dict) else type(current)(**given)
    config = Config(**sections)
    _check_together(config, raw)
    return config


def _check_together(config: Config, raw: _Raw) -> None:
    """Rules that span two keys; the error names the key that cannot work as given."""
    if config.detect.max_face_px < config.detect.min_face_px:
        key = "max_face_px" if ("detect", "max_face_px") in raw else "min_face_px"
        raise UsageError(
            f"{raw['detect', key][1]} = {getattr(config.detect, key)}: max_face_px "
            f"({config.detect.max_face_px}) must not be below min_face_px ({config.detect.min_face_px})"
        )
    if config.mqtt.password_file and not config.mqtt.username:
        label = raw["mqtt", "password_file"][1]
        raise UsageError(
            f"{label} = {_render(config.mqtt.password_file)}: needs [mqtt] username too "
            "(MQTT sends a password only with a user name)"
        )
    # [genres] knows the default playlists; any other name is a typo unless a mood plays it
    played = sorted(set(config.playlists.values()))
    for (section, key), (value, label) in raw.items():
        if section == "genres" and key not in played and key not in SCHEMA["genres"]:
            raise UsageError(
                f"{label} = {_render(value)}: no mood plays a playlist of that name; [playlists] uses {', '.join(played)}"
            )


def config_file(path: Path | None) -> Path | None:
    """The file a command reads: the one named, else ``DEFAULT_CONFIG_PATH`` if it exists, else none."""
    if path is not None:
        return Path(path)
    return DEFAULT_CONFIG_PATH if DEFAULT_CONFIG_PATH.exists() else None


def load_config(path: Path | None, environ: Mapping[str, str] = os.environ) -> Config:
    """Load, override from the environment and validate; raise ``UsageError`` on any fault.

    ``path=None`` reads ``DEFAULT_CONFIG_PATH`` when it exists and otherwise
    uses pure defaults; an explicitly named file must exist.
    """
    path = config_file(path)
    raw = _from_file(Path(path)) if path is not None else {}
    raw.update(_from_environ(environ))
    return _build(raw)


def read_secret(path: str) -> str:
    """A password file's content without its trailing newline (what editors add)."""
    try:
        secret = Path(path).read_text(encoding="utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read secret file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    add_redaction(secret)  # whoever reads a secret, the logs never show it
    return secret


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)  # JSON escapes are valid TOML basic-string escapes
    if isinstance(value, tuple):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    return repr(value)


def _toml_key(key: str) -> str:
    """A key bare when TOML allows it (playlist names in [genres] may need quotes)."""
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key, ensure_ascii=False)


def config_to_toml(config: Config) -> str:
    """Every key of ``config`` as TOML that ``load_config`` reads back to an equal Config."""
    lines: list[str] = []
    for section in SCHEMA:
        values = getattr(config, section)
        if isinstance(values, dict):
            items = list(values.items())
        else:
            items = [(f.name, getattr(values, f.name)) for f in fields(values)]
        lines.append(f"[{section}]")
        lines.extend(f"{_toml_key(key)} = {_toml_value(value)}" for key, value in items)
        lines.append("")
    return "\n".join(lines)
