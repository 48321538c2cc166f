"""Which encoding for the wire contract? Prints decode/encode rates; asserts nothing.

Run: python bench/wire_encoding.py

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

import json
import random
import time

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


def main() -> None:
    batch = sample_batch()
    n_obs = len(batch["observations"])  # type: ignore[arg-type]
    rounds = 300
    codecs = [("json", lambda b: json.dumps(b).encode(), json.loads)]
    try:
        import orjson

        codecs.append(("orjson", orjson.dumps, orjson.loads))
    except ImportError:
        pass
    try:
        import msgpack  # type: ignore[import-not-found]

        codecs.append(("msgpack", msgpack.packb, msgpack.unpackb))
    except ImportError:
        pass
    for name, enc, dec in codecs:
        data = enc(batch)
        t = time.perf_counter()
        for _ in range(rounds):
            dec(data)
        rate = n_obs * rounds / (time.perf_counter() - t)
        print(f"{name:8s} {len(data) / n_obs:6.1f} B/obs  decode {rate:12,.0f} obs/s")
    data = json.dumps(batch).encode()
    t = time.perf_counter()
    for _ in range(rounds):
        ReadBatch.model_validate_json(data)
    rate = n_obs * rounds / (time.perf_counter() - t)
    print(f"ReadBatch.model_validate_json (parse + validate) {rate:12,.0f} obs/s")


if __name__ == "__main__":
    main()
