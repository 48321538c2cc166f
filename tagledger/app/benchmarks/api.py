"""``tagledger bench api``: availability look-ups against a PostgreSQL ledger of 1M+ items.

    tagledger bench api --json                       # 1,000,000 items, 10 s per phase
    tagledger bench api --items 2000000 --seconds 20 --connections 32 --latency-load 0.7

What it does, in order:

1. creates a throwaway database through the admin URL (``--database-url``, default
   ``TAGLEDGER_TEST_DATABASE_URL`` or the local server), migrates it, and
   bulk-loads ``--items`` items with COPY (asyncpg) into ``items`` and the
   matching ``stock`` counts (the same numbers the gateway's delta upserts
   would have left), spread over ``--stores`` stores x ``--gtins`` GTINs; 90 %
   present, 10 % unobserved, on the floor or in the backroom;
2. writes a site file with those stores and issues an ``availability:read`` API
   key, then starts ``tagledger api`` in its own process (auth on, as deployed);
3. **saturation** (closed loop): ``--connections`` keep-alive HTTP/1.1
   connections over loopback, each sending its next request as soon as the
   previous answer is in, first ``GET /v1/stores/{store}/availability/{gtin}``
   on random pairs, then ``GET /healthz`` (the trivial endpoint of the same
   server, same client, same run), each for ``--seconds`` after a short
   warm-up and at most ``--max-requests`` requests.  This gives the maximum
   rates (``rps``, ``trivial_rps``) and their ratio (``ratio_to_trivial``).
   The latencies of this phase are reported as ``saturation_p50_ms`` /
   ``saturation_p99_ms`` only: in a closed loop at saturation the latency is
   the queue the client itself keeps full, connections / rps by Little's law,
   so it moves with the arbitrary ``--connections`` and says little about the
   server;
4. **latency at a stated load** (open loop): availability look-ups on a fixed
   arrival schedule at ``--latency-load`` (default 0.5) times the ``rps`` just
   measured (``latency_rps``; ``--latency-rps`` sets it outright, for A/B runs
   at equal load), requests evenly spaced and dealt round-robin
   over the same number of connections, as wrk2 does.  A request's latency
   runs from its *scheduled* send time, not from when it was actually sent: a
   stall of the server (or of a connection still waiting for its previous
   answer) then shows as latency of every request that should have gone out
   meanwhile, instead of silently thinning the schedule (coordinated
   omission).  ``p50_ms`` / ``p99_ms`` are from this phase;
   ``latency_achieved_rps`` says whether the schedule was kept, and
   ``latency_send_lag_p99_ms`` how late requests left (the client's own
   wake-up delay on a busy machine is part of it).

CPU per request
    On a shared 2-core machine the rates and latencies move with whatever else
    runs; the CPU time the server process spends per request does not, much.
    Each phase reads utime + stime of the API process (and of its children) and
    of the PostgreSQL backends serving the bench database from ``/proc``
    before and after, and reports microseconds per request
    (``server_cpu_us_per_request``, ``trivial_server_cpu_us_per_request``,
    ``db_cpu_us_per_request``), and the load generator's own
    (``client_cpu_us_per_request``, the share of the 2 cores the server
    cannot have).  These are the figures to compare A/B; the server and
    database ones are absent where ``/proc`` is not (not Linux, or a remote
    database).

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

import asyncpg
import yaml

from cloud.auth import tokens
from cloud.auth.repository import ApiKeyRecord, add_api_key
from cloud.gtin import check_digit
from tagledger.app.benchmarks.args import add_database_url, bench_parser
from tagledger.clock import SystemClock
from tagledger.ledger import open_ledger
from tagledger.ledger.migrate import migrate
from tagledger.ledger.scratch import scratch_database

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
    cmd = [sys.executable, "-m", "tagledger.app.cli", "api", "--database-url", url, "--site", str(site)]
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
        self.send_lags: list[float] = []  # open loop only: actual send time - scheduled time
        self.statuses: Counter[int] = Counter()
        self.missed = 0  # open loop only: scheduled requests never sent before the hard deadline
        self.elapsed = 0.0
        self.cpu: dict[str, float] = {}  # CPU seconds spent during the phase, by process group


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    """Send one request, read its whole answer; returns the status code."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    await reader.readexactly(length)
    return int(head[9:12])


async def _connection(
    host: str, port: int, requests: list[bytes], seconds: float, budget: list[int], phase: Phase | None
) -> None:
    # Closed loop: the next request leaves when the previous answer is in.
    reader, writer = await asyncio.open_connection(host, port)
    rng = random.Random()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    try:
        while loop.time() < deadline and budget[0] > 0:
            budget[0] -= 1
            t0 = time.perf_counter()
            status = await _exchange(reader, writer, requests[rng.randrange(len(requests))])
            if phase is not None:
                phase.latencies.append(time.perf_counter() - t0)
                phase.statuses[status] += 1
    finally:
        writer.close()
        await writer.wait_closed()


def open_loop_schedule(*, rate: float, seconds: float, connections: int, start: float) -> list[list[float]]:
    """Send times of an open-loop run: evenly spaced at ``rate``, dealt round-robin over the connections.

    Request ``i`` is due at ``start + i / rate``; connection ``c`` gets requests
    ``c, c + connections, ...``, so each connection has a fixed schedule of its own and
    together they keep the overall one.
    """
    if rate <= 0 or connections < 1:
        raise ValueError("rate must be > 0 and connections >= 1")
    total = max(1, int(rate * seconds))
    return [[start + i / rate for i in range(c, total, connections)] for c in range(connections)]


async def _scheduled_connection(
    host: str,
    port: int,
    requests: list[bytes],
    due: list[float],
    *,
    record_from: float,
    hard_deadline: float,
    phase: Phase,
) -> None:
    # Open loop: each request leaves at its due time, or as soon as the connection is free
    # if it is already late; its latency counts from the due time (no coordinated omission).
    reader, writer = await asyncio.open_connection(host, port)
    rng = random.Random()
    try:
        for n, at in enumerate(due):
            now = time.perf_counter()
            if now > hard_deadline:
                phase.missed += sum(1 for t in due[n:] if t >= record_from)
                break
            if at > now:
                await asyncio.sleep(at - now)
            sent = time.perf_counter()
            status = await _exchange(reader, writer, requests[rng.randrange(len(requests))])
            if at >= record_from:
                phase.latencies.append(time.perf_counter() - at)
                phase.send_lags.append(max(0.0, sent - at))
                phase.statuses[status] += 1
    finally:
        writer.close()
        await writer.wait_closed()


class CpuMeter:
    """CPU seconds (utime + stime from ``/proc``) of the API process tree and of the bench database's backends."""

    def __init__(self, server_pid: int, admin: asyncpg.Connection[Any], database: str) -> None:
        self._server_pid = server_pid
        self._admin = admin
        self._database = database
        self._tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

    def _cpu_s(self, pid: int) -> float | None:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            return None
        # Fields after "comm)": state is field 3 of proc(5), utime 14 and stime 15.
        return (int(fields[11]) + int(fields[12])) / self._tick

    def _tree(self, pid: int) -> list[int]:
        out = [pid]
        try:
            tasks = list(Path(f"/proc/{pid}/task").iterdir())
        except OSError:
            return out
        for task in tasks:
            try:
                children = (task / "children").read_text().split()
            except OSError:
                continue
            for child in children:
                out.extend(self._tree(int(child)))
        return out

    @staticmethod
    def _is_postgres(pid: int) -> bool:
        try:  # a remote server's pids are not ours to read
            return Path(f"/proc/{pid}/comm").read_text().startswith("postgres")
        except OSError:
            return False

    async def _db_pids(self) -> list[int]:
        found = await self._admin.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1", self._database)
        return [int(row[0]) for row in found if self._is_postgres(int(row[0]))]

    async def snapshot(self) -> dict[str, dict[int, float]]:
        groups = {"server": self._tree(self._server_pid), "db": await self._db_pids()}
        return {name: {p: c for p in pids if (c := self._cpu_s(p)) is not None} for name, pids in groups.items()}

    @staticmethod
    def spent(before: dict[str, dict[int, float]], after: dict[str, dict[int, float]]) -> dict[str, float]:
        # A process that appeared during the phase (a new pool connection) counts from 0.
        return {
            name: sum(c - before.get(name, {}).get(p, 0.0) for p, c in pids.items())
            for name, pids in after.items()
            if pids
        }


async def drive(
    host: str,
    port: int,
    requests: list[bytes],
    *,
    connections: int,
    seconds: float,
    max_requests: int,
    warmup: float,
    meter: CpuMeter | None = None,
) -> Phase:
    """Closed loop at saturation."""
    await asyncio.gather(*(_connection(host, port, requests, warmup, [10**9], None) for _ in range(connections)))
    phase = Phase()
    budget = [max_requests]
    before = await meter.snapshot() if meter else None
    client_before = time.process_time()
    start = time.perf_counter()
    await asyncio.gather(*(_connection(host, port, requests, seconds, budget, phase) for _ in range(connections)))
    phase.elapsed = time.perf_counter() - start
    if meter and before is not None:
        phase.cpu = CpuMeter.spent(before, await meter.snapshot())
        phase.cpu["client"] = time.process_time() - client_before
    return phase


async def drive_open_loop(
    host: str,
    port: int,
    requests: list[bytes],
    *,
    rate: float,
    connections: int,
    seconds: float,
    warmup: float,
    meter: CpuMeter | None = None,
) -> Phase:
    """Open loop at a fixed ``rate``: ``warmup`` seconds unrecorded, then ``seconds`` recorded."""
    phase = Phase()
    start = time.perf_counter() + 0.2  # time to open the connections
    record_from = start + warmup
    schedules = open_loop_schedule(rate=rate, seconds=warmup + seconds, connections=connections, start=start)
    # A server that falls far behind must not keep the bench running: what is not sent
    # by then is reported as missed.
    hard_deadline = record_from + seconds + max(5.0, seconds)
    before = await meter.snapshot() if meter else None
    await asyncio.gather(
        *(
            _scheduled_connection(
                host, port, requests, due, record_from=record_from, hard_deadline=hard_deadline, phase=phase
            )
            for due in schedules
        )
    )
    # Elapsed over the recorded part only, to its last answer: the achieved rate.
    phase.elapsed = time.perf_counter() - record_from
    if meter and before is not None:
        # Includes the warm-up's requests: per-request CPU divides by every request sent.
        spent = CpuMeter.spent(before, await meter.snapshot())
        sent = sum(len(d) for d in schedules) - phase.missed
        recorded = len(phase.latencies)
        phase.cpu = {k: v * recorded / sent for k, v in spent.items()} if sent else {}
    return phase


def _quantile_ms(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000, 3)


def summary(phase: Phase) -> dict[str, Any]:
    n = len(phase.latencies)
    out: dict[str, Any] = {
        "requests": n,
        "rps": round(n / phase.elapsed, 1) if phase.elapsed else 0.0,
        "p50_ms": _quantile_ms(phase.latencies, 0.50),
        "p99_ms": _quantile_ms(phase.latencies, 0.99),
        "p999_ms": _quantile_ms(phase.latencies, 0.999),
        "mean_ms": round(statistics.fmean(phase.latencies) * 1000, 3) if n else 0.0,
        "non_200": sum(c for s, c in phase.statuses.items() if s != 200),
        "missed": phase.missed,
        "send_lag_p99_ms": _quantile_ms(phase.send_lags, 0.99),
    }
    for group, cpu_s in phase.cpu.items():
        out[f"{group}_cpu_us_per_request"] = round(cpu_s * 1e6 / n, 1) if n else 0.0
    return out


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    admin_url = args.database_url
    name = f"tagledger_bench_api_{uuid.uuid4().hex[:8]}"
    async with scratch_database(admin_url, name) as url:
        return await _bench(args, admin_url, url, name)


async def _bench(args: argparse.Namespace, admin_url: str, url: str, name: str) -> dict[str, Any]:
    admin = await asyncpg.connect(admin_url)  # also reads the bench database's backends' CPU
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
            await add_api_key(
                ledger,
                ApiKeyRecord(
                    id=key_id,
                    secret_sha256=tokens.digest(token),
                    name="bench",
                    scopes=("availability:read",),
                    stores=None,
                    created_us=SystemClock().now_us(),
                ),
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
            meter = CpuMeter(proc.pid, admin, name)
            availability = summary(await drive(host, port, lookups, **opts, meter=meter))
            healthz = summary(await drive(host, port, trivial, **opts, meter=meter))
            latency_rps = args.latency_rps or round(args.latency_load * availability["rps"], 1)
            latency = (
                summary(
                    await drive_open_loop(
                        host,
                        port,
                        lookups,
                        rate=latency_rps,
                        connections=args.connections,
                        seconds=args.seconds,
                        warmup=args.warmup_s,
                        meter=meter,
                    )
                )
                if latency_rps > 0
                else None
            )
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        await admin.close()

    result: dict[str, Any] = {
        "items": args.items,
        "stores": args.stores,
        "gtins": args.gtins,
        "connections": args.connections,
        "seconds": args.seconds,
        "load_s": round(load_s, 1),
        # Saturation, closed loop: the maximum rates.
        "requests": availability["requests"],
        "rps": availability["rps"],
        "saturation_p50_ms": availability["p50_ms"],
        "saturation_p99_ms": availability["p99_ms"],
        "saturation_mean_ms": availability["mean_ms"],
        "non_200": availability["non_200"],
        "trivial_rps": healthz["rps"],
        "trivial_saturation_p50_ms": healthz["p50_ms"],
        "trivial_saturation_p99_ms": healthz["p99_ms"],
        "ratio_to_trivial": round(availability["rps"] / healthz["rps"], 3) if healthz["rps"] else 0.0,
        # Latency at a stated load, open loop from the scheduled send times.
        "latency_load": args.latency_load if args.latency_rps is None else None,
        "latency_rps": latency_rps,
    }
    if latency is not None:
        result.update(
            {
                "latency_achieved_rps": latency["rps"],
                "latency_requests": latency["requests"],
                "latency_missed": latency["missed"],
                "p50_ms": latency["p50_ms"],
                "p99_ms": latency["p99_ms"],
                "p999_ms": latency["p999_ms"],
                "latency_send_lag_p99_ms": latency["send_lag_p99_ms"],
                "latency_non_200": latency["non_200"],
            }
        )
    # CPU per request (see the module docstring): the figures to compare A/B on a busy machine.
    for key, phase in (("", availability), ("trivial_", healthz), ("latency_", latency or {})):
        for group in ("server", "db", "client"):
            if f"{group}_cpu_us_per_request" in phase:
                result[f"{key}{group}_cpu_us_per_request"] = phase[f"{group}_cpu_us_per_request"]
    result["cpus"] = os.cpu_count()
    return result


def _parse(argv: list[str]) -> argparse.Namespace:
    p = bench_parser(
        "api",
        "Availability look-ups over HTTP against a PostgreSQL ledger of 1M+ items, next to /healthz.",
        json_help="Print one JSON object as the last line.",
    )
    p.add_argument("--items", type=int, default=1_000_000, help="Items to load (COPY).")
    p.add_argument("--stores", type=int, default=100, help="Stores the items are spread over.")
    p.add_argument("--gtins", type=int, default=2_000, help="GTINs the items are spread over.")
    p.add_argument("--connections", type=int, default=16, help="Concurrent keep-alive connections.")
    p.add_argument("--seconds", type=float, default=10.0, help="Measured time per phase.")
    p.add_argument("--warmup-s", type=float, default=1.0, help="Unmeasured time before each phase.")
    p.add_argument(
        "--latency-load",
        type=float,
        default=0.5,
        help="Open-loop rate of the latency phase, as a fraction of the measured maximum rate (0: skip it).",
    )
    p.add_argument(
        "--latency-rps",
        type=float,
        default=None,
        help="Open-loop rate of the latency phase in requests/s, instead of --latency-load (A/B runs at equal load).",
    )
    p.add_argument("--max-requests", type=int, default=500_000, help="Cap on requests per phase.")
    p.add_argument("--seed", type=int, default=1)
    add_database_url(p, "--admin-url")
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    args = _parse(argv)
    result = asyncio.run(bench(args))
    for key, value in result.items():
        print(f"{key:>18}  {value}")
    if args.json:
        print(json.dumps(result, sort_keys=True))
    return 0
