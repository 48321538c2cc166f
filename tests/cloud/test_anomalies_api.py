"""Tag anomalies of a store through HTTP: what the gateway's detector found and wrote, against a real ledger."""

from __future__ import annotations

import httpx
import pytest

from gateway.anomalies import Anomaly, AnomalyDetector
from gateway.anomaly_store import load_anomalies, save_steps
from tagledger.clock import US_PER_S
from tagledger.ledger.repository import Ledger
from tagledger.site import Site
from tagledger.wire import PosLine, PosTransaction
from tests.cloud.ledger_data import JEANS, NOW, SHIRT, shirt

UNTAGGED = "09506000134352"


@pytest.fixture
async def found(ledger: Ledger, site: Site) -> AnomalyDetector:
    """Barcode sales of a product no reader saw, and of a tagged one (not an anomaly), written as the gateway does."""
    det = AnomalyDetector(site.store("paris-01"))
    det.seen_gtin(JEANS)
    for k, at in enumerate((NOW - 60 * US_PER_S, NOW)):
        lines = [PosLine(gtin=UNTAGGED, quantity=2), PosLine(gtin=JEANS)]
        det.pos_transaction(PosTransaction(store_id="paris-01", transaction_id=f"tx-{k}", at_us=at, lines=lines))
    await ledger.execute_all(save_steps(det.changed(), NOW))
    return det


async def test_untagged_sales_are_listed_and_counted_per_gtin(
    client: httpx.AsyncClient, ledger: Ledger, found: AnomalyDetector
) -> None:
    r = await client.get("/v1/stores/paris-01/anomalies")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["store_id"] == "paris-01"
    assert body["counts"] == [{"kind": "untagged_sales", "gtin": UNTAGGED, "anomalies": 1, "units": 4}]
    (a,) = body["anomalies"]
    assert (a["kind"], a["gtin"], a["epc"], a["units"]) == ("untagged_sales", UNTAGGED, None, 4)
    assert a["evidence"] == {"transactions": ["tx-0", "tx-1"]}
    assert a["first_seen"] == "2026-01-01T00:02:20Z"
    assert a["last_seen"] == "2026-01-01T00:03:20Z"
    # The other store has none; its list is empty, not somebody else's.
    other = (await client.get("/v1/stores/lyon-01/anomalies")).json()
    assert other == {"store_id": "lyon-01", "counts": [], "anomalies": []}


async def test_a_duplicated_epc_written_again_replaces_its_row_and_survives_a_restart(
    client: httpx.AsyncClient, ledger: Ledger, site: Site, found: AnomalyDetector
) -> None:
    dup = Anomaly(
        "duplicated_epc", "paris-01", SHIRT, shirt(7), NOW - 900 * US_PER_S, NOW - 10 * US_PER_S, 2,
        {"strong_reads": {"floor": 40, "backroom": 31}, "peak_dbm": {"floor": -41.0, "backroom": -44.5}},
    )  # fmt: skip
    await ledger.execute_all(save_steps([dup], NOW))
    await ledger.execute_all(save_steps([dup], NOW + US_PER_S))  # the upsert: still one row
    body = (await client.get("/v1/stores/paris-01/anomalies")).json()
    assert [(c["kind"], c["gtin"], c["anomalies"], c["units"]) for c in body["counts"]] == [
        ("duplicated_epc", SHIRT, 1, 2),
        ("untagged_sales", UNTAGGED, 1, 4),
    ]
    assert body["anomalies"][0]["epc"] == shirt(7)
    assert body["anomalies"][0]["evidence"]["strong_reads"] == {"backroom": 31, "floor": 40}
    # A restarted gateway resumes: the duplicate stays flagged, untagged sales keep adding up.
    again = AnomalyDetector(site.store("paris-01"))
    again.restore(await load_anomalies(ledger, "paris-01"))
    assert again.duplicated() == {shirt(7)}
    tx = PosTransaction(store_id="paris-01", transaction_id="tx-9", at_us=NOW + 5 * US_PER_S, lines=[
        PosLine(gtin=UNTAGGED)
    ])  # fmt: skip
    again.pos_transaction(tx)
    await ledger.execute_all(save_steps(again.changed(), NOW + 5 * US_PER_S))
    (untagged,) = [
        a for a in (await client.get("/v1/stores/paris-01/anomalies")).json()["anomalies"] if a["gtin"] == UNTAGGED
    ]
    assert untagged["units"] == 5
    assert untagged["evidence"]["transactions"] == ["tx-0", "tx-1", "tx-9"]


async def test_anomalies_of_an_unknown_store_are_a_404(client: httpx.AsyncClient) -> None:
    r = await client.get("/v1/stores/nowhere/anomalies")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "store_not_found"
