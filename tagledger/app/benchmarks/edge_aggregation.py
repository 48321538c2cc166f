"""How much edge aggregation saves on a realistic store stream, and what it costs.

A reader with 4 antennas reading 1,000 reads/s with 300 tags in view (the
figures of a busy sales-floor reader in dense-reader mode).  Each tag has a
home antenna (strong reads) and is cross-read now and then by a neighbour
(weak reads), RSSI falls with distance plus noise.  The stream is replayed on
a manual clock, folded by :class:`edge.aggregate.Aggregator`, and each window
is stored in a real spool file exactly as the agent would.

Compared with sending every read as its own message (what readers that publish
MQTT themselves do: one event per read), it prints messages/s, bytes/s, the
aggregation ratio, the spool bytes one hour offline would take, and the CPU
cost per read.  A benchmark, not a test: it asserts nothing.

    tagledger bench edge-aggregation [--seconds 60] [--rate 1000] [--tags 300] [--window-ms 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edge.aggregate import Aggregator, Window
from edge.reads import TagRead
from edge.spool import BatchDraft, Spool
from tagledger.app.benchmarks.args import bench_parser, report
from tagledger.clock import ManualClock
from tagledger.wire import Observation, ReadBatch, encode

ANTENNAS = 4
START_US = 1_795_000_000_000_000


def stream(seconds: int, rate: int, tags: int, rng: random.Random) -> list[TagRead]:
    epcs = [f"30340{rng.randrange(16**19):019X}" for _ in range(tags)]
    home = [rng.randrange(1, ANTENNAS + 1) for _ in range(tags)]
    distance = [rng.uniform(0.5, 4.0) for _ in range(tags)]  # metres from the home antenna
    # Some tags are hard to read (behind metal, folded): they answer rarely.
    weight = [0.15 if rng.random() < 0.1 else 1.0 for _ in range(tags)]
    out: list[TagRead] = []
    step = 1_000_000 // rate
    for i in range(seconds * rate):
        t = rng.choices(range(tags), weight)[0]
        if rng.random() < 0.15:  # cross-read by a neighbouring antenna, weaker
            antenna = (home[t] % ANTENNAS) + 1
            rssi = -62 - 20 * (distance[t] / 4) + rng.gauss(0, 3)
        else:
            antenna = home[t]
            rssi = -45 - 20 * (distance[t] / 4) + rng.gauss(0, 2)
        at = START_US + i * step
        out.append(TagRead(epcs[t], antenna, at, at, 1, round(rssi * 2) / 2))
    return out


def _dir_bytes(directory: str) -> int:
    return sum(p.stat().st_size for p in Path(directory).iterdir())


def one_read_message(r: TagRead, seq: int) -> bytes:
    """The un-aggregated baseline: every read its own message on the same wire."""
    o = Observation(
        epc=r.epc,
        antenna=r.antenna,
        first_seen_us=r.first_seen_us,
        last_seen_us=r.last_seen_us,
        count=1,
        peak_rssi=r.peak_rssi,
        mean_rssi=r.peak_rssi,
    )
    batch = ReadBatch(
        store_id="paris-01",
        reader_id="paris-01-r1",
        boot_id="3f1c2a9e7b5d4c10",
        seq=seq,
        sent_at_us=r.last_seen_us,
        observations=[o],
    )
    return encode(batch)


def main(argv: Sequence[str] | None = None) -> int:
    parser = bench_parser("edge-aggregation", __doc__)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--rate", type=int, default=1000, help="reads per second")
    parser.add_argument("--tags", type=int, default=300, help="tags in view")
    parser.add_argument("--window-ms", type=int, default=1000)
    parser.add_argument("--chunk", type=int, default=100, help="reads per report from the reader")
    args = parser.parse_args(argv)
    report(asyncio.run(_measure(args)), as_json=args.json)
    return 0


async def _measure(args: argparse.Namespace) -> dict[str, Any]:

    rng = random.Random(7)
    reads = stream(args.seconds, args.rate, args.tags, rng)
    sample = reads[:: max(1, len(reads) // 2000)]
    raw_bytes_per_read = sum(len(one_read_message(r, i)) for i, r in enumerate(sample)) / len(sample)

    clock = ManualClock(START_US)
    agg = Aggregator(window_ms=args.window_ms, clock=clock)
    windows: list[Window] = []
    step_us = 1_000_000 // args.rate
    cpu0 = time.process_time()
    for i in range(0, len(reads), args.chunk):
        chunk = reads[i : i + args.chunk]
        clock.set(chunk[-1].last_seen_us + step_us)
        windows.extend(agg.add(chunk))
        w = agg.poll()
        if w is not None:
            windows.append(w)
    last = agg.flush()
    if last is not None:
        windows.append(last)
    agg_cpu = time.process_time() - cpu0

    with tempfile.TemporaryDirectory() as tmp:
        async with Spool.open(Path(tmp) / "s.sqlite", store_id="paris-01", reader_id="paris-01-r1") as spool:
            wall0, cpu0 = time.perf_counter(), time.process_time()
            for w in windows:
                await spool.append(BatchDraft(w.observations, w.gaps, sent_at_us=w.closed_us))
            spool_wall = time.perf_counter() - wall0
            spool_cpu = time.process_time() - cpu0
            spool_bytes = spool.bytes
        file_bytes = _dir_bytes(tmp)

    seconds = args.seconds
    n_reads = len(reads)
    n_obs = sum(len(w.observations) for w in windows)
    result = {
        "reads": n_reads,
        "reads_per_s": n_reads / seconds,
        "tags": args.tags,
        "antennas": ANTENNAS,
        "window_ms": args.window_ms,
        "raw_messages_per_s": n_reads / seconds,
        "raw_bytes_per_s": round(raw_bytes_per_read * n_reads / seconds),
        "messages_per_s": round(len(windows) / seconds, 2),
        "observations_per_s": round(n_obs / seconds, 1),
        "bytes_per_s": round(spool_bytes / seconds),
        "aggregation_ratio": round(n_reads / n_obs, 2),
        "message_reduction": round(n_reads / len(windows), 1),
        "byte_reduction": round(raw_bytes_per_read * n_reads / spool_bytes, 1),
        "spool_bytes_per_hour": round(spool_bytes / seconds * 3600),
        "spool_file_bytes_per_hour": round(file_bytes / seconds * 3600),
        "aggregate_cpu_us_per_read": round(agg_cpu / n_reads * 1e6, 2),
        "spool_append_ms_per_batch": round(spool_wall / len(windows) * 1e3, 2),
        "spool_cpu_us_per_read": round(spool_cpu / n_reads * 1e6, 2),
        "cpu_percent_of_one_core_at_rate": round((agg_cpu + spool_cpu) / seconds * 100, 3),
    }
    return result
