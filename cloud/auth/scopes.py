"""Scopes, principals and the checks on them.  No I/O.

One scope per audience of the API:

* ``availability:read``: e-commerce reading availability and stores;
* ``reservations:write``: e-commerce holding units for carts and pickup orders;
* ``staff``: store dashboards (stock, items, readers, availability);
* ``audit``: auditors (stock as of a past time, item histories);
* ``metrics``: a Prometheus scraper, for ``/metrics`` when ``metrics_require_key`` is on;
* ``admin``: everything.

A key may also be limited to some stores; a request naming another store is
refused (403 ``store_forbidden``) rather than answered with less, so a
misconfigured key shows itself at once.  Lists that span stores (nearby) are
filtered instead, since the caller did not name the stores.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum


class Scope(StrEnum):
    AVAILABILITY_READ = "availability:read"
    RESERVATIONS_WRITE = "reservations:write"
    STAFF = "staff"
    AUDIT = "audit"
    METRICS = "metrics"
    ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: a key's id (``""`` when auth is off), its scopes and its stores (None: all)."""

    key_id: str
    scopes: frozenset[Scope]
    stores: frozenset[str] | None

    def has_any(self, required: Iterable[Scope]) -> bool:
        # isdisjoint rather than any(generator): this runs on every /v1 request.
        return Scope.ADMIN in self.scopes or not self.scopes.isdisjoint(required)

    def may_see(self, store_id: str) -> bool:
        return self.stores is None or store_id in self.stores

    def forbidden_stores(self, store_ids: Iterable[str]) -> list[str]:
        return [s for s in store_ids if not self.may_see(s)]


#: The caller when ``auth_required`` is off (the embedded demo): every scope, every store.
ANONYMOUS = Principal(key_id="", scopes=frozenset(Scope), stores=None)


def parse_scopes(values: Iterable[str]) -> frozenset[Scope]:
    """Scopes from text; an unknown one raises ValueError naming the valid ones."""
    out = set()
    for value in values:
        try:
            out.add(Scope(value))
        except ValueError:
            valid = ", ".join(s.value for s in Scope)
            raise ValueError(f"unknown scope {value!r}; valid: {valid}") from None
    return frozenset(out)
