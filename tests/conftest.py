"""Shared fixtures.

Integration tests talk to a real PostgreSQL and a real MQTT broker:

* ``TAGLEDGER_TEST_DATABASE_URL`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``)
  is an administrative connection; each test that asks for ``pg_url`` gets a
  database of its own, created for it and dropped afterwards.
* ``TAGLEDGER_TEST_MQTT_URL`` (default ``mqtt://127.0.0.1:1883``); each test that
  asks for ``topic_root`` gets a topic root unique to the run and the test.

A service that cannot be reached fails the test with a message naming it: a
missing service is never a silent skip.

Every test also fails if it logged an ERROR (a swallowed exception is a bug), and
every async test fails if it leaves a task running.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from itertools import count
from urllib.parse import urlsplit

import pytest

RUN_ID = uuid.uuid4().hex[:8]
_serial = count()

DEFAULT_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_MQTT_URL = "mqtt://127.0.0.1:1883"


def database_admin_url() -> str:
    return os.environ.get("TAGLEDGER_TEST_DATABASE_URL", DEFAULT_DATABASE_URL)


def mqtt_url() -> str:
    return os.environ.get("TAGLEDGER_TEST_MQTT_URL", DEFAULT_MQTT_URL)


def _require_tcp(url: str, default_port: int, what: str, env: str) -> None:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or default_port
    try:
        with socket.create_connection((host, port), timeout=2):
            return
    except OSError as exc:
        pytest.fail(
            f"{what} is not reachable at {host}:{port} ({exc.strerror or exc}). "
            f"Start it, or point {env} at one (scripts/test starts throwaway services when it can).",
            pytrace=False,
        )


@pytest.fixture
def pg_url() -> Iterator[str]:
    """URL (``postgresql://...``) of a fresh, empty database for this test."""
    _require_tcp(database_admin_url(), 5432, "PostgreSQL", "TAGLEDGER_TEST_DATABASE_URL")
    from tagledger.ledger.scratch import create_database, drop_database

    name = f"tagledger_test_{RUN_ID}_{next(_serial)}"
    url = asyncio.run(create_database(database_admin_url(), name))
    try:
        yield url
    finally:
        asyncio.run(drop_database(database_admin_url(), name))


@pytest.fixture
def mqtt() -> tuple[str, int]:
    """(host, port) of the test broker, checked reachable."""
    url = mqtt_url()
    _require_tcp(url, 1883, "The MQTT broker", "TAGLEDGER_TEST_MQTT_URL")
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or 1883


@pytest.fixture
def topic_root() -> Iterator[str]:
    """A topic root no other test run or test uses; its retained messages are cleared afterwards."""
    root = f"tltest-{RUN_ID}-{next(_serial)}"
    yield root
    _clear_retained(root)


def _clear_retained(root: str) -> None:
    """Best effort: drop the retained messages (reader status) a test left under its root.

    The broker is shared with other runs, so it must not keep accumulating them.
    """
    import paho.mqtt.client as paho

    parts = urlsplit(mqtt_url())
    retained: set[str] = set()
    client = paho.Client(paho.CallbackAPIVersion.VERSION2)
    client.on_message = lambda _c, _u, msg: retained.add(msg.topic) if msg.retain and msg.payload else None
    try:
        client.connect(parts.hostname or "127.0.0.1", parts.port or 1883, keepalive=10)
    except OSError:
        return  # no broker: the test that needed it has already failed
    client.loop_start()
    try:
        client.subscribe(f"{root}/#", qos=1)
        time.sleep(0.3)  # retained messages arrive right after the subscription
        for topic in retained:
            client.publish(topic, b"", qos=1, retain=True).wait_for_publish(timeout=5)
    finally:
        client.loop_stop()
        client.disconnect()


# --------------------------------------------------------------------------- #
# Hygiene: logged errors and leaked tasks fail the test.


@pytest.fixture(autouse=True)
def _unfreeze_gc() -> Iterator[None]:
    # The API server freezes what exists once it is up (cloud.server); in the test
    # process that would keep every fixture of the test alive for the rest of the run.
    yield
    gc.unfreeze()


@pytest.fixture(autouse=True)
def _fail_on_logged_errors(caplog: pytest.LogCaptureFixture, request: pytest.FixtureRequest) -> Iterator[None]:
    caplog.set_level(logging.WARNING)
    yield
    if request.node.get_closest_marker("allow_logged_errors"):
        return
    errors = [r for r in caplog.get_records("call") if r.levelno >= logging.ERROR]
    if errors:
        lines = "\n".join(f"  {r.name}: {r.getMessage()}" for r in errors[:10])
        pytest.fail(f"the test logged {len(errors)} error(s):\n{lines}", pytrace=False)


@pytest.fixture
async def _fail_on_leaked_tasks() -> AsyncIterator[None]:
    # Requested by every async test (see pytest_collection_modifyitems).
    before = set(asyncio.all_tasks())
    yield
    await asyncio.sleep(0)
    leaked = [t for t in asyncio.all_tasks() - before if not t.done() and t is not asyncio.current_task()]
    if leaked:
        for t in leaked:
            t.cancel()
        names = ", ".join(t.get_name() for t in leaked[:10])
        pytest.fail(f"the test left {len(leaked)} task(s) running: {names}", pytrace=False)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if isinstance(item, pytest.Function) and inspect.iscoroutinefunction(item.obj):
            # First, so it is set up before and torn down after the test's other fixtures.
            item.fixturenames.insert(0, "_fail_on_leaked_tasks")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "allow_logged_errors: the test expects ERROR log records")
