"""Retry delays: exponential with *full jitter* (a uniformly random delay between 0 and the current cap).

Full jitter spreads the reconnects of a thousand agents after a broker restart
instead of having them hammer it in lock-step; the gateway's ledger retries use
it too.  Pure (no I/O, no MQTT): the gateway's ingestion depends on it without
the MQTT client.
"""

from __future__ import annotations

import random
from collections.abc import Iterator


def backoff_delays(initial: float = 0.5, maximum: float = 30.0, rng: random.Random | None = None) -> Iterator[float]:
    """Endless reconnect delays: full jitter over an exponentially growing cap."""
    rng = rng or random.Random()
    cap = initial
    while True:
        yield rng.uniform(0, cap)
        cap = min(maximum, cap * 2)
