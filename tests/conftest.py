"""Shared fixtures.

Integration tests talk to a real PostgreSQL and a real MQTT broker:

* ``TAGLEDGER_TEST_DATABASE_URL`` (default ``postgresql://postgres@127.0.0.1:5432/postgres``)
  is an administrative connection; each test that asks for ``pg_url`` gets an
  empty database of its own, created for it and dropped afterwards; ``pg_ledger_url``
  is the same but already migrated (a copy of a template migrated once per run).
* ``TAGLEDGER_TEST_MQTT_URL`` (default ``mqtt://127.0.0.1:1883``); each test that
  asks for ``topic_root`` gets a topic root unique to the run and the test.

A service that cannot be reached fails the test with a message naming it: a
missing service is never a silent skip.

Every test also fails if it logged an ERROR (a swallowed exception is a bug), and
every async test fails if it leaves a task running.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import inspect
import json
import logging
import os
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import count
from pathlib import Path
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


def _require_postgres() -> None:
    _require_tcp(database_admin_url(), 5432, "PostgreSQL", "TAGLEDGER_TEST_DATABASE_URL")


#: Databases dropped together: each DROP DATABASE waits for a checkpoint, and
#: concurrent ones share it (8 at once take about as long as one); up to 4 batches at once.
_DROP_BATCH = 8


class _Databases:
    """This run's scratch databases on the test server.

    Names carry the run id (so concurrent runs, and the workers of one run, never
    collide). A migrated *template* is made once per run, on first use; a test
    that wants a migrated ledger gets a copy (``CREATE DATABASE ... TEMPLATE``,
    a file copy, several times faster than running the migrations), made ahead
    on a background thread while the test before runs. A finished
    test's database is dropped later, with others at once, on a background
    thread; the session waits for every drop at its end.
    """

    def __init__(self) -> None:
        self._template: str | None = None
        self._doomed: list[str] = []
        self._drops = ThreadPoolExecutor(max_workers=4, thread_name_prefix="tltest-dropdb")
        self._pending: list[Future[None]] = []
        self._copies = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tltest-copydb")
        self._next_copy: Future[str] | None = None

    def _new_name(self) -> str:
        return f"tagledger_test_{RUN_ID}_{next(_serial)}"

    def empty(self) -> str:
        from tagledger.ledger.scratch import create_database

        return asyncio.run(create_database(database_admin_url(), self._new_name()))

    def migrated(self) -> str:
        """A copy of the template; the next test's copy is then made in the background."""
        if self._template is None:
            self._template = self._make_template()
        ready, self._next_copy = self._next_copy, None
        url = ready.result() if ready is not None else self._copy(self._template)
        self._next_copy = self._copies.submit(self._copy, self._template)
        return url

    def _copy(self, template: str) -> str:
        from tagledger.ledger.scratch import create_database

        return asyncio.run(create_database(database_admin_url(), self._new_name(), template=template))

    def _make_template(self) -> str:
        from tagledger.ledger.migrate import migrate
        from tagledger.ledger.scratch import create_database

        name = f"tagledger_template_{RUN_ID}"
        url = asyncio.run(create_database(database_admin_url(), name))
        try:
            asyncio.run(migrate(url))  # closes its connections: a template must have none
        except BaseException:
            self.drop(url)
            raise
        return name

    def drop(self, url: str) -> None:
        self._doomed.append(urlsplit(url).path.lstrip("/"))
        if len(self._doomed) >= _DROP_BATCH:
            self._flush()

    def _flush(self) -> None:
        names, self._doomed = self._doomed, []
        if names:
            self._pending = [f for f in self._pending if not f.done() or f.exception() is not None]
            self._pending.append(self._drops.submit(asyncio.run, _drop_all(names)))

    def close(self) -> None:
        if self._next_copy is not None:
            with contextlib.suppress(Exception):  # a failed copy left nothing behind
                self._doomed.append(urlsplit(self._next_copy.result()).path.lstrip("/"))
            self._next_copy = None
        self._copies.shutdown(wait=True)
        if self._template is not None:
            self._doomed.append(self._template)
            self._template = None
        self._flush()
        self._drops.shutdown(wait=True)
        failed = [f.exception() for f in self._pending if f.exception() is not None]
        self._pending.clear()
        if failed:
            raise RuntimeError(f"{len(failed)} batch(es) of test databases could not be dropped: {failed[0]!r}")


async def _drop_all(names: list[str]) -> None:
    from tagledger.ledger.scratch import drop_database

    results = await asyncio.gather(*(drop_database(database_admin_url(), n) for n in names), return_exceptions=True)
    errors = [r for r in results if isinstance(r, BaseException)]
    if errors:
        raise errors[0]


@pytest.fixture(scope="session")
def _databases() -> Iterator[_Databases]:
    dbs = _Databases()
    try:
        yield dbs
    finally:
        dbs.close()


@pytest.fixture
def pg_url(_databases: _Databases) -> Iterator[str]:
    """URL (``postgresql://...``) of a fresh, empty database for this test."""
    _require_postgres()
    url = _databases.empty()
    try:
        yield url
    finally:
        _databases.drop(url)


@pytest.fixture
def pg_ledger_url(_databases: _Databases) -> Iterator[str]:
    """URL of a fresh database of this test's own, already migrated to the newest schema.

    A copy of a template migrated once per run: use it instead of ``pg_url`` and
    ``migrate()`` when the migrating itself is not what the test is about.
    """
    _require_postgres()
    url = _databases.migrated()
    try:
        yield url
    finally:
        _databases.drop(url)


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
    The broker sends a new subscriber the retained messages before anything
    published after the subscription was granted, so a marker message published
    then, once received, says every retained one has arrived (no fixed wait).
    """
    import threading

    import paho.mqtt.client as paho

    parts = urlsplit(mqtt_url())
    retained: set[str] = set()
    marker = f"{root}/_tltest_retained_done"
    subscribed, seen_marker = threading.Event(), threading.Event()

    def on_message(_c: object, _u: object, msg: paho.MQTTMessage) -> None:
        if msg.topic == marker:
            seen_marker.set()
        elif msg.retain and msg.payload:
            retained.add(msg.topic)

    client = paho.Client(paho.CallbackAPIVersion.VERSION2)
    client.on_message = on_message
    client.on_subscribe = lambda *_args: subscribed.set()
    try:
        client.connect(parts.hostname or "127.0.0.1", parts.port or 1883, keepalive=10)
    except OSError:
        return  # no broker: the test that needed it has already failed
    client.loop_start()
    try:
        client.subscribe(f"{root}/#", qos=1)
        if subscribed.wait(timeout=5):
            client.publish(marker, b"x", qos=1)
            seen_marker.wait(timeout=5)
        for sent in [client.publish(topic, b"", qos=1, retain=True) for topic in retained]:
            sent.wait_for_publish(timeout=5)
    finally:
        client.disconnect()  # first: it wakes the network thread, which loop_stop() then joins at once
        client.loop_stop()


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
    errors = [r for r in errors if not _aiomqtt_orphaned_disconnect(r)]
    if errors:
        lines = "\n".join(f"  {r.name}: {r.getMessage()}" for r in errors[:10])
        pytest.fail(f"the test logged {len(errors)} error(s):\n{lines}", pytrace=False)


def _aiomqtt_orphaned_disconnect(record: logging.LogRecord) -> bool:
    """aiomqtt leaves a future holding 'Unexpected disconnection' unretrieved when a broker
    drops the connection; asyncio logs it whenever it is collected, often in a later test."""
    text = record.getMessage()
    return text.startswith("Future exception was never retrieved") and "Unexpected disconnection" in text


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


# --------------------------------------------------------------------------- #
# Tiers and scheduling.
#
# A plain ``pytest`` (no paths, no -m, no -k) runs the fast tier: every test but
# those marked ``slow`` (real-time scenarios, subprocess builds and installs).
# Naming paths, -m or -k selects from every test; ``--tier all`` (scripts/test)
# runs every test whatever else is given.

#: Under pytest-xdist the tests marked slow go first, these files' first of all (their
#: tests take 30-120 s each): a long test started last would make the run's tail.
_LONGEST_FIRST = (
    "tests/test_deploy_image.py",
    "tests/test_demo.py",
    "tests/gateway/test_fault_suite.py",
    "tests/gateway/test_failover.py",
    "tests/test_console_demo.py",
    "tests/test_end_to_end.py",
    "tests/cloud/test_reservation_race.py",
    "tests/edge/test_profile.py",
    "tests/edge/test_delivery.py",
    "tests/test_packaging.py",
    "tests/edge/test_bench.py",
    "tests/cloud/test_bench_api.py",
)


#: Files whose tests are long and share no module-scoped fixture: ``--dist loadfile``
#: hands their tests to the workers one by one (the image is built once for all workers
#: in tests/test_deploy_image.py); every other file stays on one worker, so that its
#: module-scoped fixtures (a broker, a server, a rendered overlay) are made once.
_SPLIT_FILES = frozenset(_LONGEST_FIRST)


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    if config.getoption("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class FilesExceptTheLongest(LoadScopeScheduling):
        """``loadfile`` in the order of the collection (the longest first), with the tests of
        ``_SPLIT_FILES`` scheduled one by one."""

        def __init__(self, config: pytest.Config, log: object = None) -> None:
            super().__init__(config, log)  # type: ignore[arg-type]
            config.option.loadscopereorder = False

        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return nodeid if path in _SPLIT_FILES else path

    return FilesExceptTheLongest(config, log)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--tier",
        choices=("fast", "all"),
        default=None,
        help="fast: leave out the tests marked slow; all: every test (scripts/test). "
        "Default: fast for a plain `pytest` (no paths, -m or -k), all otherwise.",
    )


def _tier(config: pytest.Config) -> str:
    chosen: str | None = config.getoption("--tier")
    if chosen is not None:
        return chosen
    plain = config.args_source == pytest.Config.ArgsSource.TESTPATHS
    return "fast" if plain and not config.option.markexpr and not config.option.keyword else "all"


def pytest_report_header(config: pytest.Config) -> str:
    if _tier(config) == "fast":
        return "tier: fast (tests marked slow left out; scripts/test or --tier all runs them)"
    return "tier: all"


def _schedule_rank(item: pytest.Item) -> int:
    if item.get_closest_marker("slow") is None:
        return len(_LONGEST_FIRST) + 1
    path = item.nodeid.split("::", 1)[0]
    return _LONGEST_FIRST.index(path) if path in _LONGEST_FIRST else len(_LONGEST_FIRST)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _tier(config) == "fast":
        slow = [item for item in items if item.get_closest_marker("slow") is not None]
        if slow:
            config.hook.pytest_deselected(items=slow)
            items[:] = [item for item in items if item.get_closest_marker("slow") is None]
    if os.environ.get("PYTEST_XDIST_WORKER"):
        items.sort(key=_schedule_rank)  # stable: the same order on every worker
    for item in items:
        if isinstance(item, pytest.Function) and inspect.iscoroutinefunction(item.obj):
            # First, so it is set up before and torn down after the test's other fixtures.
            item.fixturenames.insert(0, "_fail_on_leaked_tasks")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "allow_logged_errors: the test expects ERROR log records")


# --------------------------------------------------------------------------- #
# Made once per run, whatever the number of workers.


def run_shared_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory all processes of this run share (the xdist workers' common base), made once."""
    base = tmp_path_factory.getbasetemp()
    shared = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "shared"
    shared.mkdir(exist_ok=True)
    return shared


@contextlib.contextmanager
def run_lock(tmp_path_factory: pytest.TempPathFactory, name: str) -> Iterator[Path]:
    """Hold the run-wide lock ``name``; yields the shared directory (for a result file beside it)."""
    import fcntl

    shared = run_shared_dir(tmp_path_factory)
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield shared
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def cleanup_after_run(tmp_path_factory: pytest.TempPathFactory, name: str, argv: list[str]) -> None:
    """Run ``argv`` when the whole run ends (after every worker), for what a run-wide fixture made."""
    (run_shared_dir(tmp_path_factory) / f"{name}.cleanup.json").write_text(json.dumps(argv))


def pytest_sessionfinish(session: pytest.Session) -> None:
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return  # the controller (or the only process) cleans up once everyone is done
    factory = getattr(session.config, "_tmp_path_factory", None)
    if factory is None:
        return
    shared = factory.getbasetemp() / "shared"
    for path in sorted(shared.glob("*.cleanup.json")) if shared.is_dir() else []:
        subprocess.run(json.loads(path.read_text()), capture_output=True, timeout=300, check=False)
        path.unlink()
