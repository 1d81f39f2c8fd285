"""The service loop: source -> detect -> classify -> debounce -> sinks (MPD, MQTT).

One thread samples at ``[camera] interval_s``; MPD and MQTT run their network
I/O on their own threads, so a slow or absent server never delays a frame
and the systemd watchdog only goes quiet when this loop itself is stuck.
MQTT commands arrive on paho's thread and are handed over through a queue,
so all state changes happen here, in order.
"""

from __future__ import annotations

import logging
import queue
import signal
import threading
import time
from pathlib import Path
from typing import Callable

import cv2

from edgemood import __version__
from edgemood.classes import CLASSES
from edgemood.config import Config
from edgemood.debounce import MoodChange, MoodDebouncer
from edgemood.inference.model import DEFAULT_MODEL, MoodModel
from edgemood.logsetup import mood_fields
from edgemood.mqtt_topics import Command
from edgemood.personal import ActiveHead, load_active_head, model_identity
from edgemood.sources import FrameSource, RetryingSource, open_source
from edgemood.stats import StatsCollector
from edgemood.systemd import Notifier
from edgemood.vision.analyze import Analysis, FaceAnalyzer
from edgemood.vision.detect import DetectorSettings

log = logging.getLogger("edgemood.daemon")

#: STATUS= and the stats window are refreshed at most this often (s).
STATUS_EVERY_S = 1.0
#: A camera sending unusable frames is logged at most this often (s).
REJECT_LOG_EVERY_S = 60.0


class Daemon:
    """Owns the pipeline and the sinks for one run of ``edgemood run``."""

    def __init__(
        self,
        config: Config,
        source_factory: Callable[[], FrameSource] | None = None,
        notifier: Notifier | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self.config = config
        self.clock = clock
        self.notifier = notifier or Notifier()
        self.stop_event = threading.Event()
        self._wake = threading.Event()  # set by commands and stop requests
        self.rejected_frames = 0
        self._last_reject_log = -REJECT_LOG_EVERY_S
        self.enabled = True
        self.commands: queue.Queue[Command] = queue.Queue()
        self.stats = StatsCollector()
        camera = config.camera
        self._source_factory = source_factory or (
            lambda: open_source(camera.source, camera.width, camera.height, camera.loop)
        )
        self.model: MoodModel | None = None
        self.personal: ActiveHead | None = None
        self.analyzer: FaceAnalyzer | None = None
        self.debouncer: MoodDebouncer | None = None
        self.source: RetryingSource | None = None
        self.mqtt = None
        self.mpd = None

    # -- set-up and tear-down ---------------------------------------------------------

    def open(self) -> None:
        """Load the model, open the source, start the sinks; raises EdgemoodError."""
        cfg = self.config
        if cfg.mqtt.enabled:
            # Built first: an unusable CA file is a config error (exit 2, one line), found
            # before anything is loaded or logged.
            from edgemood.sinks.mqtt import MqttSink

            self.mqtt = MqttSink(cfg.mqtt, self._on_command, __version__)
        # one frame at a time, about once a second: OpenCV's worker threads only add
        # wake-ups (about 10% more CPU measured at 5 Hz), so keep it on this thread
        cv2.setNumThreads(1)
        self.model = MoodModel(Path(cfg.model.path) if cfg.model.path else DEFAULT_MODEL, cfg.model.threads)
        detect = DetectorSettings(
            scale_factor=cfg.detect.scale_factor,
            min_neighbors=cfg.detect.min_neighbors,
            min_face_px=cfg.detect.min_face_px,
        )
        self.analyzer = FaceAnalyzer(self.model, detect, cfg.detect.multiple_faces)  # type: ignore[arg-type]
        self.debouncer = MoodDebouncer(cfg.mood, self.clock())
        self.source = RetryingSource(self._source_factory)
        log.info("model %s (%s), source %s", self.model.path.name, self.model.runtime.module, cfg.camera.source)
        # personal calibration (edgemood enroll): a head fitted on this user's faces, if enrolled
        identity = model_identity(self.model.path, self.model.sidecar.embedding_size)
        self.personal = load_active_head(cfg.model.personal, identity)
        log.log(logging.WARNING if self.personal.problem else logging.INFO, "%s", self.personal.note)
        if self.mqtt:
            self.mqtt.start()
        if cfg.mpd.enabled:
            from edgemood.sinks.mpd import MpdSink

            self.mpd = MpdSink(cfg.mpd, on_error=self._report)
            self.mpd.start()

    def close(self) -> None:
        """Publish ``offline``, close MPD and the camera (bounded, for a 2 s stop)."""
        self.notifier.stopping()
        if self.mqtt:
            self.mqtt.stop()
        if self.mpd:
            self.mpd.stop()
        if self.source:
            self.source.close()

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT end the loop at once (the sleep is an Event wait)."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.request_stop())

    # -- the loop ---------------------------------------------------------------------

    def run(self) -> int:
        """Open, loop until stopped, close; returns the exit code."""
        self.open()
        try:
            # READY once the model is loaded and the camera has been tried: the
            # first sample is taken now (a failing camera is retried and
            # reported; the service is up either way)
            self.step()
            self.notifier.ready()
            self._publish_state()
            if self.mqtt:
                self.mqtt.publish_enabled(self.enabled)
            self._loop()
        finally:
            self.close()
        return 0

    def _loop(self) -> None:
        interval = self.config.camera.interval_s
        stats_every = self.config.mqtt.stats_interval_s
        # Wake at least this often, whatever interval_s is, so a long sampling
        # interval never starves the watchdog or delays a command.
        ping_every = min(self.notifier.watchdog_interval() or STATUS_EVERY_S, STATUS_EVERY_S)
        last_status = last_stats = time.monotonic()
        next_tick = last_status + interval
        while not self.stop_event.is_set():
            self._drain_commands()
            now = time.monotonic()
            if now >= next_tick:
                if self.enabled:
                    self.step()
                # fell behind (slow frame)? don't burst to catch up
                next_tick = max(next_tick + interval, time.monotonic())
            self.notifier.watchdog()
            now = time.monotonic()
            if now - last_status >= STATUS_EVERY_S:
                self.notifier.status(self._status_line())
                last_status = now
            if now - last_stats >= stats_every:
                self._publish_stats()
                last_stats = now
            self._wake.wait(max(0.0, min(next_tick - now, ping_every)))
            self._wake.clear()

    def request_stop(self) -> None:
        """End the loop at its next wake-up (signal handlers, tests)."""
        self.stop_event.set()
        self._wake.set()

    def _on_command(self, command: Command) -> None:
        """Called on paho's thread: hand over and wake the loop."""
        self.commands.put(command)
        self._wake.set()

    def step(self) -> Analysis | None:
        """Sample one frame and feed the debouncer; returns the analysis (None: no frame)."""
        assert self.source and self.analyzer and self.debouncer and self.personal
        frame = self.source.read()
        now = self.clock()
        if frame is None:
            # the camera is away: nobody can be seen, so the mood drifts to absent
            self._apply(self.debouncer.update(now, None))
            return None
        analysis = self.analyzer.analyze(frame)
        if analysis.error:
            self._reject(analysis.error)
            return analysis
        self.stats.record(len(analysis.faces), analysis.timings)
        face = analysis.faces[0] if analysis.faces else None
        probabilities = self.personal.apply(face.probabilities, face.embedding) if face else None
        change = self.debouncer.update(now, probabilities)
        if change and self.config.log.debug_frames_dir and analysis.faces:
            self._save_debug_crop(change, analysis)
        self._apply(change)
        return analysis

    # -- effects ----------------------------------------------------------------------

    def playlist_for(self, mood: str) -> str | None:
        """The mapped playlist; absent/uncertain keep whatever is playing."""
        return self.config.playlists.get(mood) if mood in CLASSES else None

    def _apply(self, change: MoodChange | None) -> None:
        if change is None:
            return
        mood = change.current.mood
        playlist = self.playlist_for(mood)
        log.info(
            "mood %s -> %s (%.2f)%s", change.previous, mood, change.current.confidence,
            f", playlist {playlist}" if playlist else "", extra=mood_fields(mood, change.current.confidence),
        )
        if self.mpd and playlist:
            self.mpd.play_playlist(playlist)
        if self.mqtt:
            self.mqtt.publish_event(change, playlist)
        self._publish_state()

    def _publish_state(self) -> None:
        if self.mqtt and self.debouncer:
            state = self.debouncer.state
            self.mqtt.publish_mood(state, self.playlist_for(state.mood))

    def _drain_commands(self) -> None:
        while True:
            try:
                command = self.commands.get_nowait()
            except queue.Empty:
                return
            if command.kind == "enabled":
                self.enabled = bool(command.value)
                log.info("detection %s by MQTT command", "resumed" if self.enabled else "paused")
                if self.mqtt:
                    self.mqtt.publish_enabled(self.enabled)
            elif command.kind == "mood" and self.debouncer:
                log.info("mood %s by MQTT command", command.value or "released to automatic")
                self._apply(self.debouncer.force(command.value, self.clock()))  # type: ignore[arg-type]

    def _reject(self, error: str) -> None:
        """Count an unusable frame; log the first and then one summary a minute, not one per frame."""
        self.rejected_frames += 1
        now = time.monotonic()
        if now - self._last_reject_log >= REJECT_LOG_EVERY_S:
            log.warning("frame rejected: %s (%d unusable frames so far)", error, self.rejected_frames)
            self._last_reject_log = now

    def _report(self, message: str) -> None:
        """A sink's runtime problem, for MQTT users too (the sink has logged it already)."""
        if self.mqtt:
            self.mqtt.report_error(message)

    def snapshot(self) -> dict:
        """Stats payload: pipeline counters plus the health of source and sinks."""
        data = self.stats.snapshot()
        data["enabled"] = self.enabled
        data["rejected_frames"] = self.rejected_frames
        data["model"] = self.model.path.name if self.model else None
        if self.personal:
            data["personal"] = self.personal.stats()
        if self.source:
            data["source"] = self.source.status()
        if self.mpd:
            data["mpd"] = self.mpd.status()
        if self.mqtt:
            data["mqtt"] = self.mqtt.stats()
        return data

    def _publish_stats(self) -> None:
        data = self.snapshot()
        if self.mqtt:
            self.mqtt.publish_stats(data)

    def _status_line(self) -> str:
        mood = self.debouncer.state.mood if self.debouncer else "starting"
        paused = "" if self.enabled else ", paused"
        camera = "" if not self.source or self.source.status().get("ok", True) else ", camera unavailable"
        return f"mood {mood}, {self.stats.fps():.1f} fps{paused}{camera}"

    def _save_debug_crop(self, change: MoodChange, analysis: Analysis) -> None:
        """Only with ``[log] debug_frames_dir``: the face crop behind a mood change."""
        folder = Path(self.config.log.debug_frames_dir)
        folder.mkdir(parents=True, exist_ok=True)
        name = f"{int(change.at * 1000)}-{change.current.mood}.png"
        cv2.imwrite(str(folder / name), analysis.faces[0].crop)
