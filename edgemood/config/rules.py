"""The checks a config value must pass beyond its type, and the field metadata that carries them.

Each setting declares its rule and help text once, on its dataclass field, through
``key()``; the loader reads the rule from there and the example config renders the
help from there, so a range or a choice cannot say one thing in the docs and
another in the validation. Pure Python: checking a config must work where OpenCV
or numpy are broken.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

#: The metadata keys ``key()`` writes on a field.
RULE, HELP, EXAMPLE = "edgemood.rule", "edgemood.help", "edgemood.example"


@dataclass(frozen=True)
class Rule:
    """A check beyond the type; ``template`` may use ``{noun}`` ("an integer").

    ``allowed`` is the short form the example config shows where a help text says
    ``{allowed}`` ("0..1"); empty for rules that need a sentence instead.
    """

    ok: Callable[[Any], bool]
    template: str
    allowed: str = ""


def key(help: str = "", rule: Rule | None = None, example: str = "") -> Mapping[str, Any]:
    """Field metadata for one setting: its rule, its help for the example config, and,
    where the default depends on the machine (``mqtt.device_id``), the value the
    example shows instead."""
    if rule is not None and rule.allowed and "{allowed}" not in help:
        raise ValueError(f"help text must show the range with {{allowed}}: {help!r}")
    return MappingProxyType({RULE: rule, HELP: help, EXAMPLE: example})


def between(low: float, high: float) -> Rule:
    """A number in ``low..high``; NaN fails it (every comparison with NaN is false)."""
    allowed = f"{low:g}..{high:g}"
    return Rule(lambda v: low <= v <= high, f"must be {{noun}} in {allowed}", allowed)


def one_of(*choices: str) -> Rule:
    """One of ``choices``, listed in the error in the order given."""
    return Rule(lambda v: v in choices, "must be one of " + ", ".join(json.dumps(c) for c in choices))


def has_control_chars(text: str) -> bool:
    """A control character in a value that ends up in a protocol line (MPD, MQTT, HTTP) breaks it."""
    return any(ord(c) < 32 or ord(c) == 127 for c in text)


def _is_source(value: str) -> bool:
    from edgemood.config.source_spec import parse_source  # one parser for config and sources; no OpenCV

    try:
        parse_source(value)
    except ValueError:
        return False
    return True


SOURCE = Rule(
    _is_source,
    'must be "picamera2", "v4l2:/dev/videoN" or "v4l2:N", "file:PATH", "dir:PATH", a glob, or an rtsp:// or http(s):// URL',
)


def _topic(allow_slash: bool) -> Rule:
    def ok(value: str) -> bool:
        bad = "+#\0" if allow_slash else "+#/\0"
        edges_ok = not value.startswith("/") and not value.endswith("/")
        return bool(value) and edges_ok and not any(c in bad for c in value)

    what = "without +, # or a leading/trailing /" if allow_slash else "without +, # or /"
    return Rule(ok, f"must be a non-empty MQTT topic {what}")


TOPIC = _topic(allow_slash=True)
# Home Assistant ignores discovery topics whose node id has other characters
TOPIC_LEVEL = Rule(lambda v: re.fullmatch(r"[A-Za-z0-9_-]+", v) is not None, "must be letters, digits, _ or -")
NON_EMPTY = Rule(lambda v: bool(v.strip()), "must be a non-empty string (not only spaces)")
READABLE = Rule(
    lambda v: not v or (os.path.isfile(v) and os.access(v, os.R_OK)), 'must be a readable file ("" for none)'
)
MODEL_FILE = Rule(lambda v: not v or os.path.isfile(v), 'must be an existing model file ("" for the shipped one)')
GENRE_LIST = Rule(
    lambda v: bool(v) and all(g.strip() and not has_control_chars(g) for g in v),
    "must be {noun}: one or more genre names, none blank",
)


def _is_secret_file(path: str) -> bool:
    """Readable, UTF-8 and not empty, checked now: the daemon reads a password only when
    it connects, long after a config error could still be reported as one."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    return bool(text.rstrip("\r\n")) and not has_control_chars(text.rstrip("\r\n"))


SECRET = Rule(
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


WRITABLE_FOLDER = Rule(
    lambda v: not v or _is_writable_folder(v), 'must be a folder the service can write ("" for none)'
)


def setting(
    default: Any = None,
    help: str = "",
    rule: Rule | None = None,
    *,
    factory: Callable[[], Any] | None = None,
    example: str = "",
) -> Any:
    """A dataclass field for one setting: its default (or ``factory``) with ``key()``'s metadata."""
    metadata = key(help, rule, example)
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    return field(default=default, metadata=metadata)
