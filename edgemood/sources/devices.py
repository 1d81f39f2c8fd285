"""Frame sources: the camera (or a stand-in for it) behind one small interface.

The daemon samples one frame per interval. Every source keeps its device open
between samples, live sources hand over a fresh frame rather than one that
waited in a buffer, and frames stay in memory. ``RetryingSource`` lets the
loop keep ticking (and feeding the watchdog) while the camera is away.
"""

from __future__ import annotations

import glob
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from edgemood.config import CameraConfig
from edgemood.config.source_spec import (
    DIR,
    FILE,
    GLOB,
    PICAMERA2,
    V4L2,
    display_name,
    parse_source,
)
from edgemood.errors import EdgemoodError
from edgemood.vision.frame import FrameError, read_image

log = logging.getLogger(__name__)

#: What ``dir:`` picks up; other files in the folder are not frames.
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".ppm", ".pnm", ".tif", ".tiff", ".webp"})
#: The ISP needs a main stream; the lores stream we sample may not exceed it.
_PICAMERA2_MAIN = (640, 480)
_PICAMERA2_FIX = "sudo apt install python3-picamera2 and create the venv with --system-site-packages"
#: A grab that returns sooner than this came out of a buffer, i.e. is stale.
_FRESH_GRAB_S = 0.01
#: At most this many stale frames are dropped per sample (2 s of 30 fps).
_MAX_DRAIN = 64
_OPEN_TIMEOUT_MS = 10_000
_READ_TIMEOUT_MS = 5_000


class SourceError(EdgemoodError):
    """The frame source cannot be opened, failed, or has no frames left."""


class SourceFinished(SourceError):
    """A replay (``[camera] loop = false``) has shown its last frame: an end, not a failure."""


class FrameSource(Protocol):
    """Where frames come from; ``read`` raises ``SourceError`` on failure or exhaustion."""

    name: str

    def open(self) -> None:
        """Acquire the device or file; idempotent."""

    def read(self) -> np.ndarray:
        """The next (for live sources: the newest) grayscale or BGR uint8 frame."""

    def close(self) -> None:
        """Release the device or file; safe to call twice."""


def open_camera(camera: CameraConfig) -> FrameSource:
    """The source ``[camera]`` configures (daemon, enroll and doctor open it the same way)."""
    return open_source(camera.source, camera.width, camera.height, camera.loop)


def open_source(spec: str, width: int, height: int, loop: bool = True) -> FrameSource:
    """The source a ``[camera] source`` value names, not yet opened.

    ``read`` opens it on first use, so ``with open_source(...) as source`` and a
    bare ``read`` both work. ``width``/``height`` are what cameras are asked
    for; files, folders and streams deliver their own size. ``loop`` replays
    files and folders from the start instead of ending.
    """
    kind, target = parse_source(spec)
    if width <= 0 or height <= 0:
        raise ValueError(f"camera size {width}x{height} must be positive")
    name = display_name(spec.strip())
    if kind == PICAMERA2:
        return PiCamera2Source(width, height)
    if kind == DIR:
        return ImageFilesSource(name, lambda: _list_folder(Path(target)), loop)
    if kind == GLOB:
        return ImageFilesSource(name, lambda: _list_glob(target), loop)
    if kind == V4L2:
        device: int | str = int(target) if target.isdigit() else target

        def open_v4l2() -> Any:
            capture = cv2.VideoCapture(device, cv2.CAP_V4L2)
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, width)
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
            capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)
            return capture

        return CaptureSource(name, open_v4l2, live=True, loop=False)

    timeouts = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, _OPEN_TIMEOUT_MS, cv2.CAP_PROP_READ_TIMEOUT_MSEC, _READ_TIMEOUT_MS]
    if kind == FILE:

        def open_file() -> Any:
            if not Path(target).is_file():
                raise SourceError(f"{name}: no such video file")
            return cv2.VideoCapture(target, cv2.CAP_FFMPEG, timeouts)

        return CaptureSource(name, open_file, live=False, loop=loop)
    return CaptureSource(name, lambda: cv2.VideoCapture(target, cv2.CAP_FFMPEG, timeouts), live=True, loop=False)


def _list_folder(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise SourceError(f"dir:{folder}: no such folder")
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _list_glob(pattern: str) -> list[Path]:
    return sorted(Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_file())


class _Source(ABC):
    """Idempotent open/close and ``with`` support for the concrete sources."""

    name: str

    def __init__(self, name: str) -> None:
        self.name = name
        self._is_open = False

    def open(self) -> None:
        if not self._is_open:
            self._open()
            self._is_open = True

    def read(self) -> np.ndarray:
        self.open()
        return self._read()

    def close(self) -> None:
        if self._is_open:
            self._is_open = False
            self._close()

    def __enter__(self) -> _Source:
        self.open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @abstractmethod
    def _open(self) -> None: ...

    @abstractmethod
    def _read(self) -> np.ndarray: ...

    @abstractmethod
    def _close(self) -> None: ...


class PiCamera2Source(_Source):
    """The Raspberry Pi camera through apt's picamera2 (libcamera).

    Samples the YUV420 ``lores`` stream and keeps only its Y plane: that *is*
    the grayscale image, so no colour conversion is spent on it.
    """

    def __init__(self, width: int, height: int) -> None:
        super().__init__(PICAMERA2)
        self.width, self.height = width, height
        self._camera: Any = None

    def _open(self) -> None:
        try:
            from picamera2 import Picamera2
        except ImportError:
            raise SourceError(f"picamera2 is not installed: {_PICAMERA2_FIX}") from None
        size = (self.width, self.height)
        main = (max(self.width, _PICAMERA2_MAIN[0]), max(self.height, _PICAMERA2_MAIN[1]))
        try:
            self._camera = Picamera2()
            config = self._camera.create_video_configuration(
                main={"size": main}, lores={"size": size, "format": "YUV420"}
            )
            self._camera.configure(config)
            self._camera.start()
        except Exception as exc:  # picamera2 raises RuntimeError, IndexError (no camera), ...
            with suppress(Exception):
                self._close()
            raise SourceError(f"picamera2: cannot start the camera: {exc}") from None

    def _read(self) -> np.ndarray:
        try:
            yuv = self._camera.capture_array("lores")
        except Exception as exc:  # a camera unplugged mid-run surfaces as anything
            raise SourceError(f"picamera2: capture failed: {exc}") from None
        # Rows 0..h-1 are Y; columns past w are stride padding.
        if yuv.ndim != 2 or yuv.shape[0] < self.height or yuv.shape[1] < self.width:
            raise SourceError(f"picamera2: lores frame is {yuv.shape}, expected YUV420 of {self.width}x{self.height}")
        return yuv[: self.height, : self.width]

    def _close(self) -> None:
        camera, self._camera = self._camera, None
        if camera is not None:
            try:
                camera.stop()
            finally:
                camera.close()


class CaptureSource(_Source):
    """An OpenCV ``VideoCapture``: a V4L2 device, a video file or a network stream.

    ``open_capture`` builds the capture (kept open between reads). A live
    source drops the frames that queued up since the last sample, so a 1 Hz
    sampler sees what is in front of the camera now; a file is read in order
    and, with ``loop``, reopened at its end (cheaper to get right than seeking
    in every container format).
    """

    def __init__(
        self,
        name: str,
        open_capture: Callable[[], Any],
        *,
        live: bool,
        loop: bool,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(name)
        self._open_capture = open_capture
        self._live = live
        self._loop = loop
        self._clock = clock
        self._capture: Any = None

    def _open(self) -> None:
        capture = self._open_capture()
        if not capture.isOpened():
            capture.release()
            raise SourceError(f"{self.name}: cannot open (missing, busy, not a video, or unreachable)")
        self._capture = capture

    def _read(self) -> np.ndarray:
        if self._live:
            ok, frame = self._fresh_frame()
        else:
            ok, frame = self._capture.read()
            if not ok and self._loop:
                self._close()
                self._open()
                ok, frame = self._capture.read()
        if not ok or frame is None or frame.size == 0:
            if not self._live:
                raise SourceFinished(f"{self.name}: no more frames")
            raise SourceError(f"{self.name}: stream lost or no frame")
        return frame

    def _fresh_frame(self) -> tuple[bool, np.ndarray | None]:
        """Grab until a grab has to wait for the camera: that frame is new."""
        for _ in range(_MAX_DRAIN):
            started = self._clock()
            if not self._capture.grab():
                return False, None
            if self._clock() - started >= _FRESH_GRAB_S:
                break
        return self._capture.retrieve()

    def _close(self) -> None:
        capture, self._capture = self._capture, None
        if capture is not None:
            capture.release()


class ImageFilesSource(_Source):
    """Still images in sorted order, one per read; decoded lazily, one at a time.

    Unreadable files are skipped with a warning (once: they leave the list).
    """

    def __init__(self, name: str, list_files: Callable[[], list[Path]], loop: bool) -> None:
        super().__init__(name)
        self._list_files = list_files
        self._loop = loop
        self._files: list[Path] = []
        self._index = 0

    def _open(self) -> None:
        files = self._list_files()
        if not files:
            raise SourceError(f"{self.name}: no image files found")
        self._files, self._index = files, 0

    def _read(self) -> np.ndarray:
        while self._files:
            if self._index >= len(self._files):
                if not self._loop:
                    raise SourceFinished(f"{self.name}: replayed its last image")
                self._index = 0
            path = self._files[self._index]
            try:
                frame = read_image(str(path))
            except FrameError as exc:
                log.warning("%s: skipping %s", self.name, exc)
                del self._files[self._index]
                continue
            self._index += 1
            return frame
        raise SourceError(f"{self.name}: none of the images is readable")

    def _close(self) -> None:
        self._files = []
