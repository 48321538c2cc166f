"""Feed a count session with the store's live reads: ``tagledger audit count follow CNT``.

The ledger keeps item *changes*, not reads: an item read again where it already was
leaves no trace, so a count by fixed readers alone would see only the items that moved.
This process listens to the store's reads on MQTT beside the gateway (an ordinary
subscription: the gateway's own, shared or not, is not disturbed) and sends each EPC
once per reader antenna to the count, with the antenna's zone from the site file.  It
understands what the gateway understands: tagledger read batches and the readers' own
Impinj and Zebra payloads.  It stops when the count is closed, or when told to.

Reads arrive at QoS 0: a read this process misses is made again on the reader's next
sweep, and a count needs each item once, not every read of it.  Sends are grouped
every ``flush_s`` (one ledger transaction per group).  The broker must let this client
subscribe to the store's ``reads``, ``impinj`` and ``zebra`` topics (with the ACLs of
``tagledger mqtt provision``: the gateway's identity, or one made for auditors).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Iterable

import aiomqtt

from cloud.audit import repository
from cloud.audit.counts import Sighting
from gateway.fastwire import sightings_from_batch
from gateway.formats import parse_impinj, parse_zebra
from gateway.records import FormatError
from gateway.records import Sighting as WireSighting
from tagledger import wire
from tagledger.clock import Clock
from tagledger.ledger.repository import Ledger
from tagledger.mqtt import BrokerAddress
from tagledger.site import Site

log = logging.getLogger(__name__)


class CountGone(RuntimeError):
    """The count does not exist or is closed: nothing to follow."""


class NewReads:
    """Which (EPC, reader, antenna) the count has been sent already; pure bookkeeping.

    A read made before the count opened is not sent: an agent replaying its spool after an
    outage publishes reads of long ago, which say nothing of what the count finds now (the
    ledger's own events count from the opening on, by the same rule)."""

    def __init__(self, since_us: int = 0) -> None:
        self._since_us = since_us
        self._sent: set[tuple[str, str, int]] = set()

    def take(self, sightings: Iterable[WireSighting]) -> list[Sighting]:
        out = []
        for s in sightings:
            if s.last_seen_us < self._since_us:
                continue
            key = (s.epc, s.reader_id, s.antenna)
            if key not in self._sent:
                self._sent.add(key)
                out.append(Sighting(s.epc, s.zone, s.reader_id, s.antenna))
        return out


def parse(topics: wire.Topics, site: Site, topic: str, payload: bytes) -> list[WireSighting]:
    """The sightings of one message; a message that is not reads (or is malformed) gives none."""
    parts = topics.parse(topic)
    if parts is None:
        return []
    store_id, reader_id, kind = parts
    try:
        if kind == wire.TopicKind.READS:
            return sightings_from_batch(wire.decode_as(wire.ReadBatch, payload), site)
        if kind == wire.TopicKind.IMPINJ:
            return parse_impinj(payload, site, store_id=store_id, reader_id=reader_id).sightings
        if kind == wire.TopicKind.ZEBRA:
            return parse_zebra(payload, site, store_id=store_id, reader_id=reader_id).sightings
    except (wire.WireError, FormatError, KeyError) as exc:
        log.warning("count follow: ignoring a message on %s: %s", topic, exc)
    return []


async def follow(
    ledger: Ledger,
    site: Site,
    count_id: str,
    *,
    mqtt_url: str,
    topic_root: str,
    clock: Clock,
    flush_s: float = 1.0,
    stop: asyncio.Event | None = None,
    subscribed: asyncio.Event | None = None,
) -> int:
    """Send the store's reads to the count until it is closed (or ``stop`` is set); the reads sent."""
    session = await repository.session(ledger, count_id)
    if session is None or session.state != "open":
        raise CountGone(f"count {count_id!r} is {'closed' if session else 'unknown'}")
    topics = wire.Topics(topic_root)
    address = BrokerAddress.parse(mqtt_url)
    seen = NewReads(since_us=session.opened_us)
    pending: list[Sighting] = []
    sent = 0
    stop = stop or asyncio.Event()
    async with aiomqtt.Client(
        **address.client_kwargs(), identifier=f"tagledger-count-{uuid.uuid4().hex[:8]}"
    ) as client:
        for kind in (wire.TopicKind.READS, wire.TopicKind.IMPINJ, wire.TopicKind.ZEBRA):
            await client.subscribe(f"{topics.base}/{session.store_id}/+/{kind.value}", qos=0)
        if subscribed is not None:
            subscribed.set()

        async def receive() -> None:
            async for message in client.messages:
                payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
                pending.extend(seen.take(parse(topics, site, str(message.topic), payload)))

        receiver = asyncio.create_task(receive(), name="count-follow-receive")
        try:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), flush_s)
                if receiver.done():
                    receiver.result()  # the connection ended: raise its error
                now = await repository.session(ledger, count_id)
                if now is None or now.state != "open":
                    break  # closed meanwhile: its result is recorded, later reads are not its
                if pending:
                    batch, pending[:] = list(pending), []
                    await repository.add_reads(ledger, count_id, batch, at_us=clock.now_us())
                    sent += len(batch)
        finally:
            receiver.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                await receiver
    return sent
