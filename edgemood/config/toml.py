"""Configuration as TOML text: a whole ``Config`` (read back equal) and the example config.

``example_toml()`` is the only source of ``deploy/edgemood.example.toml``: every
key, commented out, with its default and the help text of its field in
``edgemood.config.sections``. Regenerate the file after changing a field with
``python -m edgemood.config.toml > deploy/edgemood.example.toml``; a test
checks that the committed file is what this writes.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import fields
from typing import Any

from edgemood.config.rules import EXAMPLE, HELP, RULE
from edgemood.config.sections import SCHEMA, Config, section_fields

#: The top of the example config: how to use it, the service's sandbox, secrets.
EXAMPLE_HEADER = """\
edgemood configuration: /etc/edgemood/edgemood.toml

Every key is optional; each is listed here, commented out, with its default
and what it does. Uncomment a line to change it. Kept defaults follow the
installed version, so leave the rest commented. The installer never
overwrites this file; the newest version of this list is always in
/etc/edgemood/edgemood.example.toml.

Any key can also be set as an environment variable EDGEMOOD_<SECTION>__<KEY>
(for the service: `sudo systemctl edit edgemood`, then
`Environment=EDGEMOOD_MQTT__HOST=broker.lan`). A wrong key or value stops the
daemon at start with one line naming it: see `journalctl -u edgemood`, or
check first with `edgemood doctor -c /etc/edgemood/edgemood.toml`.

The service can read only /etc and /usr and write only its state directory
/var/lib/edgemood (home directories are hidden from it): put every file
named below in /etc/edgemood or /var/lib/edgemood.

Secrets (MQTT and MPD passwords) go in files under /etc/edgemood/credentials/
(root only, mode 0600). systemd hands each file to the service read-only as
/run/credentials/edgemood.service/secret_<file name>, for example:
  sudo install -m 0600 /dev/stdin /etc/edgemood/credentials/mqtt-password <<< 'the password'
  [mqtt] password_file = "/run/credentials/edgemood.service/secret_mqtt-password"
That path exists only while the service runs."""


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


def _items(config: Config, section: str) -> list[tuple[str, Any]]:
    values = getattr(config, section)
    if isinstance(values, dict):
        return list(values.items())
    return [(f.name, getattr(values, f.name)) for f in fields(values)]


def config_to_toml(config: Config) -> str:
    """Every key of ``config`` as TOML that ``load_config`` reads back to an equal Config."""
    lines: list[str] = []
    for section in SCHEMA:
        lines.append(f"[{section}]")
        lines.extend(f"{_toml_key(key)} = {_toml_value(value)}" for key, value in _items(config, section))
        lines.append("")
    return "\n".join(lines)


def _comment(text: str) -> list[str]:
    return [f"# {line}".rstrip() for line in text.splitlines()]


def _help(metadata: Any) -> list[str]:
    """A field's help as comment lines, ``{allowed}`` filled in from its rule."""
    rule = metadata[RULE]
    return _comment(metadata[HELP].replace("{allowed}", rule.allowed if rule else ""))


def example_toml() -> str:
    """The example config: every section and key, commented out, with its default and help."""
    defaults = Config()
    lines = _comment(EXAMPLE_HEADER)
    for section_field in fields(Config):
        section = section_field.name
        lines += ["", f"[{section}]"]
        own = section_fields(section)
        if not own:  # a dict section: one help for all its keys
            lines += _help(section_field.metadata)
        for key, value in _items(defaults, section):
            if key in own:
                lines += _help(own[key].metadata)
                value = own[key].metadata[EXAMPLE] or value  # never this machine's host name
            lines.append(f"# {_toml_key(key)} = {_toml_value(value)}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(example_toml())
