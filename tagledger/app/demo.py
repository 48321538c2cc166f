"""``tagledger demo``: the embedded default, a whole store with nothing installed.

An in-process MQTT broker (amqtt) and a SQLite ledger stand in for Mosquitto and
PostgreSQL; everything else is the production code path (see
:mod:`tagledger.app.stack`).  amqtt is for the demo only: it showed PUBACK timeouts
under heavy load and has no MQTT 5 shared subscriptions.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from amqtt.broker import Broker

from tagledger.app.demo_settings import DemoSettings
from tagledger.app.stack import DEMO_POLICY, StackSettings, StoreStack

log = logging.getLogger(__name__)


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SnapshotIterDict(dict[str, Any]):
    """A dict whose iterations go over a copy, so that the dict may change meanwhile.

    amqtt 0.12.1's broker walks its topic-filter table with awaits inside the loop
    (on every CONNECT, to send retained messages; on every broadcast): a client that
    subscribes or disconnects meanwhile makes the walk raise ``RuntimeError:
    dictionary changed size during iteration``, which drops the connecting client and
    shows a traceback.  It happens whenever clients connect while others subscribe,
    as an agent reconnecting under load does.  The table is this dict instead.
    """

    def __iter__(self) -> Iterator[str]:
        return iter(list(super().keys()))

    def items(self) -> list[tuple[str, Any]]:  # type: ignore[override]
        return list(super().items())

    def keys(self) -> list[str]:  # type: ignore[override]
        return list(super().keys())

    def values(self) -> list[Any]:  # type: ignore[override]
        return list(super().values())


@asynccontextmanager
async def embedded_broker() -> AsyncIterator[str]:
    """An in-process MQTT 3.1.1 broker on a free loopback port; yields its URL."""
    port = _free_port()
    broker = Broker(
        {
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }
    )
    # See SnapshotIterDict: the broker's subscriptions table, private in amqtt
    # (checked against the pinned 0.12.1; tests/test_embedded_broker.py fails if
    # the attribute goes away).
    broker._subscriptions = SnapshotIterDict(broker._subscriptions)
    await broker.start()
    try:
        yield f"mqtt://127.0.0.1:{port}"
    finally:
        await broker.shutdown()


def _say(message: str) -> None:
    # Human messages go to stderr so that with --json the last stdout line is the summary.
    print(f"tagledger demo: {message}", file=sys.stderr, flush=True)


async def run_demo(settings: DemoSettings) -> dict[str, Any] | None:
    ledger = (settings.data_dir or Path("(a temporary directory)")) / "ledger.sqlite"
    try:
        with tempfile.TemporaryDirectory(prefix="tagledger-demo-") as tmp:
            ledger = (settings.data_dir or Path(tmp)) / "ledger.sqlite"
            return await _run_demo(settings, ledger.parent)
    finally:
        # Said on every way out (end of --duration, Ctrl-C, a failed role): an
        # operator who looked at the ledger should know whether it is still there.
        if settings.data_dir is not None:
            _say(f"stopped; the ledger stays in {ledger} (and the spools next to it)")
        else:
            _say(f"stopped; the ledger was {ledger}, now deleted (give --data-dir to keep it)")


async def _run_demo(settings: DemoSettings, data_dir: Path) -> dict[str, Any] | None:
    api_port = settings.port
    if api_port and not _port_free(api_port):
        _say(f"port {api_port} is in use; the API takes a free port instead")
        api_port = 0
    async with embedded_broker() as mqtt_url:
        stack_settings = StackSettings(
            site=settings.site,
            mqtt_url=mqtt_url,
            database_url=f"sqlite:///{data_dir / 'ledger.sqlite'}",
            data_dir=data_dir,
            api_port=api_port,
            seed=settings.seed,
            items=settings.items,
            events_per_minute=settings.events_per_minute,
            reads_per_s=settings.reads_per_s,
            policy=DEMO_POLICY,
        )
        async with StoreStack(stack_settings) as stack:
            assert stack.simulation is not None
            store_id = stack.simulation.store.id
            _say(f"staff console at {stack.api_url}/ (open it in a browser)")
            _say(f"API at {stack.api_url}/v1 (OpenAPI docs at {stack.api_url}/docs)")
            _say(f"try: curl {stack.api_url}/v1/stores/{store_id}/stock")
            _say(f"ledger: {data_dir / 'ledger.sqlite'}; MQTT broker: {mqtt_url}")
            if settings.duration is None:
                _say("running until Ctrl-C")
                await asyncio.Event().wait()
                return None
            await asyncio.sleep(settings.duration)
            _say("settling: no new events, waiting for the ledger to catch up")
            await stack.settle(timeout_s=20)
            return await summarise(stack)


async def summarise(stack: StoreStack) -> dict[str, Any]:
    """What the ledger says next to what the simulator placed, plus an availability sample."""
    sim = stack.simulation
    gateway = stack.gateway
    assert sim is not None
    assert gateway is not None
    store_id = sim.store.id
    truth_by_gtin = sim.truth_by_gtin()
    sample = sorted(truth_by_gtin, key=lambda g: (-truth_by_gtin[g], g))[:3]
    availability = [await stack.get(f"/v1/stores/{store_id}/availability/{gtin}") for gtin in sample]
    reads = sum(ep.stats.tags_sent for ep in sim.endpoints.values())
    observations = gateway.metrics.registry.get_sample_value("tagledger_observations_total") or 0
    return {
        "store_id": store_id,
        "api_url": stack.api_url,
        "reads": reads,
        "observations": int(observations),
        "items_by_zone": await stack.items_by_zone(),
        "truth_items_by_zone": sim.truth_items_by_zone(),
        "truth_by_gtin": {g: truth_by_gtin[g] for g in sample},
        "availability": availability,
    }
