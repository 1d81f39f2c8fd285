"""Frame sources: spec parsing, image folders, video files, picamera2, retrying."""

from __future__ import annotations

import logging
import struct
import subprocess
import sys
import threading
import time
import types
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from polling import wait_until

from edgemood.config.source_spec import parse_source
from edgemood.demo.services import free_port
from edgemood.sources import devices as sources
from edgemood.sources.devices import CaptureSource, FrameSource, SourceError, SourceFinished, open_source
from edgemood.sources.resilient import RetryingSource, ThreadedSource


def _write_images(folder: Path, names_and_values: dict[str, int]) -> None:
    """Tiny gray PNGs whose pixel value identifies them."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, value in names_and_values.items():
        assert cv2.imwrite(str(folder / name), np.full((24, 32), value, np.uint8))


def _value(frame: np.ndarray) -> int:
    return int(frame.mean())


# --- parse_source -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("picamera2", ("picamera2", "")),
        ("v4l2:/dev/video0", ("v4l2", "/dev/video0")),
        ("v4l2:2", ("v4l2", "2")),
        ("file:clip.mp4", ("file", "clip.mp4")),
        ("dir:frames/", ("dir", "frames/")),
        ("dir:frames/*.png", ("glob", "frames/*.png")),
        ("frames/img_??.jpg", ("glob", "frames/img_??.jpg")),
        ("shots/[ab]*.png", ("glob", "shots/[ab]*.png")),
        ("rtsp://cam.local:554/stream", ("stream", "rtsp://cam.local:554/stream")),
        ("https://cam.local/video.mjpg", ("stream", "https://cam.local/video.mjpg")),
    ],
)
def test_parse_source_accepts_every_documented_form(spec: str, expected: tuple[str, str]) -> None:
    assert parse_source(spec) == expected


@pytest.mark.parametrize(
    ("spec", "hint"),
    [
        ("", "empty"),
        ("webcam", "v4l2:/dev/videoN"),
        ("frames/", "dir:"),
        ("ftp://cam/x", "rtsp://"),
        ("v4l2:", "no device"),
        ("v4l2:video0", "v4l2:/dev/videoN"),
        ("file:", "no path"),
        ("dir:", "no path"),
    ],
)
def test_parse_source_rejects_bad_specs_with_the_allowed_forms(spec: str, hint: str) -> None:
    with pytest.raises(ValueError, match="camera source") as info:
        parse_source(spec)
    assert hint in str(info.value)


def test_open_source_rejects_a_bad_size() -> None:
    with pytest.raises(ValueError, match="0x240"):
        open_source("picamera2", 0, 240)


def test_stream_names_hide_the_password() -> None:
    source = open_source("rtsp://admin:hunter2@cam.local/live", 320, 240)
    assert "hunter2" not in source.name
    assert source.name == "rtsp://admin:***@cam.local/live"


# --- image folders and globs --------------------------------------------------------


def test_dir_source_reads_in_sorted_order_and_loops(tmp_path: Path) -> None:
    _write_images(tmp_path, {"b.png": 20, "a.png": 10, "c.jpg": 30})
    (tmp_path / "notes.txt").write_text("not a frame")
    with open_source(f"dir:{tmp_path}", 320, 240) as source:
        values = [_value(source.read()) for _ in range(5)]
    assert values[:3] == [10, 20, 30]
    assert values[3:] == [10, 20]


def test_dir_source_without_loop_is_exhausted(tmp_path: Path) -> None:
    _write_images(tmp_path, {"1.png": 50, "2.png": 60})
    source = open_source(f"dir:{tmp_path}", 320, 240, loop=False)
    assert [_value(source.read()), _value(source.read())] == [50, 60]
    with pytest.raises(SourceFinished, match="last image"):
        source.read()
    source.close()


def test_a_finished_replay_is_final_not_a_failure_to_retry(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """``loop = false``: one INFO line, state ``finished``, never reopened, no WARNING."""
    _write_images(tmp_path, {"1.png": 50})
    clock, opened = _Clock(), []

    def factory() -> FrameSource:
        opened.append(1)
        return open_source(f"dir:{tmp_path}", 320, 240, loop=False)

    retrying = RetryingSource(factory, clock=clock)
    caplog.set_level(logging.INFO)
    assert _value(retrying.read()) == 50
    for _ in range(3):
        assert retrying.read() is None
        clock.now += 60
    assert opened == [1] and retrying.health()["state"] == "finished" and retrying.failures == 0
    finished = [r for r in caplog.records if "finished" in r.getMessage()]
    assert len(finished) == 1 and finished[0].levelno == logging.INFO
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def write_png_bomb(path: Path, side: int = 30000) -> None:
    """A PNG of about 1 MB whose header declares side x side gray pixels, all of them present."""
    deflate = zlib.compressobj(9)
    row = b"\x00" * (side + 1)  # filter byte + pixels
    with path.open("wb") as handle:

        def chunk(kind: bytes, data: bytes) -> None:
            handle.write(struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data)))

        handle.write(b"\x89PNG\r\n\x1a\n")
        chunk(b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0))
        body = b"".join(deflate.compress(row * 1000) for _ in range(side // 1000)) + deflate.flush()
        chunk(b"IDAT", body)
        chunk(b"IEND", b"")


def test_an_image_declaring_too_many_pixels_is_skipped_before_decoding(tmp_path: Path) -> None:
    """Read in a fresh process, so its peak memory is this image's alone: refused from the header."""
    _write_images(tmp_path, {"1.png": 50, "3.png": 70})
    write_png_bomb(tmp_path / "2.png")
    assert (tmp_path / "2.png").stat().st_size < 2_000_000
    code = (
        "from edgemood.sources.devices import open_source; "
        f"s = open_source('dir:{tmp_path}', 320, 240, loop=False); "
        "values = [int(s.read().mean()) for _ in range(2)]; "
        # VmHWM, not ru_maxrss: the latter keeps the forking parent's peak across exec
        "peak = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0].split()[1]; "
        "print(values, int(peak) // 1024)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    values, peak_mib = result.stdout.rsplit("]", 1)
    assert values + "]" == "[50, 70" + "]" and int(peak_mib) < 400, result.stdout
    assert "declares more than" in result.stderr and "2.png" in result.stderr


class _StalledSource:
    """Stands in for a stream whose server accepted the connection and never answers."""

    name = "rtsp://stalled"

    def __init__(self, release: threading.Event, frames: list[np.ndarray]) -> None:
        self.release, self.frames = release, frames

    def open(self) -> None:
        self.release.wait(30)

    def read(self) -> np.ndarray:
        return self.frames.pop(0)

    def close(self) -> None:
        pass


def test_a_threaded_source_never_keeps_the_caller_waiting_and_hands_over_the_latest_frame() -> None:
    release = threading.Event()
    frame = np.full((240, 320), 90, np.uint8)
    threaded = ThreadedSource(RetryingSource(lambda: _StalledSource(release, [frame, frame])), wait_s=0.05)
    try:
        started = time.monotonic()
        assert [threaded.read() for _ in range(5)] == [None] * 5
        assert time.monotonic() - started < 2.0 and threaded.health()["reading"]
        release.set()  # the server answers at last: the frame read meanwhile is handed over
        wait_until(lambda: threaded.read() is not None, "the frame once the stream answers")
    finally:
        started = time.monotonic()
        threaded.close()
        assert time.monotonic() - started < 1.0



def test_dir_source_skips_a_corrupt_image_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _write_images(tmp_path, {"1.png": 40, "3.png": 80})
    (tmp_path / "2.png").write_bytes(b"\x89PNG truncated")
    source = open_source(f"dir:{tmp_path}", 320, 240)
    with caplog.at_level(logging.WARNING, logger="edgemood.sources.devices"):
        values = [_value(source.read()) for _ in range(4)]
    assert values == [40, 80, 40, 80]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "2.png" in warnings[0]


def test_dir_source_with_only_unreadable_images_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "x.png").write_bytes(b"nope")
    (tmp_path / "y.jpg").write_bytes(b"")
    with pytest.raises(SourceError, match="none of the images"):
        open_source(f"dir:{tmp_path}", 320, 240).read()


def test_dir_source_missing_or_empty_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such folder"):
        open_source(f"dir:{tmp_path / 'missing'}", 320, 240).open()
    with pytest.raises(SourceError, match="no image files"):
        open_source(f"dir:{tmp_path}", 320, 240).open()


def test_dir_source_decodes_lazily(tmp_path: Path) -> None:
    _write_images(tmp_path, {"1.png": 40, "2.png": 80})
    source = open_source(f"dir:{tmp_path}", 320, 240)
    assert _value(source.read()) == 40
    (tmp_path / "2.png").write_bytes(b"replaced after open")  # only now decoded: skipped
    assert _value(source.read()) == 40


def test_glob_source_matches_only_the_pattern(tmp_path: Path) -> None:
    _write_images(tmp_path, {"face_2.png": 20, "face_1.png": 10, "other.png": 99})
    source = open_source(str(tmp_path / "face_*.png"), 320, 240, loop=False)
    assert [_value(source.read()), _value(source.read())] == [10, 20]
    with pytest.raises(SourceFinished, match="last image"):
        source.read()


def test_glob_without_matches_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no image files"):
        open_source(str(tmp_path / "*.png"), 320, 240).read()


# --- video files --------------------------------------------------------------------


@pytest.fixture
def video(tmp_path: Path) -> Path:
    """A 4-frame MJPG clip whose frames are 20, 60, 100, 140 gray."""
    path = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    assert writer.isOpened(), "OpenCV cannot write MJPG here"
    for value in (20, 60, 100, 140):
        writer.write(np.full((48, 64, 3), value, np.uint8))
    writer.release()
    return path


def _near(values: list[int], expected: list[int]) -> bool:
    """MJPG is lossy: a frame's mean may move by a level or two."""
    return len(values) == len(expected) and all(abs(v - e) <= 3 for v, e in zip(values, expected))


def test_video_file_loops(video: Path) -> None:
    with open_source(f"file:{video}", 320, 240) as source:
        values = [_value(source.read()) for _ in range(6)]
    assert _near(values, [20, 60, 100, 140, 20, 60]), values


def test_video_file_without_loop_ends(video: Path) -> None:
    source = open_source(f"file:{video}", 320, 240, loop=False)
    values = [_value(source.read()) for _ in range(4)]
    assert _near(values, [20, 60, 100, 140]), values
    with pytest.raises(SourceError, match="no more frames"):
        source.read()
    source.close()
    source.close()


def test_missing_or_broken_video_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such video file"):
        open_source(f"file:{tmp_path / 'none.mp4'}", 320, 240).read()
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\0" * 64)
    with pytest.raises(SourceError, match="cannot open"):
        open_source(f"file:{junk}", 320, 240).read()


class _FakeCapture:
    """A live capture whose first ``stale`` grabs come out of a buffer at once."""

    def __init__(self, clock: list[float], stale: int) -> None:
        self.clock, self.stale, self.grabs, self.released = clock, stale, 0, False

    def isOpened(self) -> bool:  # noqa: N802 - OpenCV's name
        return True

    def grab(self) -> bool:
        self.grabs += 1
        self.clock[0] += 0.0005 if self.grabs <= self.stale else 0.033
        return True

    def retrieve(self) -> tuple[bool, np.ndarray]:
        return True, np.full((48, 64), self.grabs, np.uint8)

    def release(self) -> None:
        self.released = True


@pytest.mark.parametrize(("stale", "expected_grabs"), [(0, 1), (5, 6), (500, sources._MAX_DRAIN)])
def test_live_capture_drops_buffered_frames(stale: int, expected_grabs: int) -> None:
    now = [0.0]
    capture = _FakeCapture(now, stale)
    source = CaptureSource("v4l2:0", lambda: capture, live=True, loop=False, clock=lambda: now[0])
    frame = source.read()
    assert capture.grabs == expected_grabs
    assert _value(frame) == expected_grabs  # the frame retrieved is the last one grabbed
    source.close()
    assert capture.released


# --- picamera2 ----------------------------------------------------------------------


class _FakePicamera2:
    """Returns YUV420 like picamera2: (h * 3/2) rows, each padded to a 64-byte stride."""

    instances: list[_FakePicamera2] = []

    def __init__(self) -> None:
        self.config: dict | None = None
        self.started = self.stopped = self.closed = False
        self.captures = 0
        _FakePicamera2.instances.append(self)

    def create_video_configuration(self, main: dict, lores: dict) -> dict:
        return {"main": main, "lores": lores}

    def configure(self, config: dict) -> None:
        self.config = config

    def start(self) -> None:
        self.started = True

    def capture_array(self, stream: str) -> np.ndarray:
        assert stream == "lores" and self.started
        self.captures += 1
        width, height = self.config["lores"]["size"]
        stride = -(-width // 64) * 64
        yuv = np.full((height * 3 // 2, stride), 255, np.uint8)  # padding and chroma: 255
        yuv[:height, :width] = np.arange(width, dtype=np.uint8) % 200  # luma: column index
        return yuv

    def stop(self) -> None:
        self.stopped = True

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def fake_picamera2(monkeypatch: pytest.MonkeyPatch) -> type[_FakePicamera2]:
    _FakePicamera2.instances = []
    monkeypatch.setitem(sys.modules, "picamera2", types.SimpleNamespace(Picamera2=_FakePicamera2))
    return _FakePicamera2


def test_picamera2_returns_the_y_plane_without_padding(fake_picamera2: type[_FakePicamera2]) -> None:
    source = open_source("picamera2", 100, 60)
    first, second = source.read(), source.read()
    (camera,) = fake_picamera2.instances  # started once, kept running between samples
    assert camera.captures == 2
    assert camera.config["lores"] == {"size": (100, 60), "format": "YUV420"}
    main = camera.config["main"]["size"]
    assert main[0] >= 100 and main[1] >= 60
    assert first.shape == (60, 100) and first.dtype == np.uint8
    assert (first == np.arange(100) % 200).all()  # no chroma rows, no stride columns
    assert (second == first).all()
    source.close()
    assert camera.stopped and camera.closed


def test_picamera2_larger_than_the_default_main_stream(fake_picamera2: type[_FakePicamera2]) -> None:
    source = open_source("picamera2", 1280, 720)
    assert source.read().shape == (720, 1280)
    assert fake_picamera2.instances[0].config["main"]["size"] == (1280, 720)


def test_missing_picamera2_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "picamera2", None)  # makes the import fail
    with pytest.raises(SourceError, match="apt install python3-picamera2.*--system-site-packages"):
        open_source("picamera2", 320, 240).open()


def test_picamera2_start_failure_is_a_source_error(monkeypatch: pytest.MonkeyPatch) -> None:
    class NoCamera:
        def __init__(self) -> None:
            raise IndexError("list index out of range")

    monkeypatch.setitem(sys.modules, "picamera2", types.SimpleNamespace(Picamera2=NoCamera))
    with pytest.raises(SourceError, match="cannot start the camera"):
        open_source("picamera2", 320, 240).read()


# --- RetryingSource -----------------------------------------------------------------


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class _FlakySource:
    """Fails to open or read according to a script shared by all instances."""

    name = "flaky"

    def __init__(self, script: list[str], log: list[str]) -> None:
        self.script, self.log = script, log

    def open(self) -> None:
        self.log.append("open")
        if self.script and self.script[0] == "open-fails":
            self.script.pop(0)
            raise SourceError("camera unplugged")

    def read(self) -> np.ndarray:
        step = self.script.pop(0) if self.script else "ok"
        if step == "read-fails":
            raise RuntimeError("device error")
        if step == "empty":
            return np.zeros((0, 0), np.uint8)
        return np.zeros((24, 32), np.uint8)

    def close(self) -> None:
        self.log.append("close")


def _retrying(script: list[str], backoff: tuple[float, float] = (1.0, 8.0)) -> tuple[RetryingSource, _Clock, list]:
    clock, calls = _Clock(), []
    return RetryingSource(lambda: _FlakySource(script, calls), clock=clock, backoff=backoff), clock, calls


def test_retrying_source_passes_frames_through() -> None:
    retrying, _, calls = _retrying([])
    assert retrying.read() is not None and retrying.read() is not None
    assert calls == ["open"]
    assert retrying.health() == {"state": "ok", "ok": True, "failures": 0, "last_error": None, "retry_in_s": None}


def test_retrying_source_backs_off_exponentially_with_jitter() -> None:
    retrying, clock, calls = _retrying(["open-fails"] * 5)
    for failures in range(1, 6):
        assert retrying.read() is None  # this read attempts an open, which fails
        status = retrying.health()
        assert status["failures"] == failures and not status["ok"]
        assert status["last_error"] == "camera unplugged"
        delay = status["retry_in_s"]
        nominal = min(8.0, 2.0 ** (failures - 1))
        assert nominal / 2 <= delay <= nominal
        opens = calls.count("open")
        clock.now += delay * 0.99  # not yet: no new open
        assert retrying.read() is None and calls.count("open") == opens
        clock.now += delay * 0.02
    assert retrying.read() is not None  # the script is used up: the camera is back
    assert retrying.health()["ok"] and retrying.health()["failures"] == 0


def test_retrying_source_treats_read_errors_and_empty_frames_as_failures() -> None:
    retrying, clock, calls = _retrying(["ok", "read-fails", "empty"])
    assert retrying.read() is not None
    assert retrying.read() is None
    assert calls == ["open", "close"] and retrying.health()["last_error"] == "device error"
    clock.now += 1.0
    assert retrying.read() is None
    assert retrying.health()["failures"] == 2 and "empty frame" in retrying.health()["last_error"]
    assert calls == ["open", "close", "open", "close"]
    clock.now += 2.0
    assert retrying.read() is not None


def test_retrying_source_survives_a_factory_that_raises() -> None:
    def factory() -> FrameSource:
        raise ValueError("camera source 'x' is not supported")

    retrying = RetryingSource(factory, clock=_Clock())
    assert retrying.read() is None
    assert "not supported" in retrying.health()["last_error"]


def test_retrying_source_rejects_a_bad_backoff() -> None:
    with pytest.raises(ValueError, match="backoff"):
        RetryingSource(lambda: open_source("picamera2", 320, 240), backoff=(5.0, 1.0))


def test_retrying_source_recovers_a_real_folder(tmp_path: Path) -> None:
    clock = _Clock()
    retrying = RetryingSource(lambda: open_source(f"dir:{tmp_path}", 320, 240, loop=False), clock=clock)
    assert retrying.read() is None and "no image files" in retrying.health()["last_error"]
    _write_images(tmp_path, {"a.png": 70})
    clock.now += 1.0
    assert _value(retrying.read()) == 70
    retrying.close()


def test_unreachable_camera_and_stream_are_source_errors() -> None:
    with pytest.raises(SourceError, match="cannot open"):
        open_source("v4l2:/dev/video-none", 320, 240).read()
    url = f"rtsp://viewer:pw@127.0.0.1:{free_port()}/live"  # nothing listens there
    with pytest.raises(SourceError, match="cannot open") as info:
        open_source(url, 320, 240).read()
    assert "pw@" not in str(info.value)
