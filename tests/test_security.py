"""Security: TLS with a private CA and a password, no listening socket, no frame on disk."""

from __future__ import annotations

import shutil
import subprocess
import threading
from dataclasses import dataclass, replace
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from daemon_harness import DaemonProcess, daemon_config, listening_sockets, socket_inodes
from needs import missing
from paho.mqtt.enums import CallbackAPIVersion

from edgemood.demo.services import LocalService, ServiceError
from edgemood.sinks.mqtt_topics import Topics

pytestmark = pytest.mark.integration

PASSWORD = "Corr3ct-Horse:battery staple"
USER = "edgemood"



# -- TLS and a password ------------------------------------------------------------------


@dataclass(frozen=True)
class Pki:
    """A private CA that signed the broker's certificate, and an unrelated CA."""

    ca: Path
    other_ca: Path
    broker_cert: Path
    broker_key: Path


def make_pki(folder: Path) -> Pki:
    openssl = shutil.which("openssl")
    if not openssl:
        missing("needs openssl to make test certificates (Debian package openssl)")
    folder.mkdir()

    def run(*args: str | Path) -> None:
        subprocess.run([openssl, *map(str, args)], check=True, capture_output=True, cwd=folder)

    curve = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")
    for name in ("ca", "other"):
        run("req", "-x509", *curve, "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "1", "-subj", f"/CN=edgemood test {name}")
    run("req", *curve, "-keyout", "broker.key", "-out", "broker.csr", "-subj", "/CN=127.0.0.1")
    (folder / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", "broker.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "broker.pem", "-days", "1", "-extfile", "san.ext")  # fmt: skip
    return Pki(folder / "ca.pem", folder / "other.pem", folder / "broker.pem", folder / "broker.key")


def tls_broker(workdir: Path, pki: Pki, password: str) -> LocalService:
    """mosquitto whose only listener speaks TLS and wants a user name and password."""
    from edgemood.demo.services.mosquitto import start_mosquitto

    tool = shutil.which("mosquitto_passwd") or shutil.which("mosquitto_passwd", path="/usr/sbin:/usr/bin")
    if not tool:
        missing("needs mosquitto_passwd (Debian package mosquitto)")
    workdir.mkdir()
    subprocess.run([tool, "-b", "-c", str(workdir / "passwd"), USER, password], check=True, capture_output=True)
    conf = f"certfile {pki.broker_cert}\nkeyfile {pki.broker_key}\nallow_anonymous false\npassword_file {workdir / 'passwd'}"
    try:
        return start_mosquitto(workdir, extra_conf=conf)
    except ServiceError as exc:
        missing(f"needs a local mosquitto: {exc}")


def retained_availability(broker: LocalService, topic: str, ca: Path, password: str) -> bytes:
    """What a TLS client with the right CA and credentials reads at ``topic`` (retained)."""
    got: list[bytes] = []
    arrived = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.username_pw_set(USER, password)
    client.tls_set(ca_certs=str(ca))
    client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, 1)
    client.on_message = lambda c, u, m: (got.append(m.payload), arrived.set())
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        assert arrived.wait(10), f"nothing retained at {topic}"
    finally:
        client.disconnect()
        client.loop_stop()
    return got[0]


def test_tls_with_password_connects_with_the_right_ca_only_and_never_logs_the_password(
    tmp_path: Path, replay: Path
) -> None:
    pki = make_pki(tmp_path / "pki")
    broker = tls_broker(tmp_path / "broker", pki, PASSWORD)
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "right").write_text(PASSWORD + "\n")
    (secrets / "wrong").write_text("not-" + PASSWORD + "\n")

    def config(name: str, ca: Path, secret: str):  # type: ignore[no-untyped-def]
        base = daemon_config(replay, interval_s=1.0, mqtt=broker, device_id=name)
        mqtt_config = replace(base.mqtt, tls_ca=str(ca), username=USER, password_file=str(secrets / secret))
        return replace(base, mqtt=mqtt_config)

    debug = ("--log-level", "debug")
    with (
        broker,
        DaemonProcess(config("trusted", pki.ca, "right"), tmp_path / "trusted", options=debug) as trusted,
        DaemonProcess(config("untrusted", pki.other_ca, "right"), tmp_path / "untrusted", options=debug) as untrusted,
        DaemonProcess(config("wrongpw", pki.ca, "wrong"), tmp_path / "wrongpw", options=debug) as wrong_password,
    ):
        trusted.wait_for(lambda log: "MQTT: connected to" in log, "TLS connection")
        availability = Topics("edgemood", "trusted").availability
        assert retained_availability(broker, availability, pki.ca, PASSWORD) == b"online"
        # The daemon says why it cannot connect, rather than waiting in silence.
        untrusted.wait_for(lambda log: "CERTIFICATE_VERIFY_FAILED" in log, "certificate error in the log")
        wrong_password.wait_for(lambda log: "refused the connection" in log, "refusal in the log")
        logs = {name: d.log() for name, d in [("trusted", trusted), ("untrusted", untrusted), ("wrongpw", wrong_password)]}
        assert [trusted.stop(), untrusted.stop(), wrong_password.stop()] == [0, 0, 0]
    broker_log = (broker.workdir / "mosquitto.log").read_text()
    assert f"as edgemood-trusted (p2, c1, k30, u'{USER}')" in broker_log
    assert "edgemood-untrusted" not in broker_log  # never got past the TLS handshake
    assert "MQTT: connected to" not in logs["untrusted"] + logs["wrongpw"]
    for name, log in logs.items():
        assert PASSWORD not in log, f"{name} logged the password"
        assert "Traceback" not in log, log


def test_a_certificate_for_another_host_is_refused(tmp_path: Path, replay: Path) -> None:
    """The broker's certificate names 127.0.0.1; reaching it as ``localhost`` must fail the check."""
    pki = make_pki(tmp_path / "pki")
    broker = tls_broker(tmp_path / "broker", pki, PASSWORD)
    (tmp_path / "secret").write_text(PASSWORD)
    base = daemon_config(replay, interval_s=1.0, mqtt=broker, device_id="hostcheck")
    mqtt_config = replace(base.mqtt, host="localhost", tls_ca=str(pki.ca), username=USER, password_file=str(tmp_path / "secret"))
    with broker, DaemonProcess(replace(base, mqtt=mqtt_config), tmp_path / "run") as daemon:
        log = daemon.wait_for(lambda text: "cannot connect to localhost" in text, "refusal of the host name")
        assert "CERTIFICATE_VERIFY_FAILED" in log and "MQTT: connected to" not in log
        assert daemon.stop() == 0


# -- no listening socket -----------------------------------------------------------------


def test_the_daemon_listens_on_no_socket(
    tmp_path: Path, replay: Path, mosquitto: LocalService, mpd: LocalService
) -> None:
    config = daemon_config(replay, mqtt=mosquitto, mpd=mpd, device_id="nolisten")
    with DaemonProcess(config, tmp_path / "run") as daemon:
        daemon.wait_for(
            lambda log: "MQTT: connected to" in log and "connected to MPD" in log and " -> " in log,
            "both sinks connected and a mood",
            timeout=30,
        )
        sockets = socket_inodes(daemon.pid)
        listening = listening_sockets(daemon.pid)
        assert daemon.stop() == 0
    assert len(sockets) >= 3, "the probe should see the MQTT and MPD client sockets"
    assert listening == []
    # The probe does find listeners where there are some.
    assert f"tcp port {mosquitto.port}" in listening_sockets(mosquitto.process.pid)
    assert f"tcp port {mpd.port}" in listening_sockets(mpd.process.pid)


# -- no frame on disk --------------------------------------------------------------------

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".ppm", ".tif", ".tiff", ".webp", ".npy"}


def files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def test_no_frame_reaches_the_disk_unless_debug_frames_dir_is_set(tmp_path: Path, replay: Path) -> None:
    frames = files_under(replay)
    normal = daemon_config(replay, device_id="private")
    debug_dir = tmp_path / "debugging" / "frames"
    debugging = replace(normal, log=replace(normal.log, debug_frames_dir=str(debug_dir)))
    # HOME, TMPDIR and the working directory are these folders: where a stray write would land.
    with (
        DaemonProcess(normal, tmp_path / "normal") as plain,
        DaemonProcess(debugging, tmp_path / "debugging") as debug,
    ):
        for daemon in (plain, debug):
            daemon.wait_for(lambda log, daemon=daemon: len(daemon.mood_changes()) >= 3, "three mood changes", timeout=30)
        assert [plain.stop(), debug.stop()] == [0, 0]
    assert files_under(tmp_path / "normal") == {"edgemood.toml", "daemon.log"}
    assert files_under(replay) == frames
    # The positive control: the same run with the debug option does write face crops.
    written = files_under(debug_dir)
    assert written and all(Path(name).suffix in IMAGE_SUFFIXES for name in written)
