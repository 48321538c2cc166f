"""``tagledger bench ingest-cpu``: the gateway's CPU per observation on its prepare path, one process, no network.

What ``tagledger bench ingest`` reports as ``gateway_cpu_us_per_observation``
is mostly the prepare step: decoding, de-duplication, ordering, vetting and the
state machine (``Ingestor.prepare``).  This measures that step alone, with the
same batches (4 readers x 4 antennas, 10,000 live items, 1,000 observations a
batch, 1 % new EPCs, reader time advancing), so that two versions of the code
can be compared on a busy machine without the broker and PostgreSQL in the
figure: a warm-up admits every item, then ``--rounds`` rounds of 40 batches are
prepared and committed to a SQLite ledger; only ``prepare`` is timed, in
process CPU time.

``--compare DIR`` measures other checkouts of the repository in the same run
(say a ``git worktree`` or ``git archive`` of an older commit), interleaved with
this one ``--pairs`` times, each in its own interpreter: on a loaded machine the
rounds of one run swing by 20 %, so compare the minima.

    tagledger bench ingest-cpu --json
    tagledger bench ingest-cpu --compare /tmp/old-checkout --pairs 5 --json

Runs as a script too (``python ingest_cpu.py --tree DIR``), which is how a
checkout older than this module is measured: its own ``gateway`` and
``tagledger`` packages, this interpreter's dependencies.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

if __name__ == "__main__":  # script mode: nothing of the package before checkouts.use_tree
    _spec = importlib.util.spec_from_file_location("checkouts", Path(__file__).with_name("checkouts.py"))
    assert _spec is not None
    assert _spec.loader is not None
    checkouts = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(checkouts)
else:
    from tagledger.app.benchmarks import checkouts

READERS, ANTENNAS, ITEMS, PER_BATCH, NEW_SHARE, GTINS = 4, 4, 10_000, 1_000, 0.01, 200
STORE = "bench-01"
_T0 = 1_795_000_000_000_000


def _epc(i: int) -> str:
    # SGTIN-96, company prefix 0614141 (partition 5), item reference by i, serial i (as bench ingest).
    return f"3074257BF7{(i % GTINS):06X}{i:08X}"[:24].ljust(24, "0")


def _site_doc() -> dict[str, Any]:
    zones = ("floor", "backroom")
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
                        "antennas": [{"port": a + 1, "zone": zones[a % 2]} for a in range(ANTENNAS)],
                    }
                    for r in range(READERS)
                ],
            }
        ],
    }


class _Streams:
    """Read batches per reader, in seq order: mostly items re-read in their home zone, 1 % new EPCs."""

    def __init__(self) -> None:
        self.seq = [0] * READERS
        self.cursor = [r * 7919 for r in range(READERS)]
        self.next_new = 10_000_000
        self.epcs = [_epc(i) for i in range(ITEMS)]
        self.new_per_batch = int(PER_BATCH * NEW_SHARE)

    def batch(self, reader: int, t: int) -> bytes:
        seq = self.seq[reader]
        self.seq[reader] += 1
        first = t - 900_000
        obs = []
        home = PER_BATCH - self.new_per_batch
        c = self.cursor[reader]
        for k in range(home):
            i = (c + k) % ITEMS
            antenna = 1 + (i % 2) + 2 * ((i // 2) % 2)  # zone by i % 2, same zone always
            obs.append((self.epcs[i], antenna, first, t, 3, -52.0, -55.0))
        self.cursor[reader] = (c + home) % ITEMS
        for _ in range(self.new_per_batch):
            obs.append((_epc(self.next_new), 1, first, t, 2, -35.0, -38.0))
            self.next_new += 1
        body = ",".join(
            f'{{"epc":"{e}","antenna":{a},"first_seen_us":{f},"last_seen_us":{last},"count":{n},'
            f'"peak_rssi":{p!r},"mean_rssi":{m!r}}}'
            for e, a, f, last, n, p, m in obs
        )
        return (
            f'{{"v":1,"kind":"reads","store_id":"{STORE}","reader_id":"r{reader}","boot_id":"boot",'
            f'"seq":{seq},"sent_at_us":{t},"clock_offset_us":0,"observations":[{body}],"gaps":[]}}'
        ).encode()


async def _measure(rounds: int) -> list[float]:
    """Prepare CPU µs per observation of each round (imports the code under test only now)."""
    import yaml  # noqa: PLC0415

    from gateway.ingest import Ingestor  # noqa: PLC0415
    from gateway.metrics import GatewayMetrics  # noqa: PLC0415
    from tagledger.clock import ManualClock  # noqa: PLC0415
    from tagledger.ledger import open_ledger  # noqa: PLC0415
    from tagledger.ledger.migrate import migrate  # noqa: PLC0415
    from tagledger.site import load_site  # noqa: PLC0415
    from tagledger.wire import Topics  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as tmp:
        site_file = Path(tmp) / "site.yaml"
        site_file.write_text(yaml.safe_dump(_site_doc()))
        url = f"sqlite:///{tmp}/ledger.db"
        await migrate(url)
        ledger = await open_ledger(url)
        closing: list[Any] = [ledger]
        extra: dict[str, Any] = {}
        try:  # checkouts before the watermarks moved into the ledger (2026-12-06)
            from gateway.watermarks import open_watermarks  # type: ignore[import-not-found]  # noqa: PLC0415

            extra["watermarks"] = await open_watermarks(url)
            closing.append(extra["watermarks"])
        except ImportError:
            pass
        clock = ManualClock(_T0)
        topics = Topics("bench")
        ing = Ingestor(load_site(site_file), ledger, topics, clock, GatewayMetrics(), **extra)
        try:
            await ing.load()
            streams = _Streams()
            t = _T0

            def group() -> list[tuple[str, bytes]]:
                nonlocal t
                out = []
                for r in range(READERS):
                    t += 2_000
                    out.append((topics.reads(STORE, f"r{r}"), streams.batch(r, t)))
                clock.set(t)
                return out

            for _ in range(ITEMS // (PER_BATCH - streams.new_per_batch) * 2 // READERS + 2):  # warm-up
                await ing.commit(await ing.prepare(group()))
            gc.collect()
            per_round = []
            for _ in range(rounds):
                cpu = 0.0
                for g in [group() for _ in range(10)]:  # 40 batches, 40,000 observations
                    c0 = time.process_time()
                    work = await ing.prepare(g)
                    cpu += time.process_time() - c0
                    await ing.commit(work)
                per_round.append(cpu / (10 * READERS * PER_BATCH) * 1e6)
        finally:
            for resource in closing:
                await resource.close()
    return per_round


def _inner(rounds: int) -> dict[str, Any]:
    per_round = asyncio.run(_measure(rounds))
    import gateway  # noqa: PLC0415

    return {
        "tree": str(Path(gateway.__file__ or "").resolve().parent.parent),
        "min_us": round(min(per_round), 3),
        "median_us": round(statistics.median(per_round), 3),
    }


def _compare(trees: list[str | None], pairs: int, rounds: int) -> dict[str, Any]:
    runs = checkouts.in_turn(__file__, ["--rounds", str(rounds)], trees, pairs)
    return {
        tree: {
            "prepare_cpu_us_per_observation_min": min(r["min_us"] for r in results),
            "median_of_run_minima": round(statistics.median(r["min_us"] for r in results), 3),
            "runs": len(results),
        }
        for tree, results in runs.items()
    }


def main(argv: list[str] | None = None) -> int:
    if __name__ == "__main__":
        parser: argparse.ArgumentParser = argparse.ArgumentParser(description=__doc__)
        parser.add_argument("--json", action="store_true")
    else:
        from tagledger.app.benchmarks.args import bench_parser  # noqa: PLC0415

        parser = bench_parser("ingest-cpu", __doc__)
    parser.add_argument("--rounds", type=int, default=8, help="rounds of 40 batches (40,000 observations) each")
    checkouts.add_options(parser)
    args = parser.parse_args(argv)
    figures = _compare([None, *args.compare], args.pairs, args.rounds) if args.compare else _inner(args.rounds)
    if __name__ == "__main__":
        print(json.dumps(figures))
    else:
        from tagledger.app.benchmarks.args import report  # noqa: PLC0415

        report(figures, as_json=args.json)
    return 0


if __name__ == "__main__":
    if "--tree" in sys.argv:
        checkouts.use_tree(sys.argv[sys.argv.index("--tree") + 1])
    raise SystemExit(main())
