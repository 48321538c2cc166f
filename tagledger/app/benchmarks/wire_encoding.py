"""Which encoding for the wire contract? Prints decode/encode rates; asserts nothing.

Run: tagledger bench wire-encoding [--json]

The gateway decodes and validates every batch, so the decode+validate rate is the
figure that decides.  Measured on the 2-core CI machine (2026-11-23):

    json      174 B/obs   decode   274k obs/s
    orjson    160 B/obs   decode 1,000k obs/s
    msgpack   129 B/obs   decode   404k obs/s
    pydantic validate_json (parse + validate)   346k obs/s
    msgpack.unpackb + model_validate            209k obs/s

JSON validated by pydantic-core's own parser wins the decision and keeps the
payloads readable with mosquitto_sub; msgpack would only save ~20 % of bytes.
"""

from __future__ import annotations

import importlib
import json
import random
import time
from collections.abc import Callable, Sequence
from typing import Any

from tagledger.app.benchmarks.args import bench_parser, report
from tagledger.wire import ReadBatch


def sample_batch(n: int = 500) -> dict[str, object]:
    rng = random.Random(1)
    observations = [
        {
            "epc": f"{rng.getrandbits(96):024X}",
            "antenna": rng.randint(1, 4),
            "first_seen_us": 1_700_000_000_000_000 + i,
            "last_seen_us": 1_700_000_000_100_000 + i,
            "count": rng.randint(1, 30),
            "peak_rssi": -round(rng.uniform(40, 75), 1),
            "mean_rssi": -round(rng.uniform(40, 80), 2),
        }
        for i in range(n)
    ]
    return {
        "v": 1,
        "kind": "reads",
        "store_id": "s1",
        "reader_id": "r1",
        "boot_id": "b" * 32,
        "seq": 12,
        "sent_at_us": 1,
        "observations": observations,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = bench_parser("wire-encoding", __doc__)
    parser.add_argument("--rounds", type=int, default=300, help="decodes of the sample batch per codec")
    args = parser.parse_args(argv)
    report(measure(args.rounds), as_json=args.json)
    return 0


def measure(rounds: int) -> dict[str, float]:
    """Bytes per observation and observations decoded per second, per codec installed."""
    figures: dict[str, float] = {}
    batch = sample_batch()
    n_obs = len(batch["observations"])  # type: ignore[arg-type]
    codecs: list[tuple[str, Callable[[Any], bytes], Callable[[bytes], Any]]] = [
        ("json", lambda b: json.dumps(b).encode(), json.loads)
    ]
    # orjson and msgpack are measured when installed (neither is a dependency).
    for name, encode, decode in (("orjson", "dumps", "loads"), ("msgpack", "packb", "unpackb")):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        codecs.append((name, getattr(module, encode), getattr(module, decode)))
    for name, enc, dec in codecs:
        data = enc(batch)
        t = time.perf_counter()
        for _ in range(rounds):
            dec(data)
        rate = n_obs * rounds / (time.perf_counter() - t)
        figures[f"{name}_bytes_per_observation"] = round(len(data) / n_obs, 1)
        figures[f"{name}_decode_observations_per_s"] = round(rate)
    data = json.dumps(batch).encode()
    t = time.perf_counter()
    for _ in range(rounds):
        ReadBatch.model_validate_json(data)
    rate = n_obs * rounds / (time.perf_counter() - t)
    figures["read_batch_validate_json_observations_per_s"] = round(rate)
    return figures
