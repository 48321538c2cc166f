"""Sightings per second through StoreTracker.observe on one core.

Steady state of one store: 35,000 items already present, batches of 1,000
sightings, 80% read in their home zone and 20% cross-reads from the next zone
6 dB weaker; plus the admission path (new EPCs, each decoded once) and tick().
Prints figures; asserts nothing.

    tagledger bench state-machine [--items 35000] [--json]
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence

from gateway.fastwire import sightings_from_batch
from gateway.records import Sighting
from gateway.state import StoreTracker
from tagledger.app.benchmarks.args import bench_parser, report
from tagledger.clock import US_PER_S, ManualClock
from tagledger.site import parse_site
from tagledger.wire import Observation, ReadBatch

BATCH = 1_000
ZONES = ["floor", "backroom", "fitting"]
SITE = {
    "stores": [
        {
            "id": "s1",
            "name": "Bench",
            "latitude": 0,
            "longitude": 0,
            "zones": [
                {"id": "floor", "role": "sales_floor"},
                {"id": "backroom", "role": "backroom"},
                {"id": "fitting", "role": "fitting_room"},
            ],
            "readers": [
                {
                    "id": "r1",
                    "host": "h",
                    "antennas": [{"port": i + 1, "zone": z} for i, z in enumerate(ZONES)],
                }
            ],
        }
    ]
}


def epc(i: int) -> str:
    # SGTIN-96, company prefix 0614141, item 812345, serial i.
    return f"3074257BF7194E4{i:09X}"


def main(argv: Sequence[str] | None = None) -> int:
    parser = bench_parser("state-machine", __doc__)
    parser.add_argument("--items", type=int, default=35_000, help="items of the store")
    args = parser.parse_args(argv)
    report(measure(args.items), as_json=args.json)
    return 0


def measure(items: int) -> dict[str, float]:
    """The figures, in sightings (or observations, items) per second and milliseconds."""
    figures: dict[str, float] = {}
    rng = random.Random(1)
    clock = ManualClock()
    tracker = StoreTracker(parse_site(SITE).stores[0], clock)
    home = {epc(i): rng.randrange(2) for i in range(items)}
    epcs = list(home)

    # Admission path: every EPC new, one multi-read observation each (decode included).
    now = clock.now_us()
    first = [Sighting("s1", "r1", home[e] + 1, ZONES[home[e]], e, now - 500_000, now, 3, -50.0, -51.0) for e in epcs]
    t0 = time.perf_counter()
    for i in range(0, len(first), BATCH):
        tracker.observe(first[i : i + BATCH])
    admit_s = time.perf_counter() - t0
    figures["admission_items_per_s"] = round(items / admit_s)

    # Steady state.
    batches = []
    for b in range(300):
        t = now + (b + 1) * 100_000
        batch = []
        for _ in range(BATCH):
            e = epcs[rng.randrange(items)]
            z = home[e]
            if rng.random() < 0.2:
                z, rssi = 1 - z, -57.0
            else:
                rssi = -51.0
            batch.append(Sighting("s1", "r1", z + 1, ZONES[z], e, t - 90_000, t, 2, rssi + 1, rssi))
        batches.append(batch)
    transitions = 0
    t0 = time.perf_counter()
    for batch in batches:
        transitions += len(tracker.observe(batch))
    steady_s = time.perf_counter() - t0
    n = len(batches) * BATCH
    figures["steady_sightings_per_s"] = round(n / steady_s)
    figures["steady_transitions"] = transitions

    # Home-zone reads only (the common case) and cross-reads only (the costly one).
    for label, cross in (("home_zone_only", False), ("cross_reads_only", True)):
        sample = []
        for b in range(100):
            t = now + 31 * US_PER_S + b * 100_000
            batch = []
            for _ in range(BATCH):
                e = epcs[rng.randrange(items)]
                z = 1 - home[e] if cross else home[e]
                batch.append(Sighting("s1", "r1", z + 1, ZONES[z], e, t - 90_000, t, 2, -56.0, -57.0))
            sample.append(batch)
        t0 = time.perf_counter()
        for batch in sample:
            tracker.observe(batch)
        figures[f"{label}_sightings_per_s"] = round(len(sample) * BATCH / (time.perf_counter() - t0))

    # ReadBatch -> Sightings (gateway.formats), the step before observe.
    obs = [
        Observation(epc=e, antenna=1, first_seen_us=now, last_seen_us=now + 1, count=2, peak_rssi=-50, mean_rssi=-51)
        for e in epcs[:BATCH]
    ]
    rb = ReadBatch(store_id="s1", reader_id="r1", boot_id="b", seq=0, sent_at_us=now, observations=obs)
    site = parse_site(SITE)
    t0 = time.perf_counter()
    for _ in range(100):
        sightings_from_batch(rb, site)
    figures["sightings_from_batch_observations_per_s"] = round(100 * BATCH / (time.perf_counter() - t0))

    clock.advance(61)
    t0 = time.perf_counter()
    tracker.tick()
    figures["first_tick_dropping_glimpse_timers_ms"] = round((time.perf_counter() - t0) * 1e3, 1)
    t0 = time.perf_counter()
    for _ in range(100):
        clock.advance(1)
        tracker.tick()
    figures["tick_nothing_due_us"] = round((time.perf_counter() - t0) / 100 * 1e6, 1)
    clock.advance(300)
    t0 = time.perf_counter()
    out = tracker.tick()
    figures["tick_unobserved_items"] = len(out)
    figures["tick_unobserved_ms"] = round((time.perf_counter() - t0) * 1e3, 1)
    figures["steady_us_per_sighting"] = round(steady_s / n * 1e6, 2)
    return figures
