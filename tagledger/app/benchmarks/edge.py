"""``tagledger bench edge``: one real edge agent against the LLRP simulator, measured from outside.

What runs
    * the store simulator (:mod:`tagledger.app.sim`) with ONE reader of four
      sales-floor antennas, sized to deliver ``--reads-per-s``; with
      ``--reports per-tag`` it sends one tag per RO_ACCESS_REPORT, as some
      readers do with their defaults (``batched``, the default: one report per
      report timeout, as the profile asks);
    * the edge agent as a separate process (``python -m tagledger.app.cli edge``,
      configured with ``TAGLEDGER_EDGE_*`` variables), so its CPU and memory
      are its own: sllurp over TCP to the simulator, aggregation, the SQLite
      spool, MQTT;
    * an MQTT broker: Mosquitto (or whatever ``--mqtt-url`` /
      ``TAGLEDGER_TEST_MQTT_URL`` / 127.0.0.1:1883 answers), else the embedded
      amqtt broker of the demo;
    * a TCP forwarder between the agent and the broker, to take the broker
      away without touching the agent;
    * an acker that does what the gateway does after its ledger commit: it
      publishes an :class:`~tagledger.wire.Ack` for every batch it receives.

Phases
    warm-up (not measured) → online (``--seconds`` minus the offline part):
    CPU, RSS, reads, batches and bytes as the acker receives them → offline
    (``--offline-s``): the forwarder is stopped, batches stay in the spool;
    its growth over the phase, extrapolated to an hour, is
    ``spool_bytes_per_hour`` → the link comes back and the backlog drains
    (``drain_s``) → SIGTERM.

Figures (last stdout line with ``--json``)
    ``reads_per_s``: reads (sum of the reader's TagSeenCount) that reached the
    agent and left it in batches, per second of the online phase;
    ``cpu_percent``: the agent process's user + system CPU over the online
    phase, in percent of one core; ``rss_mb``: its peak resident memory over
    the whole run; ``messages_per_s``: read batches published per second;
    ``aggregation_ratio``: reads per observation; ``spool_bytes_per_hour``:
    on-disk growth of the spool (database + WAL) per offline hour, and
    ``spool_payload_bytes_per_hour`` the payload bytes the spool's size bound
    counts.  A benchmark, not a test: it asserts nothing about time.

    tagledger bench edge --reads-per-s 1000 --seconds 60 --json
    tagledger bench edge --reads-per-s 1000 --seconds 60 --reports per-tag --json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiomqtt
import psutil
import yaml

from tagledger.app.benchmarks.args import bench_parser
from tagledger.app.faults import TcpProxy
from tagledger.app.sim.endpoint import Faults, LlrpEndpoint
from tagledger.app.sim.llrp_codec import TagEntry
from tagledger.app.sim.runner import SimSettings, Simulation
from tagledger.mqtt import BrokerAddress
from tagledger.wire import Ack, ReadBatch, Topics, WireError, decode_as, encode

STORE, READER = "bench-01", "bench-01-r1"
TOPIC_ROOT = "tagledger-bench"  # + a suffix per run, so that runs sharing a broker never mix


def bench_site(items_zone: str = "floor") -> dict[str, Any]:
    """One store, one reader with four antennas on the sales floor, a fitting room next door.

    No backroom: the simulator then places every item on the floor, so
    ``--items`` is the tag population in the reader's view.  The fitting room
    (no antenna of its own) is there for cross-reads to have a neighbour.
    """
    return {
        "version": 1,
        "stores": [
            {
                "id": STORE,
                "name": "Benchmark store",
                "latitude": 48.86,
                "longitude": 2.34,
                "timezone": "UTC",
                "zones": [
                    {"id": items_zone, "name": "Sales floor", "role": "sales_floor"},
                    {"id": "fitting", "name": "Fitting rooms", "role": "fitting_room"},
                ],
                "readers": [
                    {
                        "id": READER,
                        "host": "127.0.0.1",
                        "port": 5084,
                        "model": "impinj_r700",
                        "profile": "sales_floor",
                        "antennas": [{"port": p, "zone": items_zone} for p in (1, 2, 3, 4)],
                    }
                ],
            }
        ],
    }


# --------------------------------------------------------------------------- broker and link


def _answers(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 1883), timeout=1):
            return True
    except OSError:
        return False


@contextlib.asynccontextmanager
async def broker(url: str | None) -> AsyncIterator[tuple[str, str]]:
    """(url, what) of a broker: the given one, else a running Mosquitto, else the embedded one."""
    if url:
        yield url, "given"
        return
    candidate = os.environ.get("TAGLEDGER_TEST_MQTT_URL", "mqtt://127.0.0.1:1883")
    if _answers(candidate):
        yield candidate, "running broker"
        return
    from tagledger.app.demo import embedded_broker  # noqa: PLC0415 - only when no broker answers

    async with embedded_broker() as embedded:
        yield embedded, "embedded amqtt"


# --------------------------------------------------------------------------- the gateway's side


@dataclass
class Acker:
    """Receives read batches and acks each one, as the gateway does after its commit."""

    url: str
    topics: Topics
    client_id: str
    received: list[tuple[float, ReadBatch, int]] = field(default_factory=list)  # (monotonic, batch, bytes)
    seen: set[tuple[str, int]] = field(default_factory=set)
    duplicates: int = 0

    async def run(self) -> None:
        address = BrokerAddress.parse(self.url)
        reads = self.topics.reads(STORE, READER)
        ack_topic = self.topics.ack(STORE, READER)
        async with aiomqtt.Client(**address.client_kwargs(), identifier=self.client_id) as client:
            await client.subscribe(reads, qos=1)
            async for message in client.messages:
                payload = bytes(message.payload)
                try:
                    batch = decode_as(ReadBatch, payload)
                except WireError:
                    continue
                key = (batch.boot_id, batch.seq)
                if key in self.seen:
                    self.duplicates += 1
                else:
                    self.seen.add(key)
                    self.received.append((time.monotonic(), batch, len(payload)))
                ack = Ack(reader_id=batch.reader_id, boot_id=batch.boot_id, seq=batch.seq, result="committed")
                await client.publish(ack_topic, encode(ack), qos=1)

    def between(self, t0: float, t1: float) -> list[tuple[ReadBatch, int]]:
        return [(b, n) for t, b, n in self.received if t0 <= t < t1]


# --------------------------------------------------------------------------- the agent, observed


def spool_size(path: Path) -> tuple[int, int, int]:
    """(database bytes in use, payload bytes, batches) of a spool file, read beside the agent.

    Bytes in use are the pages the database holds, free pages excepted, as of
    its last commit (WAL included): what the spool takes on disk once
    checkpointed, SQLite's own overhead counted.  The file sizes themselves
    move in steps (the WAL is reused, pages freed by acks are reused), which
    over a short offline phase says little about an hour.
    """
    if not path.exists():
        return 0, 0, 0
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        payload, batches = conn.execute("SELECT coalesce(sum(size), 0), count(*) FROM batch").fetchone()
        pages = conn.execute("PRAGMA page_count").fetchone()[0] - conn.execute("PRAGMA freelist_count").fetchone()[0]
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    finally:
        conn.close()
    return int(pages * page_size), int(payload), int(batches)


def calibrate(site_file: Path, items: int, seed: int, target: float) -> float:
    """The simulator capacity that makes the reader deliver ``target`` reads/s past the RSSI floor.

    The RF model's capacity is what the reader *spends*; what arrives differs
    (a report entry folds 1 + Poisson(λ) reads, hard tags answer rarely, weak
    cross-reads fall under the profile's RSSI floor).  A few fixed-point steps
    on the model itself, without TCP, on simulated time, find the setting.
    """
    from edge.profile import load_profile  # noqa: PLC0415 - the bench needs the edge extra anyway

    floor = load_profile("sales_floor", "impinj_r700").rssi_floor_dbm
    capacity = target
    for _ in range(4):
        sim = Simulation(SimSettings(site=site_file, seed=seed, items=items, events_per_minute=0, reads_per_s=capacity))
        start, seconds = time.time_ns() // 1000, 30
        got = sum(
            e.count
            for s in range(seconds)
            for e in sim.rf.inventory(READER, [1, 2, 3, 4], start + s * 1_000_000, start + (s + 1) * 1_000_000)
            if e.peak_rssi >= floor
        )
        sim.model.close()
        delivered = got / seconds
        if delivered <= 0:
            break
        capacity *= target / delivered
    return capacity


class SentReads:
    """Reads the simulated reader sends to the agent (entries, and reads: the sum of TagSeenCount).

    Counted where the simulator draws them, above the profile's RSSI floor
    (the agent drops weaker reads on arrival, as configured), by wrapping the
    RF model's ``inventory`` on the instance the reader endpoint calls.
    """

    def __init__(self, sim: Simulation) -> None:
        from edge.profile import load_profile  # noqa: PLC0415 - the bench needs the edge extra anyway

        self.floor = load_profile("sales_floor", "impinj_r700").rssi_floor_dbm
        self.entries = 0
        self.reads = 0
        draw = sim.rf.inventory

        def counted(reader_id: str, antennas: Sequence[int], since_us: int, until_us: int) -> list[TagEntry]:
            out = draw(reader_id, antennas, since_us, until_us)
            kept = [e for e in out if e.peak_rssi >= self.floor]
            self.entries += len(kept)
            self.reads += sum(e.count for e in kept)
            return out

        sim.rf.inventory = counted  # type: ignore[method-assign]


@dataclass
class Sampler:
    """CPU time and peak RSS of one process, sampled once a second."""

    process: psutil.Process
    peak_rss: int = 0
    rss: list[int] = field(default_factory=list)

    def cpu_s(self) -> float:
        t = self.process.cpu_times()
        return float(t.user + t.system)

    async def run(self) -> None:
        while True:
            with contextlib.suppress(psutil.Error):
                rss = int(self.process.memory_info().rss)
                self.rss.append(rss)
                self.peak_rss = max(self.peak_rss, rss)
            await asyncio.sleep(1.0)


def _say(message: str) -> None:
    print(f"tagledger bench edge: {message}", file=sys.stderr, flush=True)


async def _wait_for(predicate: Any, within: float, what: str, agent: asyncio.subprocess.Process) -> None:
    deadline = time.monotonic() + within
    # Polling: the state is in another process (spool file) or another task's list.
    while not predicate():
        if agent.returncode is not None:
            raise RuntimeError(f"the agent exited ({agent.returncode}) while waiting for {what}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {within:.0f} s waiting for {what}")
        await asyncio.sleep(0.1)


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    offline_s = args.offline_s if args.offline_s is not None else min(20.0, args.seconds / 3)
    online_s = args.seconds - offline_s
    if online_s <= 0:
        raise SystemExit("--seconds must be longer than --offline-s")
    with tempfile.TemporaryDirectory(prefix="tagledger-bench-edge-") as tmp:
        work = Path(tmp)
        sim_site = work / "sim-site.yaml"
        sim_site.write_text(yaml.safe_dump(bench_site(), sort_keys=False))
        async with contextlib.AsyncExitStack() as stack:
            url, which = await stack.enter_async_context(broker(args.mqtt_url))
            _say(f"broker {url} ({which})")
            sim = await stack.enter_async_context(
                Simulation(
                    SimSettings(
                        site=sim_site,
                        seed=args.seed,
                        items=args.items,
                        events_per_minute=0,
                        reads_per_s=calibrate(sim_site, args.items, args.seed, args.reads_per_s),
                        any_port=True,
                        listen_host="127.0.0.1",
                    )
                )
            )
            sent = SentReads(sim)
            endpoint = sim.endpoints[READER]
            endpoint.faults = Faults(per_tag_reports=args.reports == "per-tag")
            site = bench_site()
            site["stores"][0]["readers"][0]["port"] = sim.address(READER)[1]
            agent_site = work / "site.yaml"
            agent_site.write_text(yaml.safe_dump(site, sort_keys=False))

            address = BrokerAddress.parse(url)
            link = TcpProxy(address.host, address.port)  # its stop() is the broker outage
            await link.start()
            stack.push_async_callback(link.stop)

            run_id = uuid.uuid4().hex[:8]
            topic_root = f"{TOPIC_ROOT}-{run_id}"
            topics = Topics(topic_root)
            acker = Acker(url, topics, client_id=f"tagledger-bench-acker-{run_id}")
            tasks: list[asyncio.Task[None]] = [asyncio.ensure_future(acker.run())]

            async def _stop_tasks() -> None:
                for t in tasks:
                    t.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

            stack.push_async_callback(_stop_tasks)
            await asyncio.sleep(0.3)  # the acker subscribes before the agent publishes

            spool = work / "spool.sqlite"
            env = {
                **os.environ,
                "TAGLEDGER_EDGE_SITE": str(agent_site),
                "TAGLEDGER_EDGE_READER_ID": READER,
                "TAGLEDGER_EDGE_MQTT_URL": f"mqtt://127.0.0.1:{link.port}",
                "TAGLEDGER_EDGE_TOPIC_ROOT": topic_root,
                "TAGLEDGER_EDGE_CLIENT_ID": f"tagledger-bench-agent-{run_id}",
                "TAGLEDGER_EDGE_SPOOL_PATH": str(spool),
                "TAGLEDGER_EDGE_HEARTBEAT_INTERVAL_S": "10",
                "TAGLEDGER_EDGE_RECONNECT_MAX_S": "2",
            }
            if args.window_ms:
                env["TAGLEDGER_EDGE_WINDOW_MS"] = str(args.window_ms)
            log_file = (work / "agent.log").open("wb")
            stack.callback(log_file.close)
            agent = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "tagledger.app.cli",
                "edge",
                "--log-level",
                "warning",
                env=env,
                stdout=log_file,
                stderr=log_file,
            )

            async def _stop_agent() -> None:
                if agent.returncode is None:
                    agent.send_signal(signal.SIGTERM)
                    try:
                        await asyncio.wait_for(agent.wait(), 15)
                    except TimeoutError:
                        agent.kill()
                        await agent.wait()

            stack.push_async_callback(_stop_agent)
            sampler = Sampler(psutil.Process(agent.pid))
            tasks.append(asyncio.ensure_future(sampler.run()))
            try:
                return await _measure(
                    args, acker, link, agent, sampler, spool, sent, endpoint, online_s, offline_s, which
                )
            except BaseException:
                log_file.flush()
                tail = (work / "agent.log").read_text(errors="replace")[-3000:]
                _say(f"agent log (tail):\n{tail}")
                raise


async def _measure(
    args: argparse.Namespace,
    acker: Acker,
    link: TcpProxy,
    agent: asyncio.subprocess.Process,
    sampler: Sampler,
    spool: Path,
    sent: SentReads,
    endpoint: LlrpEndpoint,
    online_s: float,
    offline_s: float,
    which: str,
) -> dict[str, Any]:
    _say("waiting for the agent's first batch")
    await _wait_for(lambda: acker.received, 60, "the first batch", agent)
    _say(f"warming up {args.warmup_s:.0f} s")
    await asyncio.sleep(args.warmup_s)

    # Online ----------------------------------------------------------------
    _say(f"online {online_s:.0f} s")
    entries0, sent0, reports0 = sent.entries, sent.reads, endpoint.stats.reports_sent
    cpu0, t0 = sampler.cpu_s(), time.monotonic()
    await asyncio.sleep(online_s)
    cpu1, t1 = sampler.cpu_s(), time.monotonic()
    entries1, sent1, reports1 = sent.entries, sent.reads, endpoint.stats.reports_sent
    online = acker.between(t0, t1)
    wall = t1 - t0
    # Batches arrive a window after their reads, so the reads per observation
    # come from the batches and the rate from the reader side, timed exactly.
    reads = sum(o.count for b, _ in online for o in b.observations)
    observations = sum(len(b.observations) for b, _ in online)
    wire_bytes = sum(n for _, n in online)

    # Offline ---------------------------------------------------------------
    _say(f"broker away {offline_s:.0f} s")
    await link.stop()
    await asyncio.sleep(2.0)  # let the batch in flight at the cut land in the spool
    disk0, payload0, _ = spool_size(spool)
    cpu2, t2 = sampler.cpu_s(), time.monotonic()
    await asyncio.sleep(max(offline_s - 2.0, 1.0))
    cpu3, t3 = sampler.cpu_s(), time.monotonic()
    disk1, payload1, depth = spool_size(spool)
    offline_wall = t3 - t2

    # Back online: the backlog drains ----------------------------------------
    _say(f"broker back, draining {depth} spooled batches")
    await link.start()
    t4 = time.monotonic()
    await _wait_for(lambda: spool_size(spool)[2] == 0, 120, "the spool to drain", agent)
    drain_s = time.monotonic() - t4

    per_hour = 3600 / offline_wall
    rss = sorted(sampler.rss)
    return {
        "reads_per_s": round((sent1 - sent0) / wall, 1),
        "batch_reads_per_s": round(reads / wall, 1),
        "tag_entries_per_s": round((entries1 - entries0) / wall, 1),
        "reports_per_s": round((reports1 - reports0) / wall, 1),
        "reports": args.reports,
        "cpu_percent": round(100 * (cpu1 - cpu0) / wall, 2),
        "cpu_percent_offline": round(100 * (cpu3 - cpu2) / offline_wall, 2),
        "rss_mb": round(sampler.peak_rss / 2**20, 1),
        "rss_median_mb": round(rss[len(rss) // 2] / 2**20, 1) if rss else 0.0,
        "messages_per_s": round(len(online) / wall, 2),
        "observations_per_s": round(observations / wall, 1),
        "wire_bytes_per_s": round(wire_bytes / wall),
        "aggregation_ratio": round(reads / observations, 2) if observations else 0.0,
        "spool_bytes_per_hour": round((disk1 - disk0) * per_hour),
        "spool_payload_bytes_per_hour": round((payload1 - payload0) * per_hour),
        "drain_s": round(drain_s, 2),
        "duplicates": acker.duplicates,
        "batches": len(acker.received),
        "online_s": round(wall, 1),
        "offline_s": round(offline_wall, 1),
        "items": args.items,
        "target_reads_per_s": args.reads_per_s,
        "window_ms": args.window_ms,
        "broker": which,
    }


def _parse(argv: list[str]) -> argparse.Namespace:
    p = bench_parser(
        "edge",
        "One edge agent (own process) reading the LLRP simulator: CPU, RSS, messages, spool growth.",
        json_help="Print one JSON object as the last line.",
    )
    p.add_argument("--reads-per-s", type=float, default=1000.0, help="Read rate the simulated reader delivers.")
    p.add_argument("--seconds", type=float, default=60.0, help="Measured time: online plus offline.")
    p.add_argument("--offline-s", type=float, default=None, help="Broker away this long (default: a third, ≤ 20 s).")
    p.add_argument("--warmup-s", type=float, default=5.0, help="Unmeasured time after the first batch.")
    p.add_argument("--items", type=int, default=300, help="Tags in the reader's view (all on its zone).")
    p.add_argument("--window-ms", type=int, default=None, help="Aggregation window (default: the profile's).")
    p.add_argument(
        "--reports",
        choices=("batched", "per-tag"),
        default="batched",
        help="How the reader reports: as the profile asks (batched), or one tag per report (per-tag).",
    )
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--mqtt-url", default=None, help="Broker (default: Mosquitto if it answers, else embedded).")
    return p.parse_args(argv)


def main(argv: list[str]) -> int:
    args = _parse(argv)
    result = asyncio.run(bench(args))
    if args.json:
        print(json.dumps(result, sort_keys=True))
    else:
        for key, value in result.items():
            print(f"{key:>30}  {value}")
    return 0
