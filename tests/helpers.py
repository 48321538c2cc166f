"""Small helpers shared by test modules."""

from __future__ import annotations


def close_enough(ledger: dict[str, int], truth: dict[str, int]) -> bool:
    """Every zone within what RF noise allows: 2 items or 2 %, whichever is larger."""
    zones = set(ledger) | set(truth)
    return all(abs(ledger.get(z, 0) - truth.get(z, 0)) <= max(2, 0.02 * truth.get(z, 0)) for z in zones)
