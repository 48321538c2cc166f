"""``tagledger mqtt provision`` against a real Mosquitto: each identity reaches its own topics only.

The broker is started by the test on free ports with the generated password file
and ACL (and a TLS listener with the generated certificates), so what is checked
is what Mosquitto enforces, not what the ACL file says.
"""

from __future__ import annotations

import asyncio
import base64
import getpass
import json
import logging
import os
import shutil
import socket
import ssl
import stat
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiomqtt
import pytest
import yaml
from typer.testing import CliRunner

from tagledger.app.cli import app
from tagledger.app.mqtt_provision import password_hash
from tagledger.site import EXAMPLE_SITE, Site, parse_site
from tagledger.wire import Topics


def _site() -> dict[str, object]:
    """The example store (its r3 an Impinj publishing itself, r4 a Zebra) and a second store."""
    data = yaml.safe_load(EXAMPLE_SITE.read_text())
    readers = data["stores"][0]["readers"]
    readers[2]["format"] = "impinj_iot"
    readers[3]["format"] = "zebra_iot"
    data["stores"].append(
        {
            "id": "lyon-01",
            "name": "Lyon",
            "latitude": 45.76,
            "longitude": 4.86,
            "zones": [{"id": "floor", "role": "sales_floor"}],
            "readers": [{"id": "lyon-01-r1", "host": "10.1.0.5", "antennas": [{"port": 1, "zone": "floor"}]}],
        }
    )
    return data


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_password_hash_is_mosquittos_format() -> None:
    # The same value mosquitto_passwd wrote for ("secret", this salt): PBKDF2-SHA512, 101 rounds.
    salt = base64.b64decode("TaMwW2kCIdXQYmio")
    assert password_hash("secret", salt=salt) == (
        "$7$101$TaMwW2kCIdXQYmio$cBq20rUglQXn2gQEy7pi6xHCDQgSwejyl4+BqmWNoq4KFuH8BoEy2D4STlTNka7aCLUMcy3h0an6urDHnV5bJQ=="
    )


@pytest.fixture(scope="module")
def provisioned(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, dict[str, str]]:
    """The site provisioned with --tls under a topic root of this run: (directory, root, passwords)."""
    base = tmp_path_factory.mktemp("provision")
    site = base / "site.yaml"
    site.write_text(yaml.safe_dump(_site()))
    out = base / "mqtt"
    root = f"tl-{uuid.uuid4().hex[:8]}"
    args = ["mqtt", "provision", "--site", str(site), "--out", str(out), "--topic-root", root, "--tls"]
    result = CliRunner().invoke(app, [*args, "--tls-host", "localhost", "--tls-host", "127.0.0.1"])
    assert result.exit_code == 0, result.output
    creds = json.loads((out / "credentials.json").read_text())
    return out, root, {user: c["password"] for user, c in creds["identities"].items()}


def test_one_identity_per_publisher_with_private_files(provisioned: tuple[Path, str, dict[str, str]]) -> None:
    out, _, passwords = provisioned
    assert sorted(passwords) == sorted(
        [
            "tagledger-gateway",
            "edge.paris-01-r1",
            "edge.paris-01-r2",
            "impinj.paris-01-r3",
            "zebra.paris-01-r4",
            "pos.paris-01",
            "edge.lyon-01-r1",
            "pos.lyon-01",
        ]
    )
    assert len(set(passwords.values())) == len(passwords)
    for name in ("passwd", "credentials.json", "tls/ca.key", "tls/server.key", "tls/clients/edge.lyon-01-r1.key"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o600, name
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    assert "secret" not in (out / "acl").read_text()


def test_a_second_run_keeps_passwords_and_the_ca(provisioned: tuple[Path, str, dict[str, str]], tmp_path: Path) -> None:
    out, root, passwords = provisioned
    copy = tmp_path / "mqtt"
    shutil.copytree(out, copy)
    site = tmp_path / "site.yaml"
    data = _site()
    data["stores"][1]["readers"].append(  # type: ignore[index]
        {"id": "lyon-01-r2", "host": "10.1.0.6", "antennas": [{"port": 1, "zone": "floor"}]}
    )
    site.write_text(yaml.safe_dump(data))
    ca = (copy / "tls" / "ca.crt").read_bytes()
    args = ["mqtt", "provision", "--site", str(site), "--out", str(copy), "--topic-root", root, "--tls"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    again = json.loads((copy / "credentials.json").read_text())["identities"]
    assert {u: again[u]["password"] for u in passwords} == passwords
    assert "edge.lyon-01-r2" in again
    assert (copy / "tls" / "ca.crt").read_bytes() == ca
    assert (copy / "tls" / "clients" / "edge.lyon-01-r2.crt").exists()


@pytest.fixture(scope="module")
def broker(provisioned: tuple[Path, str, dict[str, str]]) -> Iterator[tuple[int, int]]:
    """Mosquitto with the generated files: (plain port, TLS port), both on 127.0.0.1."""
    out, _, _ = provisioned
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(mosquitto).exists():
        pytest.fail("Mosquitto is not installed (Debian package 'mosquitto')", pytrace=False)
    port, tls_port = _free_port(), _free_port()
    tls = out / "tls"
    conf = [
        f"listener {port} 127.0.0.1",
        f"listener {tls_port} 127.0.0.1",
        f"cafile {tls / 'ca.crt'}",
        f"certfile {tls / 'server.crt'}",
        f"keyfile {tls / 'server.key'}",
        "require_certificate true",
        "allow_anonymous false",
        f"password_file {out / 'passwd'}",
        f"acl_file {out / 'acl'}",
        "persistence false",
    ]
    if os.geteuid() == 0:
        conf.append(f"user {getpass.getuser()}")  # run as root, Mosquitto drops to 'mosquitto' otherwise
    (out / "mosquitto.conf").write_text("\n".join(conf) + "\n")
    log_path = out / "mosquitto.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen([mosquitto, "-c", str(out / "mosquitto.conf")], stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                    socket.create_connection(("127.0.0.1", tls_port), timeout=0.2).close()
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        pytest.fail(f"mosquitto did not start:\n{log_path.read_text()}")
                    time.sleep(0.05)
            yield port, tls_port
        finally:
            proc.terminate()
            proc.wait(timeout=10)


@asynccontextmanager
async def _client(port: int, user: str, password: str, **kwargs: object) -> AsyncIterator[aiomqtt.Client]:
    async with aiomqtt.Client(
        "127.0.0.1", port, username=user, password=password, identifier=f"{user}-{uuid.uuid4().hex[:6]}", **kwargs
    ) as client:
        yield client


async def _collect(client: aiomqtt.Client, into: list[str], sentinel: str, done: asyncio.Event) -> None:
    async for message in client.messages:
        into.append(str(message.topic))
        if str(message.topic) == sentinel:
            done.set()
            return


@pytest.mark.integration
async def test_mosquitto_keeps_each_identity_to_its_own_topics(
    provisioned: tuple[Path, str, dict[str, str]], broker: tuple[int, int]
) -> None:
    _, root, pw = provisioned
    port, _ = broker
    t = Topics(root)
    site: Site = parse_site(_site(), "test site")
    assert site.store("lyon-01")
    own = [
        t.reads("paris-01", "paris-01-r1"),
        t.status("paris-01", "paris-01-r1"),
        t.heartbeat("paris-01", "paris-01-r1"),
    ]
    async with _client(port, "tagledger-gateway", pw["tagledger-gateway"]) as gateway:
        await gateway.subscribe(f"{root}/#", qos=1)

        # What each identity publishes: all of it is tried, only the allowed part arrives.
        attempts = {
            "edge.paris-01-r1": [
                t.reads("lyon-01", "lyon-01-r1"),  # another store's reader
                t.reads("paris-01", "paris-01-r2"),  # another reader of its store
                t.ack("paris-01", "paris-01-r1"),  # a forged acknowledgement
                t.pos("paris-01"),
                t.impinj("paris-01", "paris-01-r3"),
                *own,
            ],
            "pos.paris-01": [t.pos("lyon-01"), t.reads("paris-01", "paris-01-r1"), t.pos("paris-01")],
            "impinj.paris-01-r3": [
                t.zebra("paris-01", "paris-01-r4"),
                t.reads("paris-01", "paris-01-r3"),
                t.impinj("paris-01", "paris-01-r3"),
            ],
            "zebra.paris-01-r4": [t.impinj("paris-01", "paris-01-r3"), t.zebra("paris-01", "paris-01-r4")],
            "edge.lyon-01-r1": [t.status("paris-01", "paris-01-r1"), t.reads("lyon-01", "lyon-01-r1")],
        }
        allowed = {
            "edge.paris-01-r1": set(own),
            "pos.paris-01": {t.pos("paris-01")},
            "impinj.paris-01-r3": {t.impinj("paris-01", "paris-01-r3")},
            "zebra.paris-01-r4": {t.zebra("paris-01", "paris-01-r4")},
            "edge.lyon-01-r1": {t.reads("lyon-01", "lyon-01-r1")},
        }
        for user, topics in attempts.items():
            got: list[str] = []
            done = asyncio.Event()
            collector = asyncio.create_task(_collect(gateway, got, topics[-1], done))
            async with _client(port, user, pw[user]) as publisher:
                for topic in topics:  # one client's messages arrive in order: the last one closes the check
                    await publisher.publish(topic, b"{}", qos=1)
                async with asyncio.timeout(5):
                    await done.wait()
            await collector
            assert set(got) == allowed[user], user

        # Acknowledgements: an agent receives its own reader's only.
        async with _client(port, "edge.paris-01-r1", pw["edge.paris-01-r1"]) as agent:
            for topic in (t.ack("lyon-01", "lyon-01-r1"), t.ack("paris-01", "paris-01-r2"), f"{root}/#"):
                await agent.subscribe(topic, qos=1)  # refused by the broker (or granted for nothing)
            await agent.subscribe(t.ack("paris-01", "paris-01-r1"), qos=1)
            got = []
            done = asyncio.Event()
            collector = asyncio.create_task(_collect(agent, got, t.ack("paris-01", "paris-01-r1"), done))
            for topic in (
                t.ack("lyon-01", "lyon-01-r1"),
                t.ack("paris-01", "paris-01-r2"),
                t.ack("paris-01", "paris-01-r1"),
            ):
                await gateway.publish(topic, b"{}", qos=1)
            async with asyncio.timeout(5):
                await done.wait()
            await collector
            assert got == [t.ack("paris-01", "paris-01-r1")]


@pytest.mark.integration
@pytest.mark.parametrize(("user", "password"), [("edge.paris-01-r1", "guess"), ("nobody", "x"), ("", "")])
async def test_wrong_or_missing_credentials_are_refused(
    provisioned: tuple[Path, str, dict[str, str]], broker: tuple[int, int], user: str, password: str
) -> None:
    port, _ = broker
    with pytest.raises(aiomqtt.MqttError):
        async with aiomqtt.Client("127.0.0.1", port, username=user or None, password=password or None):
            pass


@pytest.mark.integration
async def test_the_tls_listener_takes_the_generated_certificates(
    provisioned: tuple[Path, str, dict[str, str]], broker: tuple[int, int]
) -> None:
    out, root, pw = provisioned
    _, tls_port = broker
    tls = out / "tls"
    context = ssl.create_default_context(cafile=str(tls / "ca.crt"))
    context.load_cert_chain(tls / "clients" / "edge.paris-01-r1.crt", tls / "clients" / "edge.paris-01-r1.key")
    t = Topics(root)
    async with (
        aiomqtt.Client(
            "localhost",
            tls_port,
            username="tagledger-gateway",
            password=pw["tagledger-gateway"],
            tls_context=_client_context(tls, "tagledger-gateway"),
        ) as gateway,
        aiomqtt.Client(
            "localhost", tls_port, username="edge.paris-01-r1", password=pw["edge.paris-01-r1"], tls_context=context
        ) as agent,
    ):
        await gateway.subscribe(f"{root}/#", qos=1)
        await agent.publish(t.reads("paris-01", "paris-01-r1"), b"{}", qos=1)
        async with asyncio.timeout(5):
            message = await anext(aiter(gateway.messages))
        assert str(message.topic) == t.reads("paris-01", "paris-01-r1")
    # Without a client certificate the listener refuses the handshake.
    bare = ssl.create_default_context(cafile=str(tls / "ca.crt"))
    quiet = logging.getLogger("tests.mqtt.refused")  # paho logs the refused handshake as an error
    quiet.setLevel(logging.CRITICAL + 1)
    with pytest.raises(aiomqtt.MqttError):
        async with aiomqtt.Client(
            "localhost",
            tls_port,
            username="edge.paris-01-r1",
            password=pw["edge.paris-01-r1"],
            tls_context=bare,
            logger=quiet,
            timeout=2,  # the broker closes the connection; do not wait out the default 10 s
        ) as c:
            await c.publish(t.reads("paris-01", "paris-01-r1"), b"{}", qos=1)


def _client_context(tls: Path, user: str) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(tls / "ca.crt"))
    context.load_cert_chain(tls / "clients" / f"{user}.crt", tls / "clients" / f"{user}.key")
    return context
