"""Ledger commit throughput, per backend: commits/s and transitions/s.  Prints figures, asserts nothing.

    tagledger bench ledger-commit                    # SQLite (temp file) and PostgreSQL
    tagledger bench ledger-commit --backend sqlite --seconds 3
    tagledger bench ledger-commit --backend postgres --database-url postgresql://...

PostgreSQL runs in a throwaway database created through the admin URL
(``--database-url``, else ``TAGLEDGER_TEST_DATABASE_URL``, else the local server) and dropped after.

Scenarios, each for ``--seconds``:
  * ``empty``: batches without transitions — most batches in steady state (every
    read of a shelf that did not change), i.e. only the exactly-once key is written;
  * ``moves``: batches of ``--transitions`` transitions each (arrivals first, then
    zone moves of the same items), the busy case;
  * ``empty_xN`` / ``moves_xN``: the same, N batches per ``commit_batches`` call
    (one transaction, one WAL flush), as a gateway grouping what arrived together.
Batches are committed by ``--concurrency`` tasks at once, as a gateway with
several batches in flight would.  The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import uuid
from collections.abc import Sequence
from itertools import count
from pathlib import Path

from tagledger.app.benchmarks.args import add_database_url, bench_parser
from tagledger.ledger import open_ledger
from tagledger.ledger.migrate import migrate
from tagledger.ledger.model import BatchKey, BatchRecord, ItemState, Transition
from tagledger.ledger.repository import Ledger
from tagledger.ledger.scratch import scratch_database

T0 = 1_767_225_600_000_000
GTINS = [f"0061414100{i:04d}" for i in range(200)]
ZONES = ["floor", "backroom", "fitting"]


async def _run(ledger: Ledger, *, seconds: float, per_batch: int, concurrency: int, group: int) -> dict[str, float]:
    seqs = count(1)
    boot = uuid.uuid4().hex[:8]
    zone_of: dict[str, str] = {}
    commits = transitions = 0
    deadline = time.perf_counter() + seconds

    def make(seq: int) -> tuple[BatchRecord, list[Transition]]:
        out = []
        for i in range(per_batch):
            epc = f"e{(seq * per_batch + i) % 50_000}"
            old = zone_of.get(epc)
            new = ZONES[(ZONES.index(old) + 1) % len(ZONES)] if old else ZONES[0]
            zone_of[epc] = new
            out.append(
                Transition(
                    store_id="s1",
                    epc=epc,
                    gtin=GTINS[hash(epc) % len(GTINS)],
                    serial=epc[1:],
                    scheme="sgtin-96",
                    at_us=T0 + seq * 1000 + i,
                    from_state=ItemState.PRESENT if old else None,
                    to_state=ItemState.PRESENT,
                    from_zone=old,
                    to_zone=new,
                    confidence=0.9,
                    reason="zone_change" if old else "observed",
                    reader_id="r1",
                    antenna=1,
                )
            )
        record = BatchRecord(BatchKey("r1", boot, seq), "s1", 500, T0 + seq, T0 + seq + 10)
        return record, out

    async def worker() -> None:
        nonlocal commits, transitions
        while time.perf_counter() < deadline:
            # Built before the await: no interleaving inside make().
            work = [make(next(seqs)) for _ in range(group)]
            if group == 1:
                await ledger.commit_batch(*work[0])
            else:
                await ledger.commit_batches(work)
            commits += group
            transitions += sum(len(batch) for _, batch in work)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {"commits_per_s": commits / elapsed, "transitions_per_s": transitions / elapsed}


async def _bench(url: str, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    await migrate(url)
    ledger = await open_ledger(url)
    try:
        results = {}
        runs = [("empty", 0, 1), ("moves", args.transitions, 1)]
        if args.group > 1:
            runs += [(f"empty_x{args.group}", 0, args.group), (f"moves_x{args.group}", args.transitions, args.group)]
        for name, per_batch, group in runs:
            results[name] = await _run(
                ledger, seconds=args.seconds, per_batch=per_batch, concurrency=args.concurrency, group=group
            )
        return results
    finally:
        await ledger.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = bench_parser("ledger-commit", __doc__)
    add_database_url(parser)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--transitions", type=int, default=20, help="transitions per batch in the 'moves' run")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--group", type=int, default=32, help="batches per commit_batches call in the *_xN runs")
    args = parser.parse_args(argv)
    results = asyncio.run(_measure(args))
    for backend, runs in results.items():
        for run, figures in runs.items():
            print(
                f"{backend:8} {run:10} {figures['commits_per_s']:10.0f} commits/s"
                f" {figures['transitions_per_s']:10.0f} transitions/s"
            )
    if args.json:
        print(json.dumps({"transitions_per_batch": args.transitions, "concurrency": args.concurrency, **results}))
    return 0


async def _measure(args: argparse.Namespace) -> dict[str, dict[str, dict[str, float]]]:
    report: dict[str, dict[str, dict[str, float]]] = {}
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            report["sqlite"] = await _bench(f"sqlite:///{Path(tmp) / 'bench.sqlite'}", args)
    if args.backend in ("postgres", "both"):
        async with scratch_database(args.database_url, f"tagledger_bench_{uuid.uuid4().hex[:8]}") as url:
            report["postgres"] = await _bench(url, args)
    return report
