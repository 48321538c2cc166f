"""``tagledger bench accuracy``: how true the ledger's picture of a store is, against ground truth.

Every scenario of :mod:`tagledger.app.sim.scenarios` is recorded (the messages a
gateway would receive, and the truth), then replayed through the real ingest
code -- :class:`gateway.ingest.Ingestor`: topic routing, batch decoding and
de-duplication, Impinj IoT parsing, agent status and antenna events, POS
transactions, the store's state machine and its silence timers -- on a manual
clock, one second at a time.  Only the broker and the database are left out
(the ingest path reads an empty SQLite ledger at start and is never
asked to commit; nothing this bench scores depends on the writes).  The
same reads, in reader-time order, drive :mod:`tagledger.app.benchmarks.edgex_baseline`.

Scoring (both systems, same instants): every ``SAMPLE_EVERY_S`` from the end of
the pre-roll to the end of the run, *including* during outages and while POS
or reads are late, plus the last instant.  Each figure is a ratio of sums over
all samples ("item-moments"):

``zone_accuracy``
    stock items the system counts in their true zone / stock items.  An item
    is stock from delivery until its sale is booked or it leaves the store.
    Items carrying a duplicated EPC are left out (one EPC, two places).
``count_abs_error``
    sum over GTINs of |true stock - counted| / true stock.  Counted = the
    states that count as on hand (``COUNTED_STATES``; EdgeX: ``Present``).
    Items carrying a duplicated EPC are tag anomalies, to be listed apart and
    kept out of the counts: true stock leaves them out, so a system that
    counts such an EPC (not found, or not kept out) is one off per EPC, and
    one that drops a single tag it wrongly took for two is one off too.
``sellable_abs_error``
    the same for what the API would offer for sale (``CONFIRMED_STATES`` of
    :mod:`cloud.availability.rules`: present or returned, no reservations or
    safety stock; EdgeX has no such notion: ``Present``).
``false_departures``
    stock items the system holds as gone (sold, departed or missing) / stock items.
``missed_departures``
    items that stopped being stock at least ``DEPARTURE_GRACE_S`` ago (sold,
    stolen) and are still counted / such items.

Figures are fractions in [0, 1].  The last line of output is one JSON object
``{"scenarios": [{"name", "seed", "tagledger": {...}, "edgex": {...}, ...}]}``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import itertools
import json
import shutil
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from cloud.availability.rules import CONFIRMED_STATES
from gateway.anomalies import AnomalyDetector
from gateway.ingest import Ingestor
from tagledger.app.benchmarks.args import bench_parser
from tagledger.app.benchmarks.edgex_baseline import EdgexInventory
from tagledger.app.sim.scenarios import SCENARIOS, START_US, Recording, Scenario, record
from tagledger.clock import US_PER_S, ManualClock
from tagledger.ledger.factory import open_ledger
from tagledger.ledger.migrate import migrate_sync
from tagledger.ledger.model import COUNTED_STATES, ItemRecord, ItemState
from tagledger.wire import Topics

SAMPLE_EVERY_S = 30
DEPARTURE_GRACE_S = 60
MEASURES = ("zone_accuracy", "count_abs_error", "false_departures", "missed_departures", "sellable_abs_error")
#: States in which a system says the item left the store: sold, departed, or missing (left unseen).
_GONE = frozenset({ItemState.SOLD, ItemState.DEPARTED_EXIT, ItemState.MISSING})


class Belief(NamedTuple):
    """What a system says about one EPC at one instant."""

    counted: bool
    zone: str | None
    gone: bool  # it says the item left the store (sold, departed)
    sellable: bool


BeliefOf = Callable[[str], Belief]
UNKNOWN = Belief(False, None, False, False)


def belief_of_record(item: ItemRecord | None) -> Belief:
    """What the ledger's record of an item says: counted and sellable as the API counts them."""
    if item is None:
        return UNKNOWN
    counted = item.state in COUNTED_STATES
    return Belief(counted, item.zone, item.state in _GONE, counted and item.state in CONFIRMED_STATES)


@dataclass(slots=True)
class Score:
    """Sums over samples for one system; :meth:`figures` turns them into the five measures."""

    zone_ok: int = 0
    stock: int = 0
    count_err: int = 0
    sell_err: int = 0
    true_total: int = 0
    false_gone: int = 0
    missed: int = 0
    gone: int = 0
    samples: int = 0
    #: Misplaced item-moments by (true zone, believed zone; "none": not counted).
    confusion: Counter[tuple[str, str]] = field(default_factory=Counter)

    def worst(self, n: int = 5) -> list[dict[str, Any]]:
        """The ``n`` largest kinds of zone error, each with its share of the stock item-moments."""
        return [
            {"true": t, "believed": b, "share": round(k / self.stock, 4)}
            for (t, b), k in self.confusion.most_common(n)
            if self.stock
        ]

    def figures(self) -> dict[str, float]:
        def ratio(a: int, b: int, empty: float) -> float:
            return round(a / b, 4) if b else empty

        return {
            "zone_accuracy": ratio(self.zone_ok, self.stock, 1.0),
            "count_abs_error": ratio(self.count_err, self.true_total, 0.0),
            "false_departures": ratio(self.false_gone, self.stock, 0.0),
            "missed_departures": ratio(self.missed, self.gone, 0.0),
            "sellable_abs_error": ratio(self.sell_err, self.true_total, 0.0),
        }


def sample(rec: Recording, t_us: int, belief_of: BeliefOf, score: Score) -> None:
    """Score one instant: every physical item's truth against ``belief_of`` its EPC."""
    grace = DEPARTURE_GRACE_S * US_PER_S
    true_by_gtin: dict[str, int] = {}
    beliefs: dict[str, Belief] = {}
    for item in rec.truth:
        zone = item.zone_at(t_us)
        b = beliefs.get(item.epc)
        if b is None:
            b = beliefs[item.epc] = belief_of(item.epc)
        if zone is not None:
            if item.epc in rec.duplicated:
                continue  # an anomaly, listed apart and kept out of the counts (gateway.anomalies)
            true_by_gtin[item.gtin] = true_by_gtin.get(item.gtin, 0) + 1
            score.stock += 1
            if b.counted and b.zone == zone:
                score.zone_ok += 1
            else:
                score.confusion[(zone, (b.zone or "none") if b.counted else "none")] += 1
            score.false_gone += b.gone
        else:
            left = item.left_at(t_us)
            if (
                left is not None
                and left >= rec.start_us - grace
                and t_us - left >= grace
                and item.epc not in rec.duplicated
            ):
                score.gone += 1
                score.missed += b.counted
    counted: dict[str, int] = {}
    sellable: dict[str, int] = {}
    gtin_of = {item.epc: item.gtin for item in rec.truth}
    for epc, b in beliefs.items():
        if b.counted:
            counted[gtin_of[epc]] = counted.get(gtin_of[epc], 0) + 1
            if b.sellable:
                sellable[gtin_of[epc]] = sellable.get(gtin_of[epc], 0) + 1
    for gtin in set(true_by_gtin) | set(counted):
        true = true_by_gtin.get(gtin, 0)
        score.count_err += abs(true - counted.get(gtin, 0))
        score.sell_err += abs(true - sellable.get(gtin, 0))
        score.true_total += true
    score.samples += 1


def truth_belief(rec: Recording, t_us: int) -> BeliefOf:
    """A perfect system's belief at ``t_us`` (the scorer's reference: it scores 100 %)."""
    zones: dict[str, str | None] = {}
    for item in rec.truth:
        z = item.zone_at(t_us)
        if z is not None or item.epc not in zones:
            zones[item.epc] = z

    def of(epc: str) -> Belief:
        z = zones.get(epc)
        return Belief(True, z, False, True) if z is not None else UNKNOWN

    return of


@dataclass(slots=True)
class Run:
    name: str
    seed: int
    tagledger: Score
    edgex: Score
    seconds: float
    messages: int
    reads: int
    items: int
    #: The same measures over the samples taken while a reader was down (None: no outage),
    #: and at the last instant alone: (tagledger, edgex).
    outage: tuple[Score, Score] | None = None
    end: tuple[Score, Score] | None = None
    #: gateway.anomalies against the truth: {kind: {"true", "found", "false"}}.
    anomalies: dict[str, dict[str, int]] = field(default_factory=dict)


@contextlib.contextmanager
def empty_ledgers() -> Iterator[Callable[[], str]]:
    """A factory of empty, migrated SQLite ledgers (one per scenario), removed afterwards.

    The ingest path reads from its ledger (items and learned rates at start,
    batch watermarks); the bench never commits to it, so every scenario starts
    from an empty store whatever ran before.
    """
    with tempfile.TemporaryDirectory(prefix="tagledger-accuracy-") as tmp:
        template = Path(tmp) / "template.db"
        migrate_sync(f"sqlite:///{template}")
        n = itertools.count()

        def fresh() -> str:
            path = Path(tmp) / f"run-{next(n)}.db"
            shutil.copyfile(template, path)
            return f"sqlite:///{path}"

        yield fresh


async def replay(rec: Recording, database_url: str) -> Run:
    """Feed a recording to the real ingest path and to the EdgeX baseline; score both."""
    t0 = time.perf_counter()
    clock = ManualClock(START_US)
    ledger = await open_ledger(database_url)
    try:
        ingestor = Ingestor(rec.site, ledger, Topics(), clock, reorder_wait_s=0.0)
        await ingestor.load()
        return await _replay(rec, ingestor, clock, t0)
    finally:
        await ledger.close()


async def _replay(rec: Recording, ingestor: Ingestor, clock: ManualClock, t0: float) -> Run:
    tracker = ingestor.trackers[rec.store_id]
    edgex = EdgexInventory()

    def ours(epc: str) -> Belief:
        return belief_of_record(tracker.item(epc))

    def theirs(epc: str) -> Belief:
        present, location = edgex.state(epc)
        return Belief(present, location, edgex.departed(epc), present)

    scores = Score(), Score()
    outage = (Score(), Score()) if rec.outages else None
    end = Score(), Score()
    msgs, reads = rec.messages, rec.reads
    mi = ri = 0
    step = US_PER_S
    t = START_US
    next_sample = rec.start_us
    while t <= rec.end_us:
        clock.set(t)
        batch: list[tuple[str, bytes]] = []
        while mi < len(msgs) and msgs[mi][0] <= t:
            batch.append((msgs[mi][1], msgs[mi][2]))
            mi += 1
        if batch:
            await ingestor.prepare(batch)
        ingestor.tick(None)
        while ri < len(reads) and reads[ri][0] <= t:
            rt, epc, location, rssi = reads[ri]
            edgex.read(rt, epc, location, rssi)
            ri += 1
        edgex.advance(t)
        if t >= next_sample or t == rec.end_us:
            sample(rec, t, ours, scores[0])
            sample(rec, t, theirs, scores[1])
            if outage is not None and any(a <= t < b for _, a, b in rec.outages):
                sample(rec, t, ours, outage[0])
                sample(rec, t, theirs, outage[1])
            if t == rec.end_us:
                sample(rec, t, ours, end[0])
                sample(rec, t, theirs, end[1])
            next_sample += SAMPLE_EVERY_S * US_PER_S
        t = min(t + step, rec.end_us) if t < rec.end_us else t + step
    sc = rec.scenario
    return Run(
        sc.name,
        sc.seed,
        scores[0],
        scores[1],
        time.perf_counter() - t0,
        len(msgs),
        len(reads),
        len({i.epc for i in rec.truth}),
        outage,
        end,
        _anomaly_scores(rec, tracker.anomalies),
    )


def _anomaly_scores(rec: Recording, detector: AnomalyDetector) -> dict[str, dict[str, int]]:
    dup = detector.duplicated()
    untagged = {a.gtin for a in detector.anomalies() if a.kind == "untagged_sales"}
    return {
        "duplicated_epc": {
            "true": len(rec.duplicated),
            "found": len(dup & rec.duplicated),
            "false": len(dup - rec.duplicated),
        },
        "untagged_gtin": {
            "true": len(rec.untagged_gtins),
            "found": len(untagged & rec.untagged_gtins),
            "false": len(untagged - rec.untagged_gtins),
        },
    }


def run_scenario(scenario: Scenario, database_url: str) -> tuple[Run, float]:
    t0 = time.perf_counter()
    rec = record(scenario)
    build_s = time.perf_counter() - t0
    return asyncio.run(replay(rec, database_url)), build_s


def _scenario_row(scenario: Scenario, database_url: str) -> dict[str, Any]:
    return result_json(*run_scenario(scenario, database_url))


def result_json(run: Run, build_s: float) -> dict[str, Any]:
    detail: dict[str, Any] = {}
    for label, pair in (("end", run.end), ("during_outage", run.outage)):
        if pair is not None:
            detail[label] = {"tagledger": pair[0].figures(), "edgex": pair[1].figures()}
    detail["zone_errors"] = {"tagledger": run.tagledger.worst(), "edgex": run.edgex.worst()}
    detail["anomalies"] = run.anomalies
    return {
        "name": run.name,
        "seed": run.seed,
        "tagledger": run.tagledger.figures(),
        "edgex": run.edgex.figures(),
        "items": run.items,
        "sightings": run.reads,
        "messages": run.messages,
        "samples": run.tagledger.samples,
        "seconds": round(build_s + run.seconds, 2),
        "detail": detail,
    }


def _table(rows: Sequence[dict[str, Any]]) -> str:
    heads = ("zone acc", "count err", "false dep", "missed dep", "sellable err")
    out = [f"{'scenario':<28} {'seed':>4}  {'system':<9} " + " ".join(f"{h:>12}" for h in heads)]
    for r in rows:
        for system in ("tagledger", "edgex"):
            f = r[system]
            cells = " ".join(f"{100 * f[m]:>11.2f}%" for m in MEASURES)
            name, seed = (r["name"], r["seed"]) if system == "tagledger" else ("", "")
            out.append(f"{name:<28} {seed:>4}  {system:<9} {cells}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = bench_parser("accuracy", __doc__, json_help="print only the JSON result line")
    parser.add_argument("--scenario", action="append", default=[], help="run only this scenario (repeatable)")
    parser.add_argument(
        "--seeds",
        type=int,
        default=1,
        metavar="N",
        help="also run each scenario with N-1 other seeds (seed + 1000, + 2000, ...): same story, other draws",
    )
    parser.add_argument("--jobs", type=int, default=1, metavar="N", help="run N scenarios at a time (processes)")
    args = parser.parse_args(argv)
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    chosen = [
        dataclasses.replace(s, seed=s.seed + 1000 * k)
        for s in SCENARIOS
        if not args.scenario or s.name in args.scenario
        for k in range(args.seeds)
    ]
    if not chosen:
        names = sorted({s.name for s in SCENARIOS})
        print(f"no such scenario; known: {', '.join(names)}", file=sys.stderr)
        return 2
    rows = []
    with empty_ledgers() as fresh, contextlib.ExitStack() as stack:
        urls = [fresh() for _ in chosen]
        if args.jobs > 1:
            # Scenarios are independent and deterministic: run side by side, reported in order.
            pool = stack.enter_context(concurrent.futures.ProcessPoolExecutor(args.jobs))
            runs: Iterable[dict[str, Any]] = pool.map(_scenario_row, chosen, urls)
        else:
            runs = map(_scenario_row, chosen, urls)
        for sc, row in zip(chosen, runs, strict=True):
            rows.append(row)
            if not args.json:
                print(
                    f"{sc.name} seed {sc.seed}: {row['items']} items, {row['sightings']} sightings, {row['seconds']} s",
                    file=sys.stderr,
                )
    if not args.json:
        print(_table(rows))
    print(json.dumps({"scenarios": rows}, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
