"""Readers that publish MQTT themselves (Impinj, Zebra): golden payloads through the real broker into the ledger."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiomqtt
import pytest

from gateway.service import Gateway
from gateway.settings import GatewaySettings
from tagledger.ledger import open_ledger
from tagledger.ledger.model import ItemState
from tagledger.wire import Topics

pytestmark = pytest.mark.integration
GOLDEN = Path(__file__).parent / "golden"
GOLDEN_T0_S = 1_767_261_600  # 2026-01-01T10:00:00Z, the golden payloads' event clock
_FORMAT = "%Y-%m-%dT%H:%M:%S"
_STAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}")


def _mover() -> Callable[[str], str]:
    """Moves the golden payloads' event times to a minute before now, whole seconds.

    The gateway's silence timers run on the wall clock: an item read months ago
    goes `missing` at the first tick after it is admitted, so the floor item's
    state would depend on whether a tick came before the test looked.  Only the
    date and time of day change; fractions and UTC offsets stay as the readers
    wrote them.
    """
    shift = timedelta(seconds=time.time() // 1 - 60 - GOLDEN_T0_S)

    def stamp(m: re.Match[str]) -> str:
        moved = datetime.strptime(m.group(), _FORMAT).replace(tzinfo=UTC) + shift  # the offset stays as written
        return moved.strftime(_FORMAT)

    return lambda text: _STAMP.sub(stamp, text)


async def test_impinj_and_zebra_payloads_are_ingested_with_gaps_health_and_skips(
    pg_url: str, mqtt: tuple[str, int], topic_root: str
) -> None:
    host, port = mqtt
    gateway = Gateway(
        GatewaySettings(
            site=GOLDEN / "site.yaml",
            database_url=pg_url,
            mqtt_url=f"mqtt://{host}:{port}",
            topic_root=topic_root,
            client_id=f"gw-{uuid.uuid4().hex[:8]}",
            health_port=None,
        )
    )
    task = asyncio.create_task(gateway.run(), name="gateway-under-test")
    topics = Topics(topic_root)
    m = gateway.metrics
    try:
        await asyncio.wait_for(gateway.ready.wait(), 20)
        ledger = await open_ledger(pg_url)
        try:
            recent = _mover()

            def golden(name: str) -> str:
                return recent((GOLDEN / name).read_text())

            event = json.loads(golden("impinj_tag_inventory.json"))
            later = json.loads(json.dumps(event))
            later["tagInventoryEvent"]["lastSeenTime"] = recent("2026-01-01T10:00:00.800000Z")
            zebra = json.loads(golden("zebra_tag_data_array.json"))
            again = json.loads(json.dumps(zebra[0]))
            again["timestamp"] = recent("2026-01-01T10:00:01.000+0000")
            bad_antenna = json.loads(json.dumps(zebra[0]))
            bad_antenna["data"]["antenna"] = 9
            async with aiomqtt.Client(host, port, identifier=f"reader-{uuid.uuid4().hex[:8]}") as client:
                impinj = topics.impinj("s1", "r-impinj")
                await client.publish(impinj, json.dumps([event, later]).encode(), qos=1)
                await client.publish(impinj, golden("impinj_events.ndjson").encode(), qos=1)
                await client.publish(impinj, golden("impinj_overflow.json").encode(), qos=1)
                await client.publish(topics.zebra("s1", "r-zebra"), json.dumps([zebra[0], bad_antenna]).encode(), qos=1)
                await client.publish(topics.zebra("s1", "r-zebra"), json.dumps(again).encode(), qos=1)
                await client.publish(topics.zebra("s1", "r-zebra"), b"{not json", qos=1)
            deadline = time.monotonic() + 20
            while True:
                floor = await ledger.item("3074257BF7194E4000001A85")
                if floor is not None and m.reader_payloads.labels("zebra_iot")._value.get() >= 2:
                    break
                assert time.monotonic() < deadline, "reader payloads not ingested"
                await asyncio.sleep(0.1)
            # Impinj: two inventory rounds admit the item on the floor, with no batch key.
            assert (floor.state, floor.zone) == (ItemState.PRESENT, "floor")
            (first,) = await ledger.item_history("3074257BF7194E4000001A85")
            assert first.transition.batch is None
            assert first.transition.reader_id == "r-impinj"
            # overflowEvent: one in the ndjson stream, one alone.
            assert m.gap_events.labels("reader_overflow")._value.get() == 2
            # Zebra: both payloads ingested; the antenna-9 event in one of them is skipped, not fatal.
            assert m.reader_payloads.labels("zebra_iot")._value.get() == 2
            assert m.skipped_events.labels("unknown_antenna")._value.get() == 1
            assert m.rejects.labels("malformed")._value.get() == 1
            assert [r.reason for r in await ledger.rejects()] == ["malformed"]
            assert m.observations._value.get() >= 4
        finally:
            await ledger.close()
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
