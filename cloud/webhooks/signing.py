"""Webhook signatures and the retry schedule.  No I/O.

Signature
    ``X-Tagledger-Signature: sha256=<hex>``, the HMAC-SHA256 of the exact
    request body under the subscription's secret.  A receiver recomputes it over
    the raw bytes it received (before any JSON parsing) and compares in
    constant time (:func:`verify` does both).

Retries
    A delivery that gets no 2xx answer (an HTTP error status, a refused
    connection, a timeout) is tried again after ``base * 2**(attempt - 1)``
    seconds, capped at ``cap``: with the defaults (1 s, 6 attempts) the tries
    span about 31 s, long enough to ride out a receiver's restart, short enough
    that a stale availability is not delivered minutes late.  Every body carries
    the ``change_id`` it reports up to (``"<event id>.<hold change µs>"``, never
    going backwards; compare it as a pair of integers), so a receiver that gets a
    retried, older body after a newer one can tell and keep the newer.
"""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-Tagledger-Signature"
PREFIX = "sha256="


def signature(secret: str, body: bytes) -> str:
    return PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, header: str) -> bool:
    return hmac.compare_digest(signature(secret, body), header)


def backoff_s(attempt: int, *, base_s: float, cap_s: float) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
    return float(min(cap_s, base_s * 2 ** (attempt - 1)))
