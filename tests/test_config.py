"""Config loading: every broken input is one clear UsageError line naming the key."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from edgemood import config as config_module
from edgemood.classes import CLASSES
from edgemood.config import (
    SCHEMA,
    Config,
    MoodConfig,
    MqttConfig,
    config_to_toml,
    load_config,
    read_secret,
)
from edgemood.config import rules as config_rules
from edgemood.config import sections as config_sections
from edgemood.errors import UsageError

REPO = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "edgemood.toml"
    path.write_text(text, encoding="utf-8")
    return path


def usage_error(path: Path | None, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(UsageError) as info:
        load_config(path, environ or {})
    message = str(info.value)
    assert "\n" not in message
    assert info.value.exit_code == 2
    return message


BROKEN_FILES = [
    ("[mood]\nenter_threshold = 1.5\n", "[mood] enter_threshold = 1.5: must be a number in 0..1"),
    ("[mood]\nsmoothing = -0.1\n", "[mood] smoothing = -0.1: must be a number in 0..1"),
    ("[mood]\nsmoothing = nan\n", "[mood] smoothing = nan"),
    ("[mood]\nhysteresis = 0.6\n", "[mood] hysteresis = 0.6: must be a number in 0..0.5"),
    ("[mood]\nmin_dwell_s = \"3\"\n", '[mood] min_dwell_s = "3": must be a number'),
    ("[mood]\nabsent_after_s = 0\n", "[mood] absent_after_s = 0: must be a number in 0.1..86400"),
    ("[mood]\nmin_dwell_s = inf\n", "[mood] min_dwell_s = inf"),
    ("[mood]\nwobble = 1\n", "[mood] wobble = 1: unknown key"),
    ("[camera]\ninterval_s = 0.01\n", "[camera] interval_s = 0.01: must be a number in 0.05..3600"),
    ("[camera]\nwidth = 320.0\n", "[camera] width = 320.0: must be an integer in 16..4096"),
    ("[camera]\nheight = 8\n", "[camera] height = 8: must be an integer in 16..4096"),
    ("[camera]\nloop = 1\n", "[camera] loop = 1: must be true or false"),
    ("[camera]\nsource = \"webcam\"\n", '[camera] source = "webcam": must be "picamera2", "v4l2:/dev/videoN"'),
    ("[camera]\nsource = \"file:\"\n", '[camera] source = "file:"'),
    ("[detect]\nscale_factor = 1.0\n", "[detect] scale_factor = 1.0: must be a number in 1.01..2"),
    ("[detect]\nmin_neighbors = true\n", "[detect] min_neighbors = true: must be an integer in 1..20"),
    ("[detect]\nmin_face_px = 2000\n", "[detect] min_face_px = 2000"),
    ("[detect]\nmultiple_faces = \"every\"\n", '[detect] multiple_faces = "every": must be one of "largest", "skip", "all"'),
    ("[model]\nthreads = 0\n", "[model] threads = 0: must be an integer in 1..8"),
    ("[model]\npath = \"no/such/model.tflite\"\n", '[model] path = "no/such/model.tflite": must be an existing'),
    ("[model]\npersonal = \"yes\"\n", '[model] personal = "yes": must be true or false'),
    ("[playlists]\njoy = \"party\"\n", '[playlists] joy = "party": unknown key'),
    ("[playlists]\nhappy = \"\"\n", '[playlists] happy = "": must be a non-empty string'),
    ("[playlists]\nhappy = 3\n", "[playlists] happy = 3: must be a non-empty string"),
    ("[mpd]\nport = 0\n", "[mpd] port = 0: must be an integer in 1..65535"),
    ("[mpd]\nport = \"6600\"\n", '[mpd] port = "6600": must be an integer in 1..65535'),
    ("[mpd]\nswitch = \"later\"\n", '[mpd] switch = "later": must be one of "now", "track_end"'),
    ("[mpd]\ncrossfade_s = 31\n", "[mpd] crossfade_s = 31: must be a number in 0..30"),
    ("[mpd]\nmanual_hold_s = -1\n", "[mpd] manual_hold_s = -1"),
    ("[mpd]\nhost = \"\"\n", '[mpd] host = "": must be a non-empty string'),
    ("[mpd]\npassword_file = \"no/such/secret\"\n", '[mpd] password_file = "no/such/secret": must be a readable'),
    ("[mqtt]\nqos = 3\n", "[mqtt] qos = 3: must be an integer in 0..2"),
    ("[mqtt]\nbase_topic = \"edge/#\"\n", '[mqtt] base_topic = "edge/#": must be a non-empty MQTT topic'),
    ("[mqtt]\nbase_topic = \"/edgemood\"\n", '[mqtt] base_topic = "/edgemood"'),
    ("[mqtt]\nbase_topic = \"\"\n", '[mqtt] base_topic = ""'),
    ("[mqtt]\ndevice_id = \"pi/kitchen\"\n", '[mqtt] device_id = "pi/kitchen": must be letters, digits, _ or -'),
    ("[mqtt]\ndiscovery_prefix = \"ha+\"\n", '[mqtt] discovery_prefix = "ha+"'),
    ("[mqtt]\nqueue_size = 0\n", "[mqtt] queue_size = 0: must be an integer in 1..100000"),
    ("[mqtt]\nkeepalive_s = 1\n", "[mqtt] keepalive_s = 1: must be an integer in 5..3600"),
    ("[mqtt]\nstats_interval_s = 0.5\n", "[mqtt] stats_interval_s = 0.5: must be a number in 1..86400"),
    ("[mqtt]\ntls_ca = \"no/such/ca.pem\"\n", '[mqtt] tls_ca = "no/such/ca.pem": must be a readable file'),
    ("[mqtt]\nport = [1883]\n", "[mqtt] port = [1883]: must be an integer"),
    ("[log]\nlevel = \"verbose\"\n", '[log] level = "verbose": must be one of "debug", "info", "warning", "error"'),
    ("[logging]\nlevel = \"info\"\n", "unknown section [logging]"),
    ("mood = 1\n", "mood = 1: must be a table [mood]"),
    ("[mood.inner]\nsmoothing = 1\n", "[mood] inner = "),
    ("[mood\n", "is not valid TOML: "),
    ("[mood]\nsmoothing = \n", "is not valid TOML: "),
    ("[mood]\nsmoothing = 0.5\nsmoothing = 0.6\n", "is not valid TOML: "),
    ("[detect]\nmax_face_px = 40\n", "[detect] max_face_px = 40: max_face_px (40) must not be below min_face_px (48)"),
    ("[detect]\nmax_face_px = 5000\n", "[detect] max_face_px = 5000"),
    # values that pass a type check but can never work
    ("[mpd]\nhost = \"   \"\n", '[mpd] host = "   ": must be a non-empty string (not only spaces)'),
    ("[mqtt]\nhost = \"\\t\"\n", "[mqtt] host = "),
    ("[playlists]\nhappy = \" \"\n", '[playlists] happy = " ": must be a non-empty string'),
    ("[playlists]\nhappy = \"up\\nbeat\"\n", "[playlists] happy = \"up\\nbeat\": must not contain control characters"),
    ("[mqtt]\nusername = \"me\\r\\nCONNECT\"\n", "[mqtt] username = "),
    ("[mpd]\npartition = \"a\\u0000b\"\n", "[mpd] partition = "),
    ("[camera]\nsource = \"rtsp://cam/\\u007f\"\n", "[camera] source = "),
    ("[log]\ndebug_frames_dir = \"/proc/edgemood\"\n", '[log] debug_frames_dir = "/proc/edgemood": must be a folder the service can write'),
    # 500 levels of nesting: one line, not a RecursionError traceback
    ("[mood]\nsmoothing = " + "[" * 500 + "]" * 500 + "\n", "config "),
    ("[mood]\nsmoothing = " + "{a=" * 500 + "1" + "}" * 500 + "\n", "config "),
]


@pytest.mark.parametrize(("text", "expected"), BROKEN_FILES)
def test_broken_config_file_names_key_value_and_rule(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    message = usage_error(path)
    assert message.startswith(f"config {path}")
    assert expected in message


BROKEN_ENVIRONMENT = [
    ({"EDGEMOOD_MQTT__PORT": "99999"}, "EDGEMOOD_MQTT__PORT = 99999: must be an integer in 1..65535"),
    ({"EDGEMOOD_MQTT__PORT": "many"}, 'EDGEMOOD_MQTT__PORT = "many": must be an integer'),
    ({"edgemood_mood__smoothing": "2"}, "edgemood_mood__smoothing = 2: must be a number in 0..1"),
    ({"EDGEMOOD_MPD__ENABLED": "yes"}, 'EDGEMOOD_MPD__ENABLED = "yes": must be true or false'),
    ({"EDGEMOOD_PLAYLISTS__JOY": "party"}, "EDGEMOOD_PLAYLISTS__JOY: no such setting"),
    ({"EDGEMOOD_PLAYLISTS__HAPPY": ""}, 'EDGEMOOD_PLAYLISTS__HAPPY = "": must be a non-empty string'),
    ({"EDGEMOOD_MQTT_PORT": "1884"}, "EDGEMOOD_MQTT_PORT: no such setting"),
    ({"EDGEMOOD_DEBUG": "1"}, "EDGEMOOD_DEBUG: no such setting"),
    ({"EDGEMOOD_MQTT__DEVICE_ID": "a/b"}, 'EDGEMOOD_MQTT__DEVICE_ID = "a/b"'),
    ({"EDGEMOOD_LOG__LEVEL": "loud"}, 'EDGEMOOD_LOG__LEVEL = "loud": must be one of'),
]


@pytest.mark.parametrize(("environ", "expected"), BROKEN_ENVIRONMENT)
def test_broken_environment_names_the_variable(environ: dict[str, str], expected: str) -> None:
    message = usage_error(None, environ)
    assert message.startswith("environment variable ")
    assert expected in message


def test_environment_error_wins_over_a_good_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[mqtt]\nport = 1884\n")
    assert "EDGEMOOD_MQTT__QOS = 5" in usage_error(path, {"EDGEMOOD_MQTT__QOS": "5"})


def test_missing_explicit_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    assert usage_error(path) == f"config {path}: no such file"


def test_directory_instead_of_file_is_an_error(tmp_path: Path) -> None:
    assert usage_error(tmp_path).startswith(f"config {tmp_path}: cannot read")


def test_binary_file_is_not_valid_toml(tmp_path: Path) -> None:
    path = tmp_path / "edgemood.toml"
    path.write_bytes(b"\xff\xfe[mood]\n")
    assert "is not valid TOML" in usage_error(path)


def test_directory_as_password_file_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, f'[mqtt]\npassword_file = "{tmp_path}"\n')
    assert "[mqtt] password_file" in usage_error(path)


def test_no_path_and_no_default_file_gives_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(config_module, "DEFAULT_CONFIG_PATH", tmp_path / "missing.toml")
    assert load_config(None, {}) == Config()


def test_no_path_reads_the_default_file_when_present(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(config_module, "DEFAULT_CONFIG_PATH", write(tmp_path, "[mpd]\nport = 6601\n"))
    assert load_config(None, {}).mpd.port == 6601


def test_defaults_match_the_contract() -> None:
    config = load_config(None, {}) if not config_module.DEFAULT_CONFIG_PATH.exists() else Config()
    assert config.mood == MoodConfig(smoothing=0.5, enter_threshold=0.45, min_dwell_s=3.0, absent_after_s=10.0)
    assert config.playlists["happy"] == "upbeat" and set(config.playlists) == set(CLASSES)
    assert (config.mqtt.base_topic, config.mqtt.qos, config.mqtt.discovery_prefix) == ("edgemood", 1, "homeassistant")


def test_values_are_read_and_int_is_accepted_for_float(tmp_path: Path) -> None:
    path = write(tmp_path, '[camera]\ninterval_s = 2\nsource = "dir:frames/"\n[mood]\nmin_dwell_s = 0\n')
    config = load_config(path, {})
    assert config.camera.interval_s == 2.0 and isinstance(config.camera.interval_s, float)
    assert config.camera.source == "dir:frames/"
    assert config.mood.min_dwell_s == 0.0
    assert config.camera.width == 320


def test_given_playlists_replace_only_their_classes(tmp_path: Path) -> None:
    path = write(tmp_path, '[playlists]\nsad = "blues"\n')
    config = load_config(path, {"EDGEMOOD_PLAYLISTS__HAPPY": "party"})
    assert config.playlists == {**Config().playlists, "sad": "blues", "happy": "party"}


def test_environment_overrides_file_and_is_parsed_by_type(tmp_path: Path) -> None:
    path = write(tmp_path, "[mqtt]\nport = 1884\nqos = 0\n")
    environ = {
        "EDGEMOOD_MQTT__PORT": "1885",
        "edgemood_mqtt__host": "10.0.0.7",
        "EDGEMOOD_MQTT__USERNAME": "1234",
        "EDGEMOOD_MPD__ENABLED": "false",
        "EDGEMOOD_MOOD__SMOOTHING": "1",
        "HOME": "/home/somebody",
    }
    config = load_config(path, environ)
    assert config.mqtt.port == 1885 and config.mqtt.qos == 0
    assert config.mqtt.host == "10.0.0.7"
    assert config.mqtt.username == "1234"
    assert config.mpd.enabled is False
    assert config.mood.smoothing == 1.0


def test_secret_files_are_accepted_and_read_without_newline(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s3cret pass\n", encoding="utf-8")
    config = load_config(write(tmp_path, f'[mpd]\npassword_file = "{secret}"\n[mqtt]\ntls_ca = "{secret}"\n'), {})
    assert config.mpd.password_file == str(secret)
    assert read_secret(config.mpd.password_file) == "s3cret pass"


def test_read_secret_of_a_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="secret"):
        read_secret(str(tmp_path / "gone"))


def test_device_id_default_is_a_topic_level() -> None:
    device_id = MqttConfig().device_id
    assert device_id and all(c.isascii() and (c.isalnum() or c in "_-") for c in device_id)
    assert device_id == device_id.lower()


def test_round_trip_through_toml(tmp_path: Path) -> None:
    model = tmp_path / "model.tflite"
    model.write_bytes(b"")
    config = dataclasses.replace(
        Config(),
        camera=dataclasses.replace(Config().camera, source='file:clip "one" ü.mp4', interval_s=0.25, loop=False),
        model=dataclasses.replace(Config().model, path=str(model), threads=4),
        playlists={**Config().playlists, "sad": "rainy\\day"},
        mqtt=dataclasses.replace(Config().mqtt, device_id="desk-pi", qos=2, keepalive_s=60),
        log=dataclasses.replace(Config().log, level="debug", debug_frames_dir="frames"),
    )
    text = config_to_toml(config)
    assert load_config(write(tmp_path, text), {}) == config
    for section, keys in SCHEMA.items():
        assert f"[{section}]" in text
        assert all(f"\n{key} = " in text for key in keys)


def test_every_rule_names_an_existing_setting_and_every_number_has_a_range() -> None:
    for name in config_module.RULES:
        section, key = name.split(".")
        assert section in SCHEMA and (key == "*" or key in SCHEMA[section]), name
    for section, keys in SCHEMA.items():
        for key, expected in keys.items():
            if expected in (int, float):
                assert f"{section}.{key}" in config_module.RULES, f"{section}.{key} has no range"


def test_every_choice_is_named_in_the_help_of_its_key() -> None:
    """The example config explains each choice in prose; a new choice must not go unexplained."""
    for section in SCHEMA:
        for name, field in config_sections.section_fields(section).items():
            template = field.metadata[config_rules.RULE].template if field.metadata[config_rules.RULE] else ""
            for choice in re.findall(r'"([^"]+)"', template) if template.startswith("must be one of") else ():
                assert choice in field.metadata[config_rules.HELP], f"{section}.{name}: {choice} is not explained"


def test_cli_turns_a_bad_config_into_exit_2_and_one_line(tmp_path: Path) -> None:
    if not (REPO / "edgemood" / "commands" / "run.py").exists():
        pytest.skip("edgemood/commands/run.py is not written yet")
    path = write(tmp_path, "[mood]\nenter_threshold = 1.5\n")
    environ = {k: v for k, v in os.environ.items() if not k.upper().startswith("EDGEMOOD_")}
    result = subprocess.run(
        [sys.executable, "-m", "edgemood", "run", "-c", str(path)],
        cwd=REPO,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "[mood] enter_threshold = 1.5" in lines[0], result.stderr


def test_checking_a_config_imports_neither_opencv_nor_numpy(tmp_path: Path) -> None:
    """A broken OpenCV must not turn a config check into a traceback: validation stays pure."""
    path = write(tmp_path, '[camera]\nsource = "dir:frames"\n[mpd]\nhost = "music"\n')
    code = (
        "import sys; from pathlib import Path; from edgemood.config import load_config; "
        f"load_config(Path({str(path)!r}), {{}}); "
        "print(sorted(m for m in ('cv2', 'numpy') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]", result.stdout + result.stderr
