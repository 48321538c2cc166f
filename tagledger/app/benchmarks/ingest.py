"""``tagledger bench ingest``: observations/s from MQTT into a committed PostgreSQL ledger.

One gateway *process* (``python -m tagledger.app.cli gateway``, a subprocess, so it
has its own interpreter and core) ingests pre-encoded read batches that this
process publishes to the broker, pacing itself on the gateway's acks like an
agent does (at most ``--in-flight`` batches unacknowledged per reader).  A batch
counts when its ack arrives, i.e. after its ledger transaction committed.

Measured, in one run, on a throwaway database that is dropped afterwards:

1. ``observations_per_s``: the maximum rate (every reader sending as fast as its
   acks allow).  Most observations re-read items in their home zone (no
   transition, as on a real shelf); ``--new-share`` of them are new EPCs read
   strongly, so each batch also writes events, items and stock.
2. ``copy_rows_per_s``: a raw binary ``COPY`` of the same observation rows into
   a plain table of the same database: the reference of what the database
   alone takes in; ``ratio_to_copy`` = 1. / 2.  The median of three COPYs, each
   into a new table (``copy_rows_per_s_rounds``): a single one swung by a factor
   of two between runs.
3. ``p50_ms`` / ``p99_ms``: read -> commit (ack received) latency at
   ``--latency-load`` (10 %) of the maximum rate, batches cut at send time.
   It includes the broker's hop to the publisher: Mosquitto leaves Nagle's
   algorithm on by default, which holds each ack behind the PUBACK it just
   sent until the publisher's delayed ACK (~40 ms on Linux); with
   ``set_tcp_nodelay true`` in mosquitto.conf the same run measures ~13 ms.
4. ``observations_per_s_at_scale``: the maximum rate again after ``--scale-epcs``
   live items of other stores were bulk-loaded into the ledger with COPY.

The last line printed is one JSON object.  Nothing is asserted.

    tagledger bench ingest --json
    tagledger bench ingest --seconds 10 --scale-epcs 5000000 --json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiomqtt
import asyncpg
import yaml

from tagledger.app.benchmarks.args import add_database_url, bench_parser
from tagledger.ledger.migrate import migrate
from tagledger.ledger.scratch import scratch_database
from tagledger.wire import Ack, ReadBatch, Topics, decode_as

STORE = "bench-01"
ZONES = ("floor", "backroom")
ANTENNAS = 4
GTINS = 200


def _site(readers: int) -> dict[str, Any]:
    return {
        "version": 1,
        "stores": [
            {
                "id": STORE,
                "name": "Bench store",
                "latitude": 0,
                "longitude": 0,
                "zones": [{"id": "floor", "role": "sales_floor"}, {"id": "backroom", "role": "backroom"}],
                "readers": [
                    {
                        "id": f"r{r}",
                        "host": f"reader-{r}",
                        "antennas": [{"port": a + 1, "zone": ZONES[a % 2]} for a in range(ANTENNAS)],
                    }
                    for r in range(readers)
                ],
            }
        ],
    }


def _epc(i: int) -> str:
    # SGTIN-96, company prefix 0614141 (partition 5), item reference by i, serial i.
    return f"3074257BF7{(i % GTINS):06X}{i:08X}"[:24].ljust(24, "0")


@dataclass(frozen=True, slots=True)
class Built:
    """One read batch as the bench sends it: its rows and its JSON (a valid ``ReadBatch``)."""

    reader_id: str
    seq: int
    observations: list[tuple[str, int, int, int, int, float, float]]
    payload: bytes


class Streams:
    """Read batches per reader, in seq order, with reader time following the wall clock.

    Reader time is *now* (never behind the previous batch): with time an hour in
    the past, the gateway's silence timers rightly turned every item unobserved
    and each re-read into a ``seen_again`` transition, so the bench measured a
    storm of transitions instead of shelf stock being re-read.  Payloads are
    formatted as JSON text directly: building a pydantic model per observation
    made the bench itself the bottleneck of a 2-core machine (and blocked its
    event loop past the MQTT keepalive while pre-building long runs).
    """

    def __init__(self, readers: int, items: int, per_batch: int, new_share: float, boot: str) -> None:
        self.readers = readers
        self.items = items
        self.per_batch = per_batch
        self.new_per_batch = int(per_batch * new_share)
        self.boot = boot
        self.seq = [0] * readers
        self.cursor = [r * 7919 for r in range(readers)]
        self.next_new = 10_000_000 + 0
        self.t_us = 0
        self._epcs = [_epc(i) for i in range(items)]

    def batch(self, reader: int, now_us: int | None = None) -> Built:
        seq = self.seq[reader]
        self.seq[reader] += 1
        t = self.t_us = max(int(time.time() * 1e6) if now_us is None else now_us, self.t_us + 1_000)
        first = t - 900_000
        epcs = self._epcs
        obs: list[tuple[str, int, int, int, int, float, float]] = []
        home = self.per_batch - self.new_per_batch
        c = self.cursor[reader]
        for k in range(home):
            i = (c + k) % self.items
            antenna = 1 + (i % 2) + 2 * ((i // 2) % 2)  # zone by i % 2, same zone always
            obs.append((epcs[i], antenna, first, t, 3, -52.0, -55.0))
        self.cursor[reader] = (c + home) % self.items
        for _ in range(self.new_per_batch):
            obs.append((_epc(self.next_new), 1, first, t, 2, -35.0, -38.0))
            self.next_new += 1
        body = ",".join(
            f'{{"epc":"{e}","antenna":{a},"first_seen_us":{f},"last_seen_us":{last},"count":{n},'
            f'"peak_rssi":{p!r},"mean_rssi":{m!r}}}'
            for e, a, f, last, n, p, m in obs
        )
        payload = (
            f'{{"v":1,"kind":"reads","store_id":"{STORE}","reader_id":"r{reader}","boot_id":"{self.boot}",'
            f'"seq":{seq},"sent_at_us":{t},"clock_offset_us":0,"observations":[{body}],"gaps":[]}}'
        ).encode()
        return Built(f"r{reader}", seq, obs, payload)


class Publisher:
    def __init__(self, client: aiomqtt.Client, topics: Topics, readers: int, in_flight: int) -> None:
        self.client = client
        self.topics = topics
        self.waiting: dict[tuple[str, int], asyncio.Future[float]] = {}
        self.room = [asyncio.Semaphore(in_flight) for _ in range(readers)]

    async def pump_acks(self) -> None:
        async for m in self.client.messages:
            ack = decode_as(Ack, m.payload if isinstance(m.payload, bytes) else b"")
            if ack.result == "resend":  # a request, not an ack: batches go out in order here, none is lost
                continue
            fut = self.waiting.pop((ack.reader_id, ack.seq), None)
            if fut is not None and not fut.done():
                fut.set_result(time.perf_counter())

    async def send(self, reader: int, seq: int, payload: bytes) -> asyncio.Future[float]:
        await self.room[reader].acquire()
        fut: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        fut.add_done_callback(lambda _f: self.room[reader].release())
        self.waiting[(f"r{reader}", seq)] = fut
        await self.client.publish(self.topics.reads(STORE, f"r{reader}"), payload, qos=1)
        return fut


def _cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of a process so far (Linux ``/proc``; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _max_rate(
    pub: Publisher, streams: Streams, seconds: float, prebuilt: int, pid: int | None = None
) -> tuple[float, int, float | None]:
    """Send as fast as acks allow for ``seconds``: observations committed per second, how many,
    and the gateway process's CPU µs per committed observation (``pid``; None: not measured).

    CPU time per observation is the figure to compare across code changes on a
    shared machine: the rate depends on what else runs, the CPU cost hardly.
    """
    cpu_before = _cpu_s(pid) if pid is not None else None
    payloads: list[list[tuple[int, bytes, int]]] = [[] for _ in range(streams.readers)]
    for _ in range(prebuilt):
        for r in range(streams.readers):
            b = streams.batch(r)
            payloads[r].append((b.seq, b.payload, len(b.observations)))
    done = 0
    futures: list[asyncio.Future[float]] = []
    started = time.perf_counter()
    deadline = started + seconds

    async def reader(r: int) -> None:
        nonlocal done
        for seq, payload, n in payloads[r]:
            if time.perf_counter() > deadline:
                # Like an agent, never skip a seq: the next run goes on from the
                # first batch not sent (the gateway would hold its successors for
                # the missing ones, see gateway.reorder).
                streams.seq[r] = seq
                break
            fut = await pub.send(r, seq, payload)
            fut.add_done_callback(functools.partial(_count, n))
            futures.append(fut)

    def _count(n: int, _f: asyncio.Future[float]) -> None:
        nonlocal done
        done += n

    await asyncio.gather(*(reader(r) for r in range(streams.readers)))
    await asyncio.wait_for(asyncio.gather(*futures), 120)
    elapsed = time.perf_counter() - started
    cpu_after = _cpu_s(pid) if pid is not None else None
    cpu_us = None
    if cpu_before is not None and cpu_after is not None and done:
        cpu_us = (cpu_after - cpu_before) * 1e6 / done
    return done / elapsed, done, cpu_us


def _record(latencies: list[float], sent: float, fut: asyncio.Future[float]) -> None:
    latencies.append((fut.result() - sent) * 1000)


async def _latency(pub: Publisher, streams: Streams, rate: float, seconds: float) -> list[float]:
    """Batches cut at send time at ``rate`` observations/s; read -> ack latencies in ms."""
    interval = streams.per_batch / rate
    latencies: list[float] = []
    pending = []
    start = time.perf_counter()
    k = 0
    while time.perf_counter() - start < seconds:
        r = k % streams.readers
        b = streams.batch(r, now_us=int(time.time() * 1e6))
        sent = time.perf_counter()
        fut = await pub.send(r, b.seq, b.payload)
        fut.add_done_callback(functools.partial(_record, latencies, sent))
        pending.append(fut)
        k += 1
        await asyncio.sleep(max(0.0, start + k * interval - time.perf_counter()))
    await asyncio.wait_for(asyncio.gather(*pending), 60)
    return latencies


#: COPY rounds of the reference; its figure is their median.
COPY_ROUNDS = 3


async def _copy_rate(conn: asyncpg.Connection[Any], streams: Streams, rows: int) -> list[float]:
    """Rows/s of ``COPY_ROUNDS`` binary COPYs of ``rows`` observation rows, each into a new plain table.

    Several rounds, because one COPY right after the gateway's run measured anywhere
    from 1.2M to 2.2M rows/s on the same machine (the database still writing back and
    vacuuming what the run left): the median of three is the steadier reference.
    """
    records: list[tuple[Any, ...]] = []
    # These batches are copied, never sent: the readers' next runs go on from
    # the same seqs, without a hole the gateway would wait on (gateway.reorder).
    seqs = list(streams.seq)
    r = 0
    while len(records) < rows:
        b = streams.batch(r % streams.readers)
        r += 1
        for epc, antenna, first, last, count, peak, mean in b.observations:
            records.append((epc, b.reader_id, antenna, first, last, count, peak, mean))
    streams.seq[:] = seqs
    rates = []
    for _ in range(COPY_ROUNDS):
        await conn.execute(
            "DROP TABLE IF EXISTS bench_copy; CREATE TABLE bench_copy (epc text, reader_id text, antenna int4,"
            " first_seen int8, last_seen int8, count int4, peak_rssi float8, mean_rssi float8)"
        )
        started = time.perf_counter()
        await conn.copy_records_to_table("bench_copy", records=records)
        rates.append(len(records) / (time.perf_counter() - started))
    await conn.execute("DROP TABLE bench_copy")
    return rates


def _say(message: str) -> None:
    """Progress on stderr: the run takes minutes, and stdout ends with the JSON line."""
    print(f"tagledger bench ingest: {message}", file=sys.stderr, flush=True)


async def _bulk_items(conn: asyncpg.Connection[Any], n: int, progress_every: int = 500_000) -> float:
    """``n`` live items of other stores, loaded with COPY (35,000 per store)."""
    started = time.perf_counter()

    def rows() -> Iterator[tuple[Any, ...]]:
        import datetime as dt  # noqa: PLC0415

        now = dt.datetime.now(dt.UTC)
        for i in range(n):
            if i and i % progress_every == 0:
                rate = i / (time.perf_counter() - started)
                _say(f"loaded {i:,} of {n:,} items ({rate:,.0f}/s, about {(n - i) / rate:.0f} s to go)")
            yield (f"E{i:023X}", f"other-{i // 35_000:05d}", f"0{614141000000 + i % 5000:013d}", str(i),
                   "sgtin-96", "present", "floor", now, 0.9, now)  # fmt: skip

    await conn.copy_records_to_table(
        "items",
        records=rows(),
        columns=["epc", "store_id", "gtin", "serial", "scheme", "state", "zone", "since", "confidence", "updated_at"],
    )
    _say(f"loaded {n:,} items; ANALYZE")
    await conn.execute("ANALYZE items")
    return time.perf_counter() - started


async def _wait_ready(proc: subprocess.Popen[bytes], log_path: Path, limit_s: float = 60) -> None:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        text = await asyncio.to_thread(log_path.read_text)
        if proc.poll() is not None:
            raise RuntimeError(f"gateway exited with {proc.returncode}: {text[-2000:]}")
        if "gateway subscribed" in text:
            return
        await asyncio.sleep(0.2)
    raise TimeoutError("gateway did not subscribe in time")


async def _bench(args: argparse.Namespace, db_url: str, tmp: Path) -> dict[str, Any]:
    await migrate(db_url)
    site_file = tmp / "site.yaml"
    site_file.write_text(yaml.safe_dump(_site(args.readers)))
    root = f"tlbench-{uuid.uuid4().hex[:8]}"
    topics = Topics(root)
    log_path = tmp / "gateway.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "tagledger.app.cli", "gateway", "--site", str(site_file), "--database-url", db_url,
           "--mqtt-url", args.mqtt_url, "--topic-root", root, "--client-id", f"{root}-gw", "--health-port", "0",
           "--log-level", "info"]  # fmt: skip
    conn = await asyncpg.connect(db_url)
    with log_path.open("wb") as log_file:
        proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT, env=env)  # noqa: ASYNC220, S603
        try:
            _say("gateway started; waiting for it to subscribe")
            await _wait_ready(proc, log_path)
            host, port = args.mqtt_url.removeprefix("mqtt://").split(":")
            async with aiomqtt.Client(host, int(port), identifier=f"{root}-pub", max_queued_incoming_messages=0) as c:
                await c.subscribe(f"{topics.base}/{STORE}/+/ack", qos=1)
                pub = Publisher(c, topics, args.readers, args.in_flight)
                acks = asyncio.create_task(pub.pump_acks(), name="bench-acks")
                try:
                    streams = Streams(args.readers, args.items, args.batch, args.new_share, uuid.uuid4().hex[:8])
                    first = Streams(1, 10, 10, 0.1, "check").batch(0).payload
                    assert decode_as(ReadBatch, first).observations, "bench payloads must follow the contract"
                    prebuilt = max(1, int(args.expected_rate * args.seconds / args.batch / args.readers))
                    # Warm-up: every item admitted (and the gateway's caches warm).
                    warm = max(2, (args.items // max(1, args.batch - streams.new_per_batch)) * 2 // args.readers + 2)
                    _say(f"warm-up: {args.items:,} items admitted")
                    await _max_rate(pub, streams, 60, warm)
                    _say(f"maximum rate for {args.seconds:.0f} s")
                    rate, committed, cpu_us = await _max_rate(pub, streams, args.seconds, prebuilt, proc.pid)
                    _say(f"{rate:,.0f} observations/s; COPY of the same {committed:,} rows as the baseline")
                    copy_rates = await _copy_rate(conn, streams, committed)
                    copy = statistics.median(copy_rates)
                    load = rate * args.latency_load
                    _say(f"COPY {copy:,.0f} rows/s; latency at {load:,.0f}/s for {args.latency_seconds:.0f} s")
                    lat = await _latency(pub, streams, load, args.latency_seconds)
                    lat.sort()
                    if args.scale_epcs:
                        _say(f"loading {args.scale_epcs:,} live items of other stores (COPY)")
                    scale_s = await _bulk_items(conn, args.scale_epcs) if args.scale_epcs else 0.0
                    live = await conn.fetchval("SELECT count(*) FROM items WHERE state <> 'sold'")
                    _say(f"maximum rate again with {live:,} live items, {args.seconds:.0f} s")
                    rate_scale, _, cpu_us_scale = await _max_rate(pub, streams, args.seconds, prebuilt, proc.pid)
                finally:
                    acks.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await acks
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
            await conn.close()
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else None
    return {
        "observations_per_s": round(rate),
        "copy_rows_per_s": round(copy),
        "copy_rows_per_s_rounds": [round(c) for c in copy_rates],
        "ratio_to_copy": round(rate / copy, 3),
        "gateway_cpu_us_per_observation": round(cpu_us, 2) if cpu_us is not None else None,
        "p50_ms": round(statistics.median(lat), 1) if lat else None,
        "p99_ms": round(p99, 1) if p99 is not None else None,
        "latency_load_observations_per_s": round(rate * args.latency_load),
        "latency_batches": len(lat),
        "live_epcs": int(live),
        "scale_load_s": round(scale_s, 1),
        "observations_per_s_at_scale": round(rate_scale),
        "scale_ratio": round(rate_scale / rate, 3),
        "gateway_cpu_us_per_observation_at_scale": round(cpu_us_scale, 2) if cpu_us_scale is not None else None,
        "batch_observations": args.batch,
        "readers": args.readers,
        "in_flight_per_reader": args.in_flight,
        "new_share": args.new_share,
    }


def main(argv: list[str] | None = None) -> int:
    parser = bench_parser("ingest", __doc__, json_help="end with one JSON line (always printed)")
    add_database_url(parser)
    parser.add_argument(
        "--mqtt-url",
        default=os.environ.get("TAGLEDGER_TEST_MQTT_URL", "mqtt://127.0.0.1:1883"),
        help="broker (else TAGLEDGER_TEST_MQTT_URL)",
    )
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each maximum-rate run")
    parser.add_argument("--latency-seconds", type=float, default=10.0)
    parser.add_argument("--latency-load", type=float, default=0.10)
    parser.add_argument("--readers", type=int, default=4)
    parser.add_argument("--items", type=int, default=10_000, help="live items of the bench store")
    parser.add_argument("--batch", type=int, default=1_000, help="observations per batch")
    parser.add_argument("--new-share", type=float, default=0.01, help="share of observations that are new EPCs")
    parser.add_argument("--in-flight", type=int, default=16, help="unacknowledged batches per reader")
    parser.add_argument("--expected-rate", type=float, default=400_000, help="sizes the pre-encoded payloads")
    parser.add_argument("--scale-epcs", type=int, default=5_000_000, help="live items bulk-loaded (0: skip)")
    args = parser.parse_args(argv)

    async def run() -> dict[str, Any]:
        name = f"tagledger_bench_{uuid.uuid4().hex[:8]}"
        async with scratch_database(args.database_url, name) as url:
            with tempfile.TemporaryDirectory() as tmp:
                return await _bench(args, url, Path(tmp))

    report = asyncio.run(run())
    print(
        f"{report['observations_per_s']:,} observations/s committed; COPY {report['copy_rows_per_s']:,} rows/s"
        f" (ratio {report['ratio_to_copy']}); gateway {report['gateway_cpu_us_per_observation']} CPU µs/observation;"
        f" p50 {report['p50_ms']} ms, p99 {report['p99_ms']} ms at"
        f" {report['latency_load_observations_per_s']:,}/s; {report['observations_per_s_at_scale']:,}/s with"
        f" {report['live_epcs']:,} live EPCs"
    )
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
