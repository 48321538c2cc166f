"""``tagledger bench api``: availability look-ups against a PostgreSQL ledger of 1M+ items.

    tagledger bench api --json                       # 1,000,000 items, 10 s per phase
    tagledger bench api --items 2000000 --seconds 20 --connections 32

What it does, in order:

1. creates a throwaway database through the admin URL (``--admin-url``, default
   ``TAGLEDGER_TEST_DATABASE_URL`` or the local server), migrates it, and
   bulk-loads ``--items`` items with COPY (asyncpg) into ``items`` and the
   matching ``stock`` counts (the same numbers the gateway's delta upserts
   would have left), spread over ``--stores`` stores x ``--gtins`` GTINs; 90 %
   present, 10 % unobserved, on the floor or in the backroom;
2. writes a site file with those stores and issues an ``availability:read`` API
   key, then starts ``tagledger api`` in its own process (auth on, as deployed);
3. from this process (the load generator) drives ``--connections`` keep-alive
   HTTP/1.1 connections over loopback, each sending one request at a time:
   first ``GET /v1/stores/{store}/availability/{gtin}`` on random pairs, then
   ``GET /healthz`` (the trivial endpoint of the same server, same client, same
   run), each for ``--seconds`` after a short warm-up and at most
   ``--max-requests`` requests.

The client is a minimal asyncio HTTP/1.1 client rather than httpx: on a 2-core
machine the load generator shares the CPU with the server, and httpx's
per-request cost would cap both figures at the client's rate.  Prints figures;
asserts nothing.  The last line (``--json``) is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import yaml

from cloud.auth import tokens
from cloud.gtin import check_digit
from tagledger.clock import SystemClock
from tagledger.ledger import open_ledger
from tagledger.ledger.channel import ApiKeyRecord
from tagledger.ledger.migrate import migrate

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
ZONES = ("floor", "backroom")


def gtin_list(n: int) -> list[str]:
    bodies = [f"0400{i:09d}" for i in range(n)]
    return [b + str(check_digit(b)) for b in bodies]


def site_data(stores: int) -> dict[str, Any]:
    out = []
    for s in range(stores):
        sid = f"store-{s:04d}"
        out.append(
            {
                "id": sid,
                "name": f"Bench store {s}",
                "latitude": 43.0 + (s % 50) * 0.1,
                "longitude": -1.0 + (s // 50) * 0.1,
                "timezone": "Europe/Paris",
                "zones": [{"id": "floor", "role": "sales_floor"}, {"id": "backroom", "role": "backroom"}],
                "readers": [
                    # One address per reader: the site file refuses two readers on one host:port.
                    {
                        "id": f"{sid}-r1",
                        "host": f"10.{s // 250}.{s % 250}.5",
                        "antennas": [{"port": 1, "zone": "floor"}],
                    },
                ],
            }
        )
    return {"version": 1, "stores": out}


async def load(dsn: str, *, items: int, stores: list[str], gtins: list[str]) -> float:
    """COPY the items and their stock counts; returns seconds taken."""
    start = time.perf_counter()
    now = datetime.now(UTC)
    counts: Counter[tuple[str, str, str, str]] = Counter()

    def records(lo: int, hi: int) -> list[tuple[Any, ...]]:
        out = []
        for i in range(lo, hi):
            store = stores[i % len(stores)]
            gtin = gtins[(i // len(stores)) % len(gtins)]
            zone = ZONES[(i // 7) % 2]
            state = "unobserved" if i % 10 == 9 else "present"
            counts[(store, gtin, zone, state)] += 1
            out.append((f"30{i:022X}", store, gtin, str(i), "sgtin-96", state, zone, now, 0.9, now))
        return out

    conn = await asyncpg.connect(dsn)
    try:
        chunk = 200_000
        columns = ["epc", "store_id", "gtin", "serial", "scheme", "state", "zone", "since", "confidence", "updated_at"]
        for lo in range(0, items, chunk):
            await conn.copy_records_to_table("items", records=records(lo, min(items, lo + chunk)), columns=columns)
        await conn.copy_records_to_table(
            "stock",
            records=[(*key, n) for key, n in counts.items()],
            columns=["store_id", "gtin", "zone", "state", "count"],
        )
        await conn.execute("ANALYZE items; ANALYZE stock")
    finally:
        await conn.close()
    return time.perf_counter() - start


async def start_api(url: str, site: Path) -> tuple[subprocess.Popen[bytes], str, int]:
    # The rate limiter stays on (its per-request cost is part of the figure) but with a
    # budget the load generator's one key cannot spend.
    env = {**os.environ, "TAGLEDGER_API_AUTH_REQUIRED": "true", "TAGLEDGER_API_RATE_LIMIT_PER_S": "1e9"}
    cmd = [sys.executable, "-m", "tagledger.cli", "api", "--database-url", url, "--site", str(site)]
    proc = subprocess.Popen(  # noqa: ASYNC220, S603 - the server under test, our own command line
        [*cmd, "--port", "0", "--log-level", "warning"], env=env, stderr=subprocess.PIPE
    )
    assert proc.stderr is not None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    said: list[str] = []
    while loop.time() < deadline:
        line = (await loop.run_in_executor(None, proc.stderr.readline)).decode()
        said = [*said[-20:], line]
        found = re.search(r"listening on http://([^:/]+):(\d+)", line)
        if found:
            return proc, found.group(1), int(found.group(2))
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise RuntimeError(f"the API server did not start (exit {proc.poll()}): {''.join(said)}")


class Phase:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.statuses: Counter[int] = Counter()
        self.elapsed = 0.0


async def _connection(
    host: str, port: int, requests: list[bytes], seconds: float, budget: list[int], phase: Phase | None
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    rng = random.Random()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    try:
        while loop.time() < deadline and budget[0] > 0:
            budget[0] -= 1
            request = requests[rng.randrange(len(requests))]
            t0 = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            if phase is not None:
                phase.latencies.append(time.perf_counter() - t0)
                phase.statuses[status] += 1
    finally:
        writer.close()
        await writer.wait_closed()


async def drive(
    host: str, port: int, requests: list[bytes], *, connections: int, seconds: float, max_requests: int, warmup: float
) -> Phase:
    await asyncio.gather(*(_connection(host, port, requests, warmup, [10**9], None) for _ in range(connections)))
    phase = Phase()
    budget = [max_requests]
    start = time.perf_counter()
    await asyncio.gather(*(_connection(host, port, requests, seconds, budget, phase) for _ in range(connections)))
    phase.elapsed = time.perf_counter() - start
    return phase


def _quantile_ms(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 3)


def summary(phase: Phase) -> dict[str, Any]:
    n = len(phase.latencies)
    return {
        "requests": n,
        "rps": round(n / phase.elapsed, 1) if phase.elapsed else 0.0,
        "p50_ms": _quantile_ms(phase.latencies, 0.50),
        "p99_ms": _quantile_ms(phase.latencies, 0.99),
        "mean_ms": round(statistics.fmean(phase.latencies) * 1000, 3),
        "non_200": sum(c for s, c in phase.statuses.items() if s != 200),
    }


def _with_database(url: str, name: str) -> str:
    p = urlsplit(url)
    return urlunsplit((p.scheme, p.netloc, "/" + name, p.query, p.fragment))


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    admin_url = args.admin_url or os.environ.get("TAGLEDGER_TEST_DATABASE_URL", DEFAULT_ADMIN_URL)
    name = f"tagledger_bench_api_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(admin_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = _with_database(admin_url, name)
    proc: subprocess.Popen[bytes] | None = None
    try:
        await migrate(url)
        stores = [f"store-{s:04d}" for s in range(args.stores)]
        gtins = gtin_list(args.gtins)
        load_s = await load(url, items=args.items, stores=stores, gtins=gtins)
        print(f"loaded {args.items:,} items in {load_s:.1f} s", file=sys.stderr)

        key_id, token = tokens.new_token()
        ledger = await open_ledger(url)
        try:
            await ledger.add_api_key(
                ApiKeyRecord(
                    id=key_id,
                    secret_sha256=tokens.digest(token),
                    name="bench",
                    scopes=("availability:read",),
                    stores=None,
                    created_us=SystemClock().now_us(),
                )
            )
        finally:
            await ledger.close()

        with tempfile.TemporaryDirectory() as tmp:
            site = Path(tmp) / "site.yaml"
            site.write_text(yaml.safe_dump(site_data(args.stores)))
            proc, host, port = await start_api(url, site)
            rng = random.Random(args.seed)
            auth = f"Authorization: Bearer {token}\r\n"
            lookups = [
                (
                    f"GET /v1/stores/{rng.choice(stores)}/availability/{rng.choice(gtins)} HTTP/1.1\r\n"
                    f"Host: {host}\r\n{auth}\r\n"
                ).encode()
                for _ in range(10_000)
            ]
            trivial = [f"GET /healthz HTTP/1.1\r\nHost: {host}\r\n{auth}\r\n".encode()]
            opts = {
                "connections": args.connections,
                "seconds": args.seconds,
                "max_requests": args.max_requests,
                "warmup": args.warmup_s,
            }
            availability = summary(await drive(host, port, lookups, **opts))
            healthz = summary(await drive(host, port, trivial, **opts))
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()

    return {
        "items": args.items,
        "stores": args.stores,
        "gtins": args.gtins,
        "connections": args.connections,
        "seconds": args.seconds,
        "load_s": round(load_s, 1),
        "requests": availability["requests"],
        "rps": availability["rps"],
        "p50_ms": availability["p50_ms"],
        "p99_ms": availability["p99_ms"],
        "mean_ms": availability["mean_ms"],
        "non_200": availability["non_200"],
        "trivial_rps": healthz["rps"],
        "trivial_p50_ms": healthz["p50_ms"],
        "trivial_p99_ms": healthz["p99_ms"],
        "ratio_to_trivial": round(availability["rps"] / healthz["rps"], 3) if healthz["rps"] else 0.0,
        "cpus": os.cpu_count(),
    }


def _parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="tagledger bench api",
        description="Availability look-ups over HTTP against a PostgreSQL ledger of 1M+ items, next to /healthz.",
    )
    p.add_argument("--items", type=int, default=1_000_000, help="Items to load (COPY).")
    p.add_argument("--stores", type=int, default=100, help="Stores the items are spread over.")
    p.add_argument("--gtins", type=int, default=2_000, help="GTINs the items are spread over.")
    p.add_argument("--connections", type=int, default=16, help="Concurrent keep-alive connections.")
    p.add_argument("--seconds", type=float, default=10.0, help="Measured time per phase.")
    p.add_argument("--warmup-s", type=float, default=1.0, help="Unmeasured time before each phase.")
    p.add_argument("--max-requests", type=int, default=500_000, help="Cap on requests per phase.")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--admin-url", default=None, help="PostgreSQL URL allowed to CREATE/DROP DATABASE.")
    p.add_argument("--json", action="store_true", help="Print one JSON object as the last line.")
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    args = _parse(argv)
    result = asyncio.run(bench(args))
    for key, value in result.items():
        print(f"{key:>18}  {value}")
    if args.json:
        print(json.dumps(result, sort_keys=True))
    return 0
