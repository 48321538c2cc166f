"""Stores come from the site file: the ledger knows items, the site knows places."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from cloud.errors import StoreNotFound
from cloud.stores.schemas import (
    AnomalyCountOut,
    AnomalyList,
    AnomalyOut,
    AntennaHealthOut,
    AntennaOut,
    ReaderOut,
    ReaderStatusList,
    ReaderStatusOut,
    StoreOut,
    ZoneOut,
)
from tagledger.clock import us_to_datetime
from tagledger.ledger.model import ReaderStatusRecord
from tagledger.ledger.repository import LedgerReader
from tagledger.site import Reader, Site, Store


def get_store(site: Site, store_id: str) -> Store:
    try:
        return site.store(store_id)
    except KeyError:
        raise StoreNotFound([store_id]) from None


def require_stores(site: Site, store_ids: Sequence[str]) -> None:
    """Refuse the request, naming every unknown store at once."""
    known = {s.id for s in site.stores}
    unknown = [s for s in store_ids if s not in known]
    if unknown:
        raise StoreNotFound(unknown)


def _antennas(reader: Reader) -> list[AntennaOut]:
    return [AntennaOut(port=a.port, zone=a.zone) for a in reader.antennas]


def store_out(store: Store) -> StoreOut:
    return StoreOut(
        id=store.id,
        name=store.name,
        latitude=store.latitude,
        longitude=store.longitude,
        timezone=store.timezone,
        gln=store.gln,
        zones=[ZoneOut(id=z.id, name=z.name, role=z.role, mobility=z.effective_mobility) for z in store.zones],
        readers=[
            ReaderOut(id=r.id, model=r.model, format=r.format, profile=r.profile, antennas=_antennas(r))
            for r in store.readers
        ],
    )


def effective_state(status: ReaderStatusRecord, now_us: int) -> str:
    """The state to show: what the agent last said, or ``stale`` if it said it is up but went quiet.

    An ``offline`` agent is offline whatever its heartbeats did; one that said
    ``online`` or ``reader_down`` and then sent no heartbeat past ``stale_at``
    (three of its intervals after the last) may have hung, or lost its link
    without the broker noticing yet: its word can no longer be taken.
    """
    if status.state != "offline" and status.stale_at_us is not None and now_us > status.stale_at_us:
        return "stale"
    return status.state


# Per-antenna rows the gateway keeps from heartbeats and statuses (gateway.antennas).
_ANTENNA_HEALTH = "SELECT reader_id, port, reads_per_s, heartbeat_us, down FROM antenna_health WHERE store_id = $1"


def _antenna_health(port: int, zone: str, row: tuple[float, int | None, int] | None) -> AntennaHealthOut:
    if row is None:
        return AntennaHealthOut(port=port, zone=zone, health="unknown", reads_per_s=None, down=False, heartbeat_at=None)
    rate, beat_us, down = row
    health: Literal["ok", "quiet", "down", "unknown"]
    if down:
        health = "down"
    elif beat_us is None:
        health = "unknown"
    else:
        health = "ok" if rate > 0 else "quiet"
    return AntennaHealthOut(
        port=port,
        zone=zone,
        health=health,
        reads_per_s=rate if beat_us is not None else None,
        down=bool(down),
        heartbeat_at=None if beat_us is None else us_to_datetime(beat_us),
    )


def _reads_per_s(antennas: list[AntennaHealthOut]) -> float | None:
    rates = [a.reads_per_s for a in antennas if a.reads_per_s is not None]
    return round(sum(rates), 1) if rates else None


def _last_seen(status: ReaderStatusRecord | None) -> datetime | None:
    if status is None:
        return None
    newest = max(status.at_us, status.heartbeat_at_us or 0)
    return us_to_datetime(newest)


async def reader_statuses(ledger: LedgerReader, store: Store, *, now_us: int) -> ReaderStatusList:
    """The site's readers (the list of record) with the last status the ledger holds for each.

    A status for a reader the site file no longer lists is left out: the site file
    says which readers a store has.
    """
    known = {s.reader_id: s for s in await ledger.reader_statuses(store.id)}
    health: dict[tuple[str, int], tuple[float, int | None, int]] = {
        (str(reader_id), int(port)): (float(rate), None if beat is None else int(beat), int(down))
        for reader_id, port, rate, beat, down in await ledger.fetch(_ANTENNA_HEALTH, store.id)
    }
    out: list[ReaderStatusOut] = []
    for r in store.readers:
        status = known.get(r.id)
        antennas = [_antenna_health(a.port, a.zone, health.get((r.id, a.port))) for a in r.antennas]
        out.append(
            ReaderStatusOut(
                id=r.id,
                model=r.model,
                format=r.format,
                host=r.host,
                port=r.port,
                profile=r.profile,
                antennas=_antennas(r),
                status=effective_state(status, now_us) if status else "unknown",
                status_at=us_to_datetime(status.at_us) if status else None,
                status_detail=status.detail if status else "",
                heartbeat_at=(
                    us_to_datetime(status.heartbeat_at_us) if status and status.heartbeat_at_us is not None else None
                ),
                last_seen=_last_seen(status),
                reads_per_s=_reads_per_s(antennas),
                antenna_health=antennas,
            )
        )
    return ReaderStatusList(store_id=store.id, readers=out)


# Rows the gateway writes (gateway.anomaly_store): one per (store, kind, EPC or GTIN).
_ANOMALIES = """SELECT kind, gtin, epc, first_us, last_us, units, evidence FROM anomalies
WHERE store_id = $1 ORDER BY kind, key"""


async def anomalies(ledger: LedgerReader, store: Store) -> AnomalyList:
    """The tag anomalies the gateway found in a store, with evidence, and their totals per kind and GTIN."""
    out = [
        AnomalyOut(
            kind=kind,
            gtin=gtin,
            epc=epc,
            first_seen=us_to_datetime(int(first_us)),
            last_seen=us_to_datetime(int(last_us)),
            units=int(units),
            evidence=json.loads(evidence),
        )
        for kind, gtin, epc, first_us, last_us, units, evidence in await ledger.fetch(_ANOMALIES, store.id)
    ]
    totals: dict[tuple[str, str | None], list[int]] = {}
    for a in out:
        t = totals.setdefault((a.kind, a.gtin), [0, 0])
        t[0] += 1
        t[1] += a.units
    counts = [
        AnomalyCountOut(kind=kind, gtin=gtin, anomalies=n, units=units)
        for (kind, gtin), (n, units) in sorted(totals.items(), key=lambda kv: (kv[0][0], kv[0][1] or ""))
    ]
    return AnomalyList(store_id=store.id, counts=counts, anomalies=out)
