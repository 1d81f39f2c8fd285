"""The ``[camera] source`` string: its allowed forms and how it splits into (kind, target).

Pure and dependency-free on purpose: the config loader validates the value
with this module, so checking a config never imports OpenCV or numpy (a broken
OpenCV then fails where frames are read, not where the config is checked).
"""

from __future__ import annotations

from urllib.parse import urlsplit

PICAMERA2, V4L2, FILE, STREAM, DIR, GLOB = "picamera2", "v4l2", "file", "stream", "dir", "glob"
ALLOWED_FORMS = (
    "picamera2, v4l2:/dev/videoN or v4l2:N, file:VIDEO, dir:FOLDER, "
    "a glob pattern such as frames/*.png, rtsp://... or http(s)://..."
)
STREAM_SCHEMES = ("rtsp://", "http://", "https://")
_GLOB_CHARS = frozenset("*?[")


def parse_source(spec: str) -> tuple[str, str]:
    """Split a ``[camera] source`` value into (kind, target), or say what is allowed."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"camera source {spec!r} is empty; use {ALLOWED_FORMS}")
    spec = spec.strip()
    if spec == PICAMERA2:
        return PICAMERA2, ""
    if spec.lower().startswith(STREAM_SCHEMES):
        return STREAM, spec
    scheme, colon, target = spec.partition(":")
    if colon and scheme in (V4L2, FILE, DIR):
        if not target:
            raise ValueError(f"camera source {spec!r} names no {'device' if scheme == V4L2 else 'path'}")
        if scheme == V4L2 and not (target.isdigit() or target.startswith("/dev/")):
            raise ValueError(f"camera source {spec!r}: use v4l2:/dev/videoN or v4l2:N")
        if scheme == DIR and _GLOB_CHARS & set(target):
            return GLOB, target
        return scheme, target
    if _GLOB_CHARS & set(spec):
        return GLOB, spec
    raise ValueError(f"camera source {spec!r} is not supported; use {ALLOWED_FORMS}")


def is_network(spec: str) -> bool:
    """A stream over the network: opening or reading it can block for seconds."""
    return parse_source(spec)[0] == STREAM


def display_name(spec: str) -> str:
    """The spec as logs may show it: a stream URL's password is masked."""
    if not spec.lower().startswith(STREAM_SCHEMES):
        return spec
    parts = urlsplit(spec)
    if parts.password is None:
        return spec
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{parts.username}:***@{host}").geturl()
