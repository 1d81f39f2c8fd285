"""Log destinations (terminal, journal stream, journald fields) and redaction."""

from __future__ import annotations

import io
import logging
import os
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from edgemood.errors import UsageError
from edgemood.platform import logsetup
from edgemood.platform.logsetup import add_redaction, mood_fields, setup_logging, stderr_is_journal


@pytest.fixture(autouse=True)
def clean_logging(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts without our handlers or secrets and leaves none behind."""
    monkeypatch.setattr(logsetup, "_secrets", set())
    monkeypatch.delenv("JOURNAL_STREAM", raising=False)
    root = logging.getLogger()
    level = root.level
    yield
    for handler in [h for h in root.handlers if getattr(h, logsetup._OURS, False)]:
        root.removeHandler(handler)
    root.setLevel(level)


def _our_handlers() -> list[logging.Handler]:
    return [h for h in logging.getLogger().handlers if getattr(h, logsetup._OURS, False)]


@pytest.fixture
def stderr_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[], io.TextIOWrapper]]:
    """Redirects stderr to a real file (it has a device and inode, like the journal stream).

    Called inside the test: pytest's own capture replaces sys.stderr after fixtures ran.
    """
    with open(tmp_path / "err.txt", "w+", encoding="utf-8") as stream:

        def redirect() -> io.TextIOWrapper:
            monkeypatch.setattr(sys, "stderr", stream)
            return stream

        yield redirect


def _written(stream: io.TextIOWrapper) -> str:
    stream.flush()
    return Path(stream.name).read_text()


def _as_journal_stream(stream: io.TextIOWrapper, monkeypatch: pytest.MonkeyPatch) -> None:
    stat = os.fstat(stream.fileno())
    monkeypatch.setenv("JOURNAL_STREAM", f"{stat.st_dev}:{stat.st_ino}")


def test_mood_fields() -> None:
    assert mood_fields("happy", 0.8712) == {"MOOD": "happy", "CONFIDENCE": "0.87"}


def test_terminal_lines_have_timestamps_and_ignore_mood_fields(stderr_file: Callable[[], io.TextIOWrapper]) -> None:
    stream = stderr_file()
    setup_logging("info")
    logging.getLogger("edgemood.test").info("mood is %s", "happy", extra=mood_fields("happy", 0.9))
    logging.getLogger("edgemood.test").debug("not shown at info")
    (line,) = _written(stream).splitlines()
    assert line.endswith(" INFO edgemood.test: mood is happy")
    assert line[:4].isdigit()  # asctime first


def test_journal_stream_without_systemd_python_gets_priority_prefixes(
    stderr_file: Callable[[], io.TextIOWrapper], monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = stderr_file()
    monkeypatch.setitem(sys.modules, "systemd", None)  # systemd-python not installed
    _as_journal_stream(stream, monkeypatch)
    assert stderr_is_journal()
    setup_logging("debug")
    logging.getLogger("edgemood.x").warning("camera lost")
    logging.getLogger("edgemood.x").debug("detail")
    lines = _written(stream).splitlines()
    assert lines == ["<4>WARNING edgemood.x: camera lost", "<7>DEBUG edgemood.x: detail"]


def test_stderr_is_journal_needs_a_matching_stream(
    stderr_file: Callable[[], io.TextIOWrapper], monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = stderr_file()
    assert not stderr_is_journal()
    for value in ("garbage", "1:2:3", "1:2"):
        monkeypatch.setenv("JOURNAL_STREAM", value)
        assert not stderr_is_journal()
    _as_journal_stream(stream, monkeypatch)
    assert stderr_is_journal()
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # no file descriptor at all
    assert not stderr_is_journal()


class _FakeJournalHandler(logging.Handler):
    """Stands in for systemd.journal.JournalHandler: keeps what it would send."""

    def __init__(self, **fields: str) -> None:
        super().__init__()
        self.fields = fields
        self.sent: list[tuple[str, dict]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.sent.append((self.format(record), dict(record.__dict__)))


def test_journal_handler_gets_mood_fields_and_redacted_messages(
    stderr_file: Callable[[], io.TextIOWrapper], monkeypatch: pytest.MonkeyPatch
) -> None:
    stream = stderr_file()
    journal = types.ModuleType("systemd.journal")
    journal.JournalHandler = _FakeJournalHandler
    package = types.ModuleType("systemd")
    package.journal = journal
    monkeypatch.setitem(sys.modules, "systemd", package)
    monkeypatch.setitem(sys.modules, "systemd.journal", journal)
    _as_journal_stream(stream, monkeypatch)
    setup_logging("info")
    (handler,) = _our_handlers()
    assert isinstance(handler, _FakeJournalHandler) and handler.fields == {"SYSLOG_IDENTIFIER": "edgemood"}
    add_redaction("s3cret")
    logging.getLogger("edgemood.y").info("mood %s", "sad", extra=mood_fields("sad", 0.5))
    logging.getLogger("edgemood.y").info("login with %s", "s3cret")
    (first, fields), (second, second_fields) = handler.sent
    assert first == "mood sad" and fields["MOOD"] == "sad" and fields["CONFIDENCE"] == "0.50"
    assert second == "login with ***" and "s3cret" not in str(second_fields["args"])
    assert _written(stream) == ""


def test_redaction_masks_messages_arguments_and_tracebacks(stderr_file: Callable[[], io.TextIOWrapper]) -> None:
    stream = stderr_file()
    setup_logging("info")
    add_redaction("hunter2")
    add_redaction("hunter2-long")
    add_redaction("")  # ignored: would mask everything
    log = logging.getLogger("edgemood.mqtt")
    log.info("password is hunter2-long")
    log.warning("connect(%r) failed", {"password": "hunter2"})
    try:
        raise ConnectionError("auth failed for hunter2")
    except ConnectionError:
        log.exception("broker")
    log.info("100% fine, nothing to hide")
    text = _written(stream)
    assert "hunter2" not in text
    assert "password is ***\n" in text
    assert "connect({'password': '***'}) failed" in text
    assert "ConnectionError: auth failed for ***" in text
    assert "100% fine" in text


def test_setup_twice_replaces_its_own_handler(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    setup_logging("info")
    setup_logging("WARNING")
    assert len(_our_handlers()) == 1
    assert logging.getLogger().level == logging.WARNING


@pytest.mark.parametrize("level", ["verbose", "", "10"])
def test_unknown_level_is_a_usage_error(level: str) -> None:
    with pytest.raises(UsageError, match="debug, info, warning, error"):
        setup_logging(level)
