"""Where personal heads are kept: the state directory, versions, and rollback.

``<state_dir>/personal/head-<YYYYmmddTHHMMSSZ>.npz`` holds one head in the
format of ``edgemood.mood.head``. ``current.json`` names the head in use and
the ones before it (``history``, oldest first) for ``--rollback``.
The state directory is ``$STATE_DIRECTORY`` (set by systemd's
``StateDirectory=edgemood``), else ``/var/lib/edgemood`` when writable, else
``$XDG_STATE_HOME/edgemood`` (``~/.local/state/edgemood``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path

from edgemood.errors import EdgemoodError
from edgemood.mood.head import PersonalHead, PersonalHeadError

POINTER_FORMAT = "edgemood-personal-pointer/1"
SYSTEM_STATE_DIR = Path("/var/lib/edgemood")


def default_state_dir(
    environ: Mapping[str, str] = os.environ, system_dir: Path = SYSTEM_STATE_DIR, home: Path | None = None
) -> Path:
    """Where enrollments live: systemd's StateDirectory, the system dir, or the user's.

    ``$STATE_DIRECTORY`` may list several directories (colon-separated); the
    first is ours. ``system_dir`` counts when it (or, if missing, its parent)
    is writable, i.e. for root or the service user.
    """
    if environ.get("STATE_DIRECTORY"):
        return Path(environ["STATE_DIRECTORY"].split(":")[0])
    probe = system_dir if system_dir.exists() else system_dir.parent
    if os.access(probe, os.W_OK):
        return system_dir
    xdg = environ.get("XDG_STATE_HOME")
    return (Path(xdg) if xdg else (home or Path.home()) / ".local" / "state") / "edgemood"


def _write_atomically(path: Path, data: bytes) -> None:
    """A reader (the daemon starting) never sees half a file, and a saved file survives
    a power cut: a Pi is often switched off at the plug, so the data and the rename are
    flushed to the card (the file, then its folder) before this returns."""
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
        folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
    except OSError as exc:
        raise EdgemoodError(f"cannot write {path}: {exc.strerror or exc} (choose the state directory with --state-dir)") from None


def _version_key(path: Path) -> tuple[str, int]:
    """Order ``head-<stamp>.npz`` before ``head-<stamp>-2.npz`` (saved in the same second)."""
    stamp_part, _, suffix = path.stem.removeprefix("head-").partition("-")
    return stamp_part, int(suffix) if suffix.isdigit() else 1


class HeadStore:
    """Versioned heads under ``<state_dir>/personal`` with a ``current.json`` pointer."""

    def __init__(self, state_dir: Path):
        self.folder = Path(state_dir) / "personal"
        self.pointer = self.folder / "current.json"

    def _read_pointer(self) -> tuple[str | None, list[str]]:
        """(current file name, earlier ones oldest first); (None, []) before the first save."""
        try:
            data = json.loads(self.pointer.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None, []
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise PersonalHeadError(f"{self.pointer} is unreadable: {exc}") from None
        if not isinstance(data, dict) or data.get("format") != POINTER_FORMAT:
            raise PersonalHeadError(f"{self.pointer} is malformed: expected an {POINTER_FORMAT} JSON object")
        current, history = data.get("current"), data.get("history")
        if not isinstance(current, str) or not isinstance(history, list) or not all(isinstance(h, str) for h in history):
            raise PersonalHeadError(f"{self.pointer} is malformed: 'current' must be a file name, 'history' a list of them")
        return current, history

    def _write_pointer(self, current: str, history: list[str]) -> None:
        data = {"format": POINTER_FORMAT, "current": current, "history": history}
        _write_atomically(self.pointer, (json.dumps(data, indent=2) + "\n").encode())

    def _load(self, name: str) -> PersonalHead:
        path = self.folder / Path(name).name  # the pointer may only name files in this folder
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise PersonalHeadError(f"personal head {path} cannot be read: {exc.strerror or exc}") from None
        return PersonalHead.from_bytes(data, str(path))

    def current(self) -> PersonalHead | None:
        """The head in use, or None when none was ever kept."""
        name, _ = self._read_pointer()
        return self._load(name) if name else None

    def save(self, head: PersonalHead) -> Path:
        """Store ``head`` as a new version and make it current (the old one goes to history)."""
        current, history = self._read_pointer()
        path = self.folder / f"head-{head.stamp}.npz"
        suffix = 1
        while path.exists():  # two enrollments within one second
            suffix += 1
            path = self.folder / f"head-{head.stamp}-{suffix}.npz"
        _write_atomically(path, head.to_bytes())
        self._write_pointer(path.name, history + [current] if current else history)
        return path

    def rollback(self) -> tuple[PersonalHead, PersonalHead | None]:
        """Make the previous head current again; returns (restored, replaced).

        The replaced head's file stays (``--list`` shows it), it just is no
        longer in the history.
        """
        current, history = self._read_pointer()
        if not history:
            raise EdgemoodError(f"no earlier personal head to roll back to in {self.folder}")
        restored = self._load(history[-1])
        replaced = self._load(current) if current else None
        self._write_pointer(history[-1], history[:-1])
        return restored, replaced

    def versions(self) -> list[tuple[Path, PersonalHead | None, bool]]:
        """Every stored head file, oldest first: (path, head or None if unreadable, is current)."""
        current, _ = self._read_pointer()
        out = []
        for path in sorted(self.folder.glob("head-*.npz"), key=_version_key):
            try:
                head: PersonalHead | None = PersonalHead.from_bytes(path.read_bytes(), str(path))
            except (OSError, PersonalHeadError):
                head = None
            out.append((path, head, path.name == current))
        return out
