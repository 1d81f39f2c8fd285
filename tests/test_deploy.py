"""Deployment: the systemd unit's sandbox, the install script, the example config, the HA examples.

The unit is judged by systemd's own tools, offline: ``systemd-analyze
security`` (exposure at most 2.0) and ``systemd-analyze verify`` (no
warnings). The install script is run for real into a prefix, the way a Pi
runs it: Debian's ``/usr/bin/python3`` with apt's numpy, a venv with system
site-packages, pip with the constraints file. Those tests download wheels
(a couple of minutes) and are marked ``integration``: ``-m "not integration"``
leaves them out.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from needs import missing

from edgemood.classes import MOODS
from edgemood.config import DEFAULT_CONFIG_PATH, SCHEMA, Config, example_toml, load_config

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
UNIT = DEPLOY / "edgemood.service"
INSTALL = DEPLOY / "install.sh"
EXAMPLE_CONFIG = DEPLOY / "edgemood.example.toml"
HOME_ASSISTANT = DEPLOY / "homeassistant"
#: The interpreter install.sh builds the venv from, as on Raspberry Pi OS.
SYSTEM_PYTHON = Path("/usr/bin/python3")
#: The device_id the Home Assistant examples are written for.
EXAMPLE_DEVICE_ID = "livingroom"
#: The real install downloads and builds for minutes: more than the suite's 5 minutes per test.
INSTALL_TIMEOUT_S = 900
INSTALL_RUN_TIMEOUT_S = INSTALL_TIMEOUT_S - 100


def systemd_analyze() -> str:
    path = shutil.which("systemd-analyze")
    if not path:
        missing("needs systemd-analyze (apt-get install systemd)")
    return path


def unit_settings(text: str) -> dict[str, list[str]]:
    """``Section.Key`` -> every value it is given, in order (keys like DeviceAllow= repeat)."""
    settings: dict[str, list[str]] = {}
    section = ""
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        settings.setdefault(f"{section}.{key.strip()}", []).append(value.strip())
    return settings


def clean_env() -> dict[str, str]:
    """The environment without this test run's Python settings, as a shell user has it."""
    return {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"}}


def install_sh(*args: str | Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(INSTALL), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=clean_env(),
        cwd="/",
    )


def apt_numpy_version() -> str:
    """apt's numpy as the distro's Python sees it; skips where that is not set up."""
    if not SYSTEM_PYTHON.is_file():
        missing(f"needs Debian's {SYSTEM_PYTHON}")
    probe = subprocess.run(
        [str(SYSTEM_PYTHON), "-I", "-c", "import numpy, venv; print(numpy.__version__)"],
        capture_output=True,
        text=True,
    )
    if probe.returncode != 0:
        missing(f"needs apt's numpy and venv for {SYSTEM_PYTHON} (apt-get install python3-numpy python3-venv)")
    return probe.stdout.strip()


# --------------------------------------------------------------------------- the unit


def test_unit_exposure_is_at_most_2() -> None:
    result = subprocess.run(
        [systemd_analyze(), "security", "--offline=true", "--threshold=20", "--no-pager", str(UNIT)],
        capture_output=True,
        text=True,
    )
    match = re.search(r"Overall exposure level for edgemood\.service: (\d+\.\d+)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) <= 2.0, result.stdout
    assert result.returncode == 0, result.stdout + result.stderr


def test_unit_verifies_without_warnings(tmp_path: Path) -> None:
    # verify insists that the program exists; the installed one is checked by
    # the install test below, here any existing executable stands in for it.
    settings = unit_settings(UNIT.read_text())
    program = settings["Service.ExecStart"][0].split()[0]
    copy = tmp_path / UNIT.name
    copy.write_text(UNIT.read_text().replace(f"ExecStart={program} ", f"ExecStart={sys.executable} "))
    result = subprocess.run(
        [systemd_analyze(), "verify", "--man=no", "--recursive-errors=yes", str(copy)],
        capture_output=True,
        text=True,
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_unit_runs_the_daemon_as_the_contract_says() -> None:
    """What the security score does not cover: readiness, watchdog, restarts, paths, devices."""
    settings = unit_settings(UNIT.read_text())
    one = {key: values[-1] for key, values in settings.items()}
    assert one["Service.Type"] == "notify"
    assert one["Service.NotifyAccess"] == "main"
    assert int(one["Service.WatchdogSec"]) > 0
    assert one["Service.Restart"] == "on-failure"
    assert one["Service.RestartPreventExitStatus"] == "2"  # a bad config does not heal by restarting
    assert one["Service.ExecStart"] == f"/opt/edgemood/venv/bin/edgemood run -c {DEFAULT_CONFIG_PATH}"
    assert one["Service.StateDirectory"] == "edgemood"
    assert one["Service.User"] != "root" and "video" in one["Service.SupplementaryGroups"].split()
    assert one["Service.DevicePolicy"] == "closed"
    assert set(settings["Service.DeviceAllow"]) == {"char-video4linux rw", "char-media rw", "char-dma_heap rw"}
    assert one["Service.RestrictAddressFamilies"].split() == ["AF_UNIX", "AF_INET", "AF_INET6"]


# --------------------------------------------------------------------------- the example config


def uncommented(example: str) -> tuple[str, dict[str, set[str]]]:
    """The example with every documented ``# key = value`` line switched on, and those keys per section."""
    lines, keys, section = [], {}, ""
    for line in example.splitlines():
        if line.startswith("["):
            section = line.strip("[]")
        match = re.fullmatch(r"# (\w+) = (.+)", line)
        if section and match:
            keys.setdefault(section, set()).add(match.group(1))
            line = f"{match.group(1)} = {match.group(2)}"
        lines.append(line)
    return "\n".join(lines) + "\n", keys


def test_example_config_is_the_generated_one() -> None:
    """The example is written from the config's fields: help, ranges and defaults cannot drift."""
    assert EXAMPLE_CONFIG.read_text(encoding="utf-8") == example_toml(), (
        "regenerate it: python -m edgemood.config.toml > deploy/edgemood.example.toml"
    )


def test_example_config_as_shipped_is_all_defaults() -> None:
    assert load_config(EXAMPLE_CONFIG, environ={}) == Config()


def test_example_config_documents_every_key_with_its_default(tmp_path: Path) -> None:
    text, keys = uncommented(EXAMPLE_CONFIG.read_text())
    assert keys == {section: set(section_keys) for section, section_keys in SCHEMA.items()}
    switched_on = tmp_path / "all-keys.toml"
    switched_on.write_text(text)
    config = load_config(switched_on, environ={})
    # device_id defaults to the host name, so the example shows one instead.
    assert config.mqtt.device_id == EXAMPLE_DEVICE_ID
    assert config == dataclasses.replace(Config(), mqtt=dataclasses.replace(Config().mqtt, device_id=EXAMPLE_DEVICE_ID))


# --------------------------------------------------------------------------- Home Assistant examples


def test_home_assistant_examples_use_the_discovered_entities() -> None:
    from edgemood import __version__
    from edgemood.sinks.mqtt_topics import Topics, discovery_payload

    payload = discovery_payload(Topics("edgemood", EXAMPLE_DEVICE_ID), EXAMPLE_DEVICE_ID, __version__)
    device = payload["dev"]["name"]

    def entity_id(component: dict) -> str:  # Home Assistant: platform.slug(device name + entity name)
        return f"{component['p']}." + re.sub(r"[^a-z0-9]+", "_", f"{device} {component['name']}".lower()).strip("_")

    known = {entity_id(c) for c in payload["cmps"].values()}
    event_types = next(c["evt_typ"] for c in payload["cmps"].values() if c["p"] == "event")
    files = sorted(HOME_ASSISTANT.glob("*.yaml"))
    assert {f.name for f in files} >= {"dashboard-card.yaml", "automation.yaml"}
    for path in files:
        text = path.read_text()
        used = set(re.findall(r"\b(?:sensor|binary_sensor|event|switch|select)\.edgemood_\w+", text))
        assert used and used <= known, f"{path.name}: {sorted(used - known)} not in discovery {sorted(known)}"
    automation = (HOME_ASSISTANT / "automation.yaml").read_text()
    assert any(e.startswith("event.") for e in re.findall(r"entity_id: (\S+)", automation))
    compared = re.findall(r"mood (?:==|in) \[?([^\]}]+)", automation)
    moods = {word for group in compared for word in re.findall(r"'(\w+)'", group)}
    assert moods and moods <= set(event_types) == set(MOODS)


# --------------------------------------------------------------------------- README set-up and CI


def shell_lines(text: str) -> list[str]:
    """Commands of a shell text: continuations joined, comments, blank lines and extra spaces dropped."""
    lines = []
    for line in re.sub(r"\\\n\s*", " ", text).splitlines():
        line = re.sub(r"(^|\s)#.*$", "", line).strip()
        if line:
            lines.append(" ".join(line.split()))
    return lines


def test_ci_runs_the_readme_set_up_block_as_it_is() -> None:
    """What a newcomer pastes is what CI proves; CI's additions are named in the README."""
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"^## Set up.*?^```sh\n(.*?)^```", readme, re.M | re.S)
    assert block, "README.md has no ```sh block under '## Set up'"
    steps, ci = shell_lines(block.group(1)), shell_lines((ROOT / ".ci/run").read_text())
    remaining = iter(ci)
    assert all(step in remaining for step in steps), (steps, ci)  # every step, in order
    assert not [line for line in ci if re.search(r"pip install .*(-U|--upgrade)\b.* pip\b", line)]
    extras = {extra for line in ci for group in re.findall(r"\.\[([\w,]+)\]", line) for extra in group.split(",")}
    assert extras > {"dev"} and all(f"[{extra}]" in readme or f"[dev,{extra}]" in readme for extra in extras)


def test_shell_lines_join_and_strip() -> None:
    text = "A=$(x || true)   # note\n# only a comment\n\napt-get install -y a \\\n    b  c\n"
    assert shell_lines(text) == ["A=$(x || true)", "apt-get install -y a b c"]


# --------------------------------------------------------------------------- install.sh, fast


def test_install_rejects_an_unknown_option() -> None:
    result = install_sh("--frobnicate")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == ["install.sh: unknown option '--frobnicate' (see --help)"]


def test_install_dry_run_prints_the_steps_and_writes_nothing(tmp_path: Path) -> None:
    apt_numpy = apt_numpy_version()
    prefix = tmp_path / "root"
    result = install_sh("--dry-run", "--prefix", prefix, "--no-camera", "--with-mpd")
    assert result.returncode == 0, result.stdout + result.stderr
    assert not prefix.exists()
    out = result.stdout
    assert "skipped (--prefix): apt-get install -y --no-install-recommends python3-venv python3-numpy python3-systemd mpd\n" in out
    assert "python3-picamera2" not in out
    assert f"/usr/bin/python3 -m venv --clear --system-site-packages {prefix}/opt/edgemood/venv" in out
    assert f"numpy=={apt_numpy}" in out
    assert "skipped (--prefix): systemctl enable edgemood.service" in out


# --------------------------------------------------------------------------- constraints


def pinned(release: str) -> dict[str, str]:
    """name -> version of every pin in that release's constraints file."""
    text = (DEPLOY / f"constraints-{release}.txt").read_text()
    return dict(line.split("==") for line in text.splitlines() if line and not line.startswith("#"))


#: (release, its Python, its glibc minor version, its apt numpy)
PI_RELEASES = [("bookworm", "3.11", 36, "1.24.2"), ("trixie", "3.13", 41, "2.2.4")]


@pytest.mark.integration
@pytest.mark.parametrize(("release", "python", "glibc", "apt_numpy"), PI_RELEASES)
def test_constraints_resolve_to_pi_wheels_that_keep_apt_numpy(
    tmp_path: Path, release: str, python: str, glibc: int, apt_numpy: str
) -> None:
    """Resolve as install.sh on a 64-bit Pi of that release would: binary wheels, apt's numpy pinned."""
    pins = tmp_path / "apt-pins.txt"
    pins.write_text(f"numpy=={apt_numpy}\n")
    report = tmp_path / "report.json"
    platforms = [f"manylinux_2_{minor}_aarch64" for minor in range(17, glibc + 1)] + ["manylinux2014_aarch64"]
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    # --target: pip before 23.1 (Debian 12's venv has 23.0.1) accepts --platform only with it;
    # with --dry-run nothing is written there.
    result = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--dry-run", "--quiet", "--ignore-installed", "--report", str(report),
         "--target", str(tmp_path / "target"),
         "--only-binary=:all:", "--python-version", python, "--implementation", "cp",
         *(arg for platform in platforms for arg in ("--platform", platform)),
         "--constraint", str(DEPLOY / f"constraints-{release}.txt"), "--constraint", str(pins), *dependencies],
        capture_output=True, text=True, timeout=240, env=clean_env(),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    install = json.loads(report.read_text())["install"]
    chosen = {item["metadata"]["name"].lower(): item["metadata"]["version"] for item in install}
    assert chosen["numpy"] == apt_numpy
    assert {name: chosen[name] for name in pinned(release)} == pinned(release)


# --------------------------------------------------------------------------- install.sh, for real


@dataclass(frozen=True)
class Installed:
    """Where the fixture installed, and the numpy the venv must keep using."""

    prefix: Path
    apt_numpy: str

    @property
    def venv(self) -> Path:
        return self.prefix / "opt/edgemood/venv"

    @property
    def config(self) -> Path:
        return self.prefix / "etc/edgemood/edgemood.toml"

    @property
    def unit(self) -> Path:
        return self.prefix / "etc/systemd/system/edgemood.service"

    def python(self, code: str) -> str:
        result = subprocess.run(
            [str(self.venv / "bin/python"), "-I", "-c", code], capture_output=True, text=True, env=clean_env()
        )
        assert result.returncode == 0, result.stderr
        return result.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """One real install into a prefix, shared by the tests that inspect it."""
    apt_numpy = apt_numpy_version()
    prefix = tmp_path_factory.mktemp("pi") / "root"
    result = install_sh("--prefix", prefix, "--no-camera", timeout=INSTALL_RUN_TIMEOUT_S)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return Installed(prefix, apt_numpy)


@pytest.mark.integration
@pytest.mark.timeout(INSTALL_TIMEOUT_S)
def test_installed_venv_sees_apt_numpy_not_its_own(installed: Installed) -> None:
    version, location = installed.python("import numpy; print(numpy.__version__); print(numpy.__file__)").split()
    assert version == installed.apt_numpy
    assert not Path(location).is_relative_to(installed.venv)


@pytest.mark.integration
@pytest.mark.timeout(INSTALL_TIMEOUT_S)
def test_installed_daemon_finds_and_classifies_a_face(installed: Installed, tmp_path: Path) -> None:
    from edgemood.demo.photos import ASTRONAUT

    result = subprocess.run(
        [str(installed.venv / "bin/edgemood"), "classify", "--json", str(ASTRONAUT.path)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, env=clean_env(),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    [report] = json.loads(result.stdout)
    [face] = report["faces"]
    assert face["mood"] == "happy"  # she smiles; the shipped model is sure of it on any machine
    assert sum(face["probabilities"].values()) == pytest.approx(1.0, abs=0.01)


@pytest.mark.integration
@pytest.mark.timeout(INSTALL_TIMEOUT_S)
def test_installed_unit_and_config(installed: Installed) -> None:
    program, *arguments = unit_settings(installed.unit.read_text())["Service.ExecStart"][0].split()
    assert Path(program) == installed.venv / "bin/edgemood" and Path(program).is_file()
    assert arguments == ["run", "-c", str(installed.config)]
    result = subprocess.run(
        [systemd_analyze(), "verify", "--man=no", "--recursive-errors=yes", str(installed.unit)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert (result.returncode, result.stdout + result.stderr) == (0, "")
    assert installed.config.read_text() == EXAMPLE_CONFIG.read_text()
    assert stat.S_IMODE(installed.config.stat().st_mode) == 0o640
    assert stat.S_IMODE((installed.prefix / "etc/edgemood/credentials").stat().st_mode) == 0o700


def snapshot(root: Path, venv: Path) -> dict[str, tuple[int, int]]:
    """path -> (mode, size) of everything installed outside the venv."""
    return {
        str(p.relative_to(root)): (p.stat().st_mode, p.stat().st_size)
        for p in sorted(root.rglob("*"))
        if not p.is_relative_to(venv)
    }


@pytest.mark.integration
@pytest.mark.timeout(INSTALL_TIMEOUT_S)
def test_running_it_again_keeps_the_config_and_converges(installed: Installed) -> None:
    edited = installed.config.read_text().replace('# level = "info"', 'level = "debug"')
    installed.config.write_text(edited)
    freeze = "import importlib.metadata as m; print(sorted((d.name, d.version) for d in m.distributions()))"
    before = (snapshot(installed.prefix, installed.venv), installed.python(freeze))
    result = install_sh("--prefix", installed.prefix, "--no-camera", timeout=INSTALL_RUN_TIMEOUT_S)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert f"keeping {installed.config}" in result.stdout
    assert installed.config.read_text() == edited
    assert (snapshot(installed.prefix, installed.venv), installed.python(freeze)) == before


@pytest.mark.integration
@pytest.mark.timeout(INSTALL_TIMEOUT_S)
def test_uninstall_removes_the_service_and_keeps_the_config(installed: Installed) -> None:
    config = installed.config.read_text()
    for _ in range(2):  # a second uninstall finds nothing to do and succeeds
        result = install_sh("--prefix", installed.prefix, "--uninstall")
        assert result.returncode == 0, result.stdout + result.stderr
        assert not installed.venv.exists() and not installed.unit.exists()
        assert installed.config.read_text() == config
