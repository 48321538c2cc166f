"""An :class:`~gateway.ingest.Ingestor` on a real ledger, without the network, and payloads to feed it."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from gateway.ingest import Ingestor
from gateway.metrics import GatewayMetrics
from gateway.work import Outgoing, Work
from tagledger.clock import ManualClock
from tagledger.ledger import open_ledger
from tagledger.ledger.migrate import migrate
from tagledger.ledger.repository import Ledger
from tagledger.site import EXAMPLE_SITE, load_site
from tagledger.wire import Topics

STORE = "paris-01"
READER = "paris-01-r1"  # antennas 1, 2 -> floor; 3 -> fitting
NOW_US = 1_795_000_000_000_000
TOPICS = Topics("kit")


@contextlib.asynccontextmanager
async def ingestor(url: str, **kwargs: Any) -> AsyncIterator[tuple[Ingestor, Ledger, ManualClock]]:
    """A loaded ingestor writing to the migrated ledger at ``url``, its clock at ``NOW_US``."""
    await migrate(url)
    ledger = await open_ledger(url)
    clock = ManualClock(NOW_US)
    try:
        ing = Ingestor(
            load_site(EXAMPLE_SITE),
            ledger,
            TOPICS,
            clock,
            GatewayMetrics(),
            **kwargs,
        )
        await ing.load()
        yield ing, ledger, clock
    finally:
        await ledger.close()


def batch(seq: int, epc_numbers: range = range(3), *, boot: str = "boot-a", **overrides: Any) -> dict[str, Any]:
    """A valid read batch of READER (as a dict, to be spoiled field by field)."""
    t = NOW_US - 60_000_000 + (seq % 50) * 1_000_000
    doc: dict[str, Any] = {
        "v": 1,
        "kind": "reads",
        "store_id": STORE,
        "reader_id": READER,
        "boot_id": boot,
        "seq": seq,
        "sent_at_us": t + 1_000_000,
        "observations": [
            {
                "epc": f"30340BB8C0{n:014X}",
                "antenna": 1,
                "first_seen_us": t,
                "last_seen_us": t + 900_000,
                "count": 5,
                "peak_rssi": -50.0,
                "mean_rssi": -53.0,
            }
            for n in epc_numbers
        ],
    }
    doc.update(overrides)
    return doc


def dumps(doc: Any) -> bytes:
    return json.dumps(doc).encode()


def acks(replies: list[Outgoing]) -> list[tuple[int, str]]:
    """(seq, result) of the acks among the replies."""
    out = []
    for r in replies:
        if r.topic.endswith("/ack"):
            doc = json.loads(r.payload)
            out.append((doc["seq"], doc["result"]))
    return out


def reasons(work: Work) -> list[str]:
    return [r.reason for r in work.rejects]
