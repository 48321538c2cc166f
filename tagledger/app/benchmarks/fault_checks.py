"""What became of the messages of ``tagledger bench faults``: the gateway's counters and the ledger's tables."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
from prometheus_client.parser import text_string_to_metric_families


async def gateway_metrics(health_port: int) -> dict[str, float]:
    """The gateway's counters, summed over their labels, by sample name."""
    async with httpx.AsyncClient(timeout=5) as http:
        text = (await http.get(f"http://127.0.0.1:{health_port}/metrics")).text
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[sample.name] = out.get(sample.name, 0.0) + sample.value
    return out


def accounted(m: dict[str, float]) -> float:
    """Messages of the reads, impinj and zebra topics the gateway accounted for: dead-lettered or ingested."""
    return (
        m.get("tagledger_rejects_total", 0)
        + m.get("tagledger_reader_payloads_total", 0)
        + m.get("tagledger_batches_total", 0)
    )


async def rejects_count(db_url: str) -> int:
    return int((await query(db_url, "SELECT count(*) AS n FROM rejects"))[0]["n"])


async def query(db_url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(db_url)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def missing(db_url: str, epcs: list[str]) -> int:
    if not epcs:
        return 0
    rows = await query(db_url, "SELECT count(*) AS n FROM items WHERE epc = ANY($1::text[])", epcs)
    return len(epcs) - int(rows[0]["n"])


async def doubled(db_url: str, epcs: list[str]) -> int:
    rows = await query(
        db_url,
        "SELECT epc FROM events WHERE epc = ANY($1::text[]) AND from_state IS NULL GROUP BY epc HAVING count(*) > 1",
        epcs,
    )
    return len(rows)


async def dead_letters(db_url: str, poisons: list[bytes]) -> tuple[int, int]:
    """(poisons found in the rejects table, poisons found there more than once)."""
    rows = await query(db_url, "SELECT payload FROM rejects")
    counts: dict[bytes, int] = {}
    for r in rows:
        counts[bytes(r["payload"])] = counts.get(bytes(r["payload"]), 0) + 1
    found = twice = 0
    for p in poisons:
        # The rejects table keeps at most MAX_REJECT_BYTES: compare what was kept.
        c = next((v for k, v in counts.items() if p.startswith(k) and k), 0)
        found += c > 0
        twice += c > 1
    return found, twice
