"""Rate limits per API key: a token bucket per key, in each API process.  No I/O.

Each key may make ``rate`` requests per second on average, with bursts of up to
``burst``.  A bucket starts full, gains ``rate`` tokens per second up to
``burst``, and each request takes one; an empty bucket answers how long until
the next token (the ``Retry-After`` of the 429).

The buckets live in the process, not in the ledger: checking a shared counter
would cost a database round trip per request, more than the availability
look-up itself.  So with N API worker processes a key gets up to N times the
configured rate (connections spread over the workers); configure
``rate_limit_per_s`` per process with that in mind.  Time comes from an
injected monotonic function so tests are exact.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

#: Bound on tracked keys (only verified keys get a bucket, so this is generous).
MAX_BUCKETS = 100_000


@dataclass(slots=True)
class _Bucket:
    tokens: float
    at: float


class RateLimiter:
    def __init__(self, rate: float, burst: float, *, now: Callable[[], float] = time.monotonic) -> None:
        if rate < 0 or burst < 1:
            raise ValueError("rate must be >= 0 and burst >= 1")
        self.rate = rate
        self.burst = burst
        self._now = now
        self._buckets: dict[str, _Bucket] = {}

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def acquire(self, key: str) -> float:
        """Take a token for ``key``: 0.0 when granted, else the seconds until one is available."""
        if not self.enabled:
            return 0.0
        now = self._now()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= MAX_BUCKETS:
                self._buckets.clear()  # every key starts full again: errs on letting requests through
            bucket = self._buckets[key] = _Bucket(tokens=self.burst, at=now)
        else:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
            bucket.at = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate
