"""``tagledger audit count follow``: a count takes the store's live reads from a real MQTT broker."""

from __future__ import annotations

import asyncio

import aiomqtt
import pytest

from cloud.audit import service
from tagledger import wire
from tagledger.app.audit_follow import CountGone, follow
from tagledger.clock import US_PER_S, ManualClock
from tagledger.ledger.repository import Ledger
from tests.cloud.harness import two_store_site
from tests.cloud.ledger_data import NOW, populate, shirt, shoe

pytestmark = pytest.mark.integration


def batch(seq: int, reader: str, observations: list[tuple[str, int]], at_us: int = NOW) -> bytes:
    obs = [
        wire.Observation(
            epc=epc, antenna=antenna, first_seen_us=at_us, last_seen_us=at_us, count=3, peak_rssi=-50, mean_rssi=-55
        )
        for epc, antenna in observations
    ]
    return wire.encode(
        wire.ReadBatch(store_id="paris-01", reader_id=reader, boot_id="b1", seq=seq, sent_at_us=NOW, observations=obs)
    )


async def test_reads_on_mqtt_fill_the_count_until_it_closes(
    ledger: Ledger, mqtt: tuple[str, int], topic_root: str
) -> None:
    site = two_store_site()
    clock = ManualClock(NOW)
    await populate(ledger)
    count = await service.open_count(ledger, site, "paris-01", ["floor", "backroom"], now_us=NOW, actor="t")
    host, port = mqtt
    url = f"mqtt://{host}:{port}"
    subscribed = asyncio.Event()
    task = asyncio.create_task(
        follow(
            ledger, site, count.id, mqtt_url=url, topic_root=topic_root, clock=clock, flush_s=0.1, subscribed=subscribed
        ),
        name="follow",
    )
    await asyncio.wait_for(subscribed.wait(), 10)
    topics = wire.Topics(topic_root)
    async with aiomqtt.Client(hostname=host, port=port) as pub:
        # An agent's spool replayed after an outage: reads of an hour before the count opened say
        # nothing of what the count finds now (shirt 2 may have been sold since).  Not counted.
        stale = batch(9, "paris-01-r1", [(shirt(2), 1)], at_us=NOW - 3_600 * US_PER_S)
        await pub.publish(topics.reads("paris-01", "paris-01-r1"), stale)
        # floor reader (antennas 1, 2 on the floor, 3 in the fitting rooms), backroom reader
        await pub.publish(
            topics.reads("paris-01", "paris-01-r1"), batch(1, "paris-01-r1", [(shirt(1), 1), (shirt(1), 2)])
        )
        await pub.publish(
            topics.reads("paris-01", "paris-01-r1"), batch(2, "paris-01-r1", [(shirt(1), 1), (shoe(0), 3)])
        )
        await pub.publish(topics.reads("paris-01", "paris-01-r2"), batch(1, "paris-01-r2", [(shirt(3), 1)]))
        await pub.publish(topics.reads("paris-01", "paris-01-r2"), b"not json")  # ignored, logged
        for _ in range(100):
            cov = (await service.get_count(ledger, site, count.id)).coverage
            if cov.expected_seen >= 2:
                break
            await asyncio.sleep(0.1)
    assert (cov.expected_seen, cov.unexpected_seen) == (2, 0)  # shoe 0 was read in the fitting rooms: not counted
    assert cov.zones_swept == ["floor", "backroom"]
    assert [(a.reader_id, a.antenna) for a in cov.antennas_swept] == [
        ("paris-01-r1", 1),
        ("paris-01-r1", 2),
        ("paris-01-r2", 1),
    ]
    closed = await service.close_count(ledger, site, count.id, now_us=NOW + 1, actor="t")
    sent = await asyncio.wait_for(task, 10)  # it stops by itself once the count is closed
    assert sent == 4  # one per EPC x reader x antenna, the repeat not sent again
    assert closed.result is not None
    assert closed.result.counted == 2
    with pytest.raises(CountGone):
        await follow(ledger, site, count.id, mqtt_url=url, topic_root=topic_root, clock=clock)
