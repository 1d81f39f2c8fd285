"""Configuration: TOML file plus ``EDGEMOOD_SECTION__KEY`` overrides, validated once.

Every key is optional. Validation is one walk over the dataclass fields of
``edgemood.config.sections``: the field's type annotation decides the accepted
TOML type (a bool is not an int; an int is accepted for a float) and its rule
(``edgemood.config.rules``) adds ranges, choices and file checks. Anything
wrong becomes a ``UsageError`` with one line naming the key (or the
environment variable), the value and what is allowed, so the daemon exits 2
before it opens the camera instead of failing an hour later.

Relative paths in the config are relative to the daemon's working directory
(``/`` under systemd), so absolute paths are the safe choice there. The
sections and the TOML writer are re-exported here: ``from edgemood.config
import ...`` is the one import for users of the configuration.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edgemood.config.rules import has_control_chars
from edgemood.config.sections import (
    DEFAULT_GENRES,
    DEFAULT_PLAYLISTS,
    FACE_POLICIES,
    RULES,
    SCHEMA,
    CameraConfig,
    Config,
    DetectConfig,
    FacePolicy,
    LogConfig,
    ModelConfig,
    MoodConfig,
    MpdConfig,
    MqttConfig,
    default_device_id,
    key_type,
)
from edgemood.config.toml import config_to_toml, example_toml
from edgemood.errors import UsageError
from edgemood.platform.logsetup import add_redaction

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "DEFAULT_GENRES",
    "DEFAULT_PLAYLISTS",
    "ENV_PREFIX",
    "FACE_POLICIES",
    "RULES",
    "SCHEMA",
    "CameraConfig",
    "Config",
    "DetectConfig",
    "FacePolicy",
    "LogConfig",
    "ModelConfig",
    "MoodConfig",
    "MpdConfig",
    "MqttConfig",
    "config_file",
    "config_to_toml",
    "default_device_id",
    "example_toml",
    "load_config",
    "read_secret",
]

DEFAULT_CONFIG_PATH = Path("/etc/edgemood/edgemood.toml")
ENV_PREFIX = "EDGEMOOD_"

_NOUNS: dict[type, str] = {
    bool: "true or false",
    int: "an integer",
    float: "a number",
    str: "a string",
    tuple: "an array of strings",
}

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
    expected = key_type(section, key)
    assert expected is not None, (section, key)  # unknown keys were refused while reading
    rule = RULES.get(f"{section}.{key}") or RULES.get(f"{section}.*")
    allowed = (rule.template if rule else "must be {noun}").format(noun=_NOUNS[expected])
    converted = _convert(value, expected)
    if isinstance(converted, str) and has_control_chars(converted):
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
            if key_type(section, key) is None:
                raise UsageError(
                    f"{where}: [{section}] {key} = {_render(value)}: unknown key; allowed: {', '.join(SCHEMA[section])}"
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
        if section not in SCHEMA or key_type(section, key) is None:
            raise UsageError(
                f"{label}: no such setting; use {ENV_PREFIX}<SECTION>__<KEY> with a section of "
                f"{', '.join(SCHEMA)} and one of its keys"
            )
        raw[section, key] = (_parse_env_value(text, key_type(section, key)), label)
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
