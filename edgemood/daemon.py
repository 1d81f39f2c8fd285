"""The service loop: source -> detect -> classify -> debounce -> sinks (MPD, MQTT).

One thread samples at ``[camera] interval_s``; MPD and MQTT run their network
I/O on their own threads, so a slow or absent server never delays a frame
and the systemd watchdog only goes quiet when this loop itself is stuck.
MQTT commands arrive on paho's thread and are handed over through a queue,
so all state changes happen here, in order.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import time
from collections.abc import Callable

import cv2

from edgemood import __version__
from edgemood.classes import ABSENT, CLASSES
from edgemood.config import Config
from edgemood.config.source_spec import is_network
from edgemood.debug_crops import DebugCrops
from edgemood.errors import EdgemoodError
from edgemood.inference.model import MoodModel, configured_model_path
from edgemood.mood.active import ActiveHead, load_active_head
from edgemood.mood.debounce import MoodChange, MoodDebouncer, MoodState
from edgemood.mood.head import model_identity
from edgemood.mood.room import room_probabilities
from edgemood.platform.clock import Clock, RateLimit
from edgemood.platform.logsetup import mood_fields
from edgemood.platform.signals import ServiceSignals
from edgemood.platform.stats import StatsCollector
from edgemood.platform.systemd import Notifier
from edgemood.platform.wakeup import Wakeup
from edgemood.sinks.mqtt_topics import Command
from edgemood.sources.devices import FrameSource, open_camera
from edgemood.sources.resilient import RetryingSource, ThreadedSource
from edgemood.vision.analyze import Analysis, FaceAnalyzer
from edgemood.vision.detect import configured_settings

log = logging.getLogger("edgemood.daemon")

#: STATUS= and the stats window are refreshed at most this often (s).
STATUS_EVERY_S = 1.0
#: The first stats go out this soon after the first frame (s), not a whole
#: ``stats_interval_s`` later: until then Home Assistant would show the previous run's.
FIRST_STATS_AFTER_S = 5.0
#: A camera sending unusable frames, or a frame whose processing failed, is logged at most this often (s).
REJECT_LOG_EVERY_S = 60.0
#: This many frames failing in a row is a fault that a restart may cure: exit 1 and let systemd restart.
MAX_CONSECUTIVE_ERRORS = 30
#: A network source gets this long per sample before the loop moves on without a frame (s).
NETWORK_READ_WAIT_S = 0.5


class PipelineFailing(EdgemoodError):
    """Every frame fails: the daemon gives up so systemd restarts it (exit 1)."""

    exit_code = 1


class Daemon:
    """Owns the pipeline and the sinks for one run of ``edgemood run``."""

    def __init__(
        self,
        config: Config,
        source_factory: Callable[[], FrameSource] | None = None,
        notifier: Notifier | None = None,
        clock: Clock = Clock(),
        reload_config: Callable[[], Config] | None = None,
    ):
        self.config = config
        self.clock = clock
        self.notifier = notifier or Notifier()
        self._reload_config = reload_config
        self._wake = Wakeup()  # set by commands, signals and stop requests
        self.signals = ServiceSignals(self._wake)
        self.rejected_frames = 0
        self._reject_log = RateLimit(REJECT_LOG_EVERY_S, clock.monotonic)
        #: frames whose processing raised; the loop goes on, ``consecutive_errors`` decides when to give up
        self.errors = 0
        self.consecutive_errors = 0
        self._error_log = RateLimit(REJECT_LOG_EVERY_S, clock.monotonic)
        self.debug_crops: DebugCrops | None = None
        self.enabled = True
        self.commands: queue.Queue[Command] = queue.Queue()
        self.stats = StatsCollector()
        self._given_source_factory = source_factory
        self.model: MoodModel | None = None
        self.personal: ActiveHead | None = None
        self.analyzer: FaceAnalyzer | None = None
        self.debouncer: MoodDebouncer | None = None
        self.source: RetryingSource | ThreadedSource | None = None
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
        self.model = MoodModel(configured_model_path(cfg.model.path), cfg.model.threads)
        self.analyzer = FaceAnalyzer(self.model, configured_settings(cfg.detect), cfg.detect.multiple_faces)  # type: ignore[arg-type]
        self.debouncer = MoodDebouncer(cfg.mood, self.clock.monotonic())
        self.debug_crops = DebugCrops(cfg.log.debug_frames_dir) if cfg.log.debug_frames_dir else None
        retrying = RetryingSource(self._given_source_factory or (lambda: open_camera(cfg.camera)))
        # a stream can stall for seconds in OpenCV's open or read: never on this thread
        self.source = ThreadedSource(retrying, NETWORK_READ_WAIT_S) if is_network(cfg.camera.source) else retrying
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
        self._close_parts()

    def _close_parts(self) -> None:
        mqtt, mpd, source = self.mqtt, self.mpd, self.source
        self.mqtt = self.mpd = self.source = None
        if mqtt:
            mqtt.stop()
        if mpd:
            mpd.stop()
        if source:
            source.close()

    def install_signal_handlers(self) -> None:
        """SIGTERM/SIGINT stop, SIGHUP reloads (see ``ServiceSignals.install``)."""
        self.signals.install()

    # -- the loop ---------------------------------------------------------------------

    def run(self) -> int:
        """Open, loop until stopped, close; returns the exit code."""
        self.open()
        try:
            # READY once the model is loaded and the camera has been tried: the
            # first sample is taken now (a failing camera is retried and
            # reported; the service is up either way)
            self._guarded_step()
            self.notifier.ready()
            self._publish_all_states()
            self._loop()
        finally:
            self.close()
            self.signals.ignore_after_stop()
            self._wake.close()
        stop_signal = self.signals.stop_signal
        log.info("stopped%s", f" on {stop_signal}" if stop_signal else "")
        return 0

    def _loop(self) -> None:
        interval = self.config.camera.interval_s
        stats_every = self.config.mqtt.stats_interval_s
        # Wake at least this often, whatever interval_s is, so a long sampling
        # interval never starves the watchdog or delays a command.
        ping_every = min(self.notifier.watchdog_interval() or STATUS_EVERY_S, STATUS_EVERY_S)
        last_status = time.monotonic()
        last_stats = last_status - stats_every + min(FIRST_STATS_AFTER_S, stats_every)
        next_tick = last_status + interval
        while not self.signals.stop_requested:
            if self.signals.reload_requested:
                self._reload()
            self._drain_commands()
            now = time.monotonic()
            if now >= next_tick:
                if self.enabled:
                    self._guarded_step()
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
            self._wake.wait(min(next_tick - now, ping_every))

    def request_stop(self) -> None:
        """End the loop at its next wake-up (tests); safe to call again."""
        self.signals.request_stop()

    def _reload(self) -> None:
        """SIGHUP: read the configuration again and restart the pipeline and sinks with it.

        A configuration that does not validate is refused with its one-line
        error and the running one stays. The mood starts afresh (``uncertain``),
        which leaves the music as it is.
        """
        self.signals.reload_requested = False
        if self._reload_config is None:
            log.warning("SIGHUP: no configuration file to reload")
            return
        try:
            config = self._reload_config()
        except EdgemoodError as exc:
            log.error("reload refused, the running configuration stays: %s", exc)
            return
        log.info("reloading the configuration")
        self.notifier.reloading()
        self._close_parts()
        self.config = config
        self.open()
        self._publish_all_states()
        self.notifier.ready()

    def _on_command(self, command: Command) -> None:
        """Called on paho's thread: hand over and wake the loop."""
        self.commands.put(command)
        self._wake.set()

    def _guarded_step(self) -> None:
        """One frame inside an error boundary: a fault costs that frame, not the daemon.

        Counted in the stats (``errors``) and logged with its traceback at most once
        a minute; only ``MAX_CONSECUTIVE_ERRORS`` failures in a row end the run
        (exit 1), so that systemd restarts a daemon that can no longer work.
        """
        try:
            self.step()
        except Exception as exc:
            self.errors += 1
            self.consecutive_errors += 1
            if self._error_log.due():
                log.error("frame processing failed (%d errors so far): %s", self.errors, exc, exc_info=True)
            if self.consecutive_errors >= MAX_CONSECUTIVE_ERRORS:
                raise PipelineFailing(
                    f"{self.consecutive_errors} frames in a row failed, last: {type(exc).__name__}: {exc}"
                ) from None
        else:
            self.consecutive_errors = 0

    def step(self) -> Analysis | None:
        """Sample one frame and feed the debouncer; returns the analysis (None: no frame)."""
        assert self.source and self.analyzer and self.debouncer and self.personal
        frame = self.source.read()
        now = self.clock.monotonic()
        analysis = self.analyzer.analyze(frame) if frame is not None else None
        if analysis is not None and analysis.error:
            self._reject(analysis.error)
        usable = analysis is not None and not analysis.error
        # no frame (the camera is away) and an unusable one both show nobody: the mood
        # drifts to absent, so garbage from a camera cannot hold the last mood forever
        faces = analysis.faces if usable else []
        if usable:
            self.stats.record(len(faces), analysis.timings)
        self._faces_seen(analysis.seen if usable else 0)
        # one face (largest) or the room's mood from all of them (multiple_faces = "all"); None: nobody
        probabilities = room_probabilities(
            [self.personal.apply(face.probabilities, face.embedding) for face in faces],
            [face.box.w * face.box.h for face in faces],
        )
        change = self.debouncer.update(now, probabilities)
        if change and self.debug_crops and faces:
            self.debug_crops.save(faces[0].crop, change.current.mood, self.clock.wall())
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
        if self.mpd:  # absent matters too: [mpd] on_absent may pause
            self.mpd.play_playlist(playlist, absent=mood == ABSENT)
        if self.mqtt:
            dated = dataclasses.replace(
                change, current=self._dated(change.current), at=self.clock.wall_time_of(change.at)
            )
            self.mqtt.publish_event(dated, playlist)
        self._publish_state()

    def _publish_state(self) -> None:
        if self.mqtt and self.debouncer:
            state = self.debouncer.state
            self.mqtt.publish_mood(self._dated(state), self.playlist_for(state.mood))

    def _dated(self, state: MoodState) -> MoodState:
        """The state as payloads show it: the debouncer counts monotonic seconds, a payload dates on the wall clock."""
        return dataclasses.replace(state, since=self.clock.wall_time_of(state.since))

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
                self._apply(self.debouncer.force(command.value, self.clock.monotonic()))  # type: ignore[arg-type]
                if self.mqtt:
                    self.mqtt.publish_override(command.value)  # type: ignore[arg-type]

    def _publish_all_states(self) -> None:
        """Mood, switch and override states of a pipeline just (re)opened: its mood is the camera's."""
        self._publish_state()
        if self.mqtt:
            self.mqtt.publish_enabled(self.enabled)
            self.mqtt.publish_override(None)

    def _faces_seen(self, count: int) -> None:
        """The face-count sensor's state (the sink sends it only when it changes)."""
        if self.mqtt:
            self.mqtt.publish_faces(count)

    def _reject(self, error: str) -> None:
        """Count an unusable frame; log the first and then one summary a minute, not one per frame."""
        self.rejected_frames += 1
        if self._reject_log.due():
            log.warning("frame rejected: %s (%d unusable frames so far)", error, self.rejected_frames)

    def _report(self, message: str) -> None:
        """A sink's runtime problem, for MQTT users too (the sink has logged it already)."""
        if self.mqtt:
            self.mqtt.report_error(message)

    def health(self) -> dict:
        """Stats payload: pipeline counters plus the health of source and sinks."""
        data = self.stats.snapshot()
        data["enabled"] = self.enabled
        data["rejected_frames"] = self.rejected_frames
        data["errors"] = self.errors
        data["model"] = self.model.path.name if self.model else None
        parts = {"personal": self.personal, "source": self.source, "mpd": self.mpd, "mqtt": self.mqtt}
        data.update({name: part.health() for name, part in parts.items() if part})
        return data

    def _publish_stats(self) -> None:
        data = self.health()  # also starts the next stats window, MQTT or not (STATUS= shows its fps)
        if self.mqtt:
            self.mqtt.publish_stats(data)

    def _status_line(self) -> str:
        mood = self.debouncer.state.mood if self.debouncer else "starting"
        paused = "" if self.enabled else ", paused"
        source = self.source.health() if self.source else {"state": "ok", "ok": True}
        camera = {"finished": ", camera finished"}.get(source["state"], "" if source["ok"] else ", camera unavailable")
        return f"mood {mood}, {self.stats.fps():.1f} fps{paused}{camera}"
