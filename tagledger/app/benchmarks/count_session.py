"""A count session on PostgreSQL for one store of 35,000 items: open, reads, coverage, close.

The store's items are committed first (half on the floor, half in the backroom); then a
count of the whole store is opened (expected set taken from the ledger), 34,900 reads
are sent to it in one request's worth of rows, its coverage is computed, and it is
closed (result per GTIN and 100 missing items written).  Also an EPCIS export of the
35,000 arrivals.  Prints figures; asserts nothing.

    tagledger bench count-session [--database-url postgresql://postgres@127.0.0.1:5432/postgres]
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from typing import Any

import yaml

from cloud.audit import service
from cloud.audit.counts import Sighting
from tagledger.app.benchmarks.args import add_database_url, bench_parser, report
from tagledger.ledger import open_ledger
from tagledger.ledger.migrate import migrate
from tagledger.ledger.model import ItemState, Transition
from tagledger.ledger.scratch import scratch_database
from tagledger.site import EXAMPLE_SITE, parse_site

T0 = 1_767_225_600_000_000  # 2026-01-01T00:00:00Z


def main(argv: Sequence[str] | None = None) -> int:
    parser = bench_parser("count-session", __doc__)
    add_database_url(parser)
    parser.add_argument("--items", type=int, default=35_000, help="items of the store (100 of them missing)")
    args = parser.parse_args(argv)
    report(asyncio.run(_count(args.database_url, args.items)), as_json=args.json)
    return 0


async def _count(admin: str, items: int) -> dict[str, Any]:
    site = parse_site(yaml.safe_load(EXAMPLE_SITE.read_text()), "example")
    async with scratch_database(admin, f"tagledger_bench_count_{uuid.uuid4().hex[:8]}") as url:
        await migrate(url)
        ledger = await open_ledger(url)
        try:
            arrivals = [
                Transition(
                    "paris-01",
                    f"30{i:022X}",
                    "00614141000012",
                    str(i),
                    "sgtin-96",
                    T0 + i,
                    None,
                    ItemState.PRESENT,
                    None,
                    "floor" if i % 2 else "backroom",
                    0.9,
                    "observed",
                    "paris-01-r1",
                    1,
                )
                for i in range(items)
            ]
            for k in range(0, items, 5000):
                await ledger.commit_transitions(arrivals[k : k + 5000])
            now = T0 + 3600 * 10**6
            t = [time.perf_counter()]
            count = await service.open_count(ledger, site, "paris-01", None, now_us=now, actor="bench")
            t.append(time.perf_counter())
            reads = [Sighting(a.epc, a.to_zone, "paris-01-r1", 1) for a in arrivals[: items - 100]]
            await service.add_reads(ledger, site, count.id, reads, now_us=now)
            t.append(time.perf_counter())
            coverage = (await service.get_count(ledger, site, count.id)).coverage
            t.append(time.perf_counter())
            closed = await service.close_count(ledger, site, count.id, now_us=now + 1, actor="bench")
            t.append(time.perf_counter())
            doc = await service.epcis_document(
                ledger, site, "paris-01", from_us=T0, to_us=now, now_us=now + 2, actor="bench"
            )
            t.append(time.perf_counter())
            missing = closed.result.missing_total if closed.result is not None else None
            events = len(doc["epcisBody"]["eventList"])
            return {
                "items": items,
                "expected": count.coverage.expected,
                "open_s": round(t[1] - t[0], 3),
                "reads": len(reads),
                "reads_s": round(t[2] - t[1], 3),
                "coverage_s": round(t[3] - t[2], 3),
                "expected_seen": coverage.expected_seen,
                "close_s": round(t[4] - t[3], 3),
                "missing": missing,
                "epcis_events": events,
                "epcis_s": round(t[5] - t[4], 3),
                "epcis_events_per_s": round(events / (t[5] - t[4])),
            }
        finally:
            await ledger.close()
