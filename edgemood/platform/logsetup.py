"""Logging for a daemon that usually runs under systemd.

Under systemd, stderr is connected to the journal: records go to journald
with structured fields (systemd-python's ``JournalHandler``) or, without that
package, to stderr with a ``<N>`` priority prefix journald understands and no
timestamp (journald adds its own). On a terminal, a plain timestamped line.
Registered secrets never reach any handler installed here.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping

from edgemood.errors import UsageError

LEVELS: dict[str, int] = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
PLAIN_FORMAT = "%(levelname)s %(name)s: %(message)s"
TERMINAL_FORMAT = "%(asctime)s " + PLAIN_FORMAT
#: Journal field names for a mood in a log record (``extra=mood_fields(...)``).
MOOD_FIELD, CONFIDENCE_FIELD = "MOOD", "CONFIDENCE"
#: syslog priorities (``<N>`` prefixes and journald's PRIORITY).
_PRIORITIES = ((logging.DEBUG, 7), (logging.INFO, 6), (logging.WARNING, 4), (logging.ERROR, 3))
_CRITICAL_PRIORITY = 2
#: Marks the handlers ``setup_logging`` owns, so a second call replaces them.
_OURS = "_edgemood_handler"

_secrets: set[str] = set()


def mood_fields(mood: str, confidence: float) -> dict[str, str]:
    """``extra=`` for a log call about a mood: journal fields MOOD and CONFIDENCE."""
    return {MOOD_FIELD: mood, CONFIDENCE_FIELD: f"{confidence:.2f}"}


def add_redaction(secret: str) -> None:
    """Replace ``secret`` by ``***`` in every record logged from now on (passwords)."""
    if secret and secret.strip():
        _secrets.add(secret)


class RedactionFilter(logging.Filter):
    """Masks registered secrets in the message and in exception text.

    Runs on the handlers, not a logger, so records from every module are seen.
    The message is formatted here once and the arguments dropped, so the
    secret cannot come back through ``record.args`` (journald's CODE_ARGS).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if not _secrets:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken %-format: let the handler report it as usual
            return True
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        redacted_message, redacted_exc = _redact(message), _redact(record.exc_text)
        if redacted_message != message:
            record.msg, record.args = redacted_message, ()
        record.exc_text = redacted_exc
        return True


def _redact(text: str | None) -> str | None:
    if text:
        for secret in sorted(_secrets, key=len, reverse=True):
            text = text.replace(secret, "***")
    return text


class _JournalStderrFormatter(logging.Formatter):
    """Prefixes ``<N>`` so journald keeps the level of a plain stderr line."""

    def format(self, record: logging.LogRecord) -> str:
        return f"<{_priority(record.levelno)}>{super().format(record)}"


def _priority(levelno: int) -> int:
    for limit, priority in _PRIORITIES:
        if levelno <= limit:
            return priority
    return _CRITICAL_PRIORITY


def stderr_is_journal(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether stderr is the journal stream systemd set up (``$JOURNAL_STREAM``)."""
    try:
        device, inode = (int(part) for part in environ.get("JOURNAL_STREAM", "").split(":"))
        stat = os.fstat(sys.stderr.fileno())
    except (ValueError, OSError, AttributeError):  # unset/garbled, or stderr is no real file
        return False
    return (stat.st_dev, stat.st_ino) == (device, inode)


def setup_logging(level: str) -> None:
    """Configure the root logger for ``level`` (debug, info, warning or error).

    Calling it again replaces what an earlier call installed and leaves
    other handlers (test harnesses, for one) alone.
    """
    number = LEVELS.get(level.lower()) if isinstance(level, str) else None
    if number is None:
        raise UsageError(f"log level {level!r} is not one of {', '.join(LEVELS)}")
    handler = _make_handler()
    setattr(handler, _OURS, True)
    handler.addFilter(RedactionFilter())
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _OURS, False)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(number)
    # python-mpd2 logs every connect/disconnect at INFO: reconnect noise, not news
    logging.getLogger("mpd").setLevel(max(number, logging.WARNING))


def _make_handler() -> logging.Handler:
    if not stderr_is_journal():
        handler: logging.Handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(TERMINAL_FORMAT))
        return handler
    try:
        from systemd.journal import JournalHandler
    except ImportError:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(_JournalStderrFormatter(PLAIN_FORMAT))
        return handler
    # systemd-python >= 235 sends the record's upper-case attributes (MOOD, ...) as fields.
    return JournalHandler(SYSLOG_IDENTIFIER="edgemood")
