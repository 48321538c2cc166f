"""A small, exactly known store history committed through the ledger's real write path.

Times are offsets from the ManualClock's start (2026-01-01T00:00:00Z):

* t+10 s, batch 1 in paris-01: 3 shirts and 2 shoes and 1 pair of jeans on the floor,
  1 shirt in the backroom; in lyon-01: 2 shirts on the floor.
* t+100 s, no batch: shirt 0 falls silent (unobserved), shoe 0 is sold at the POS,
  the jeans walk into the exit zone (exiting).
"""

from __future__ import annotations

from tagledger.clock import US_PER_S, ManualClock
from tagledger.ledger.model import BatchKey, BatchRecord, ItemState, Transition
from tagledger.ledger.repository import Ledger

SHIRT = "00614141000012"  # category shirts
SHOE = "00614141100019"  # category shoes (the tests give shoes a safety stock of 1)
JEANS = "00614141000043"  # category trousers
NEVER_SEEN = "00000096385074"  # a valid GTIN-8 the ledger never saw

T0 = ManualClock().now_us()
BATCH_AT = T0 + 10 * US_PER_S
CHANGES_AT = T0 + 100 * US_PER_S
NOW = T0 + 200 * US_PER_S


def epc(kind: int, n: int) -> str:
    return f"30{kind:02X}{n:020X}"


def shirt(n: int) -> str:
    return epc(1, n)


def shoe(n: int) -> str:
    return epc(2, n)


def jeans(n: int) -> str:
    return epc(3, n)


def lyon_shirt(n: int) -> str:
    return epc(4, n)


def arrival(store: str, e: str, gtin: str, zone: str, at_us: int, key: BatchKey) -> Transition:
    return Transition(
        store_id=store,
        epc=e,
        gtin=gtin,
        serial=str(int(e[-8:], 16)),
        scheme="sgtin-96",
        at_us=at_us,
        from_state=None,
        to_state=ItemState.PRESENT,
        from_zone=None,
        to_zone=zone,
        confidence=0.9,
        reason="observed",
        reader_id=key.reader_id,
        antenna=1,
        batch=key,
    )


def change(before: Transition, to_state: ItemState, to_zone: str | None, at_us: int, reason: str) -> Transition:
    return Transition(
        store_id=before.store_id,
        epc=before.epc,
        gtin=before.gtin,
        serial=before.serial,
        scheme=before.scheme,
        at_us=at_us,
        from_state=before.to_state,
        to_state=to_state,
        from_zone=before.to_zone,
        to_zone=to_zone,
        confidence=0.5,
        reason=reason,
    )


async def populate(ledger: Ledger) -> None:
    key = BatchKey(reader_id="paris-01-r1", boot_id="boot-a", seq=1)
    p = [
        *(arrival("paris-01", shirt(i), SHIRT, "floor", BATCH_AT, key) for i in range(3)),
        arrival("paris-01", shirt(3), SHIRT, "backroom", BATCH_AT, key),
        *(arrival("paris-01", shoe(i), SHOE, "floor", BATCH_AT, key) for i in range(2)),
        arrival("paris-01", jeans(0), JEANS, "floor", BATCH_AT, key),
    ]
    batch = BatchRecord(key=key, store_id="paris-01", observations=len(p), sent_at_us=BATCH_AT, received_at_us=BATCH_AT)
    await ledger.commit_batch(batch, p)

    lkey = BatchKey(reader_id="lyon-01-r1", boot_id="boot-b", seq=1)
    lyon = [arrival("lyon-01", lyon_shirt(i), SHIRT, "floor", BATCH_AT, lkey) for i in range(2)]
    lbatch = BatchRecord(key=lkey, store_id="lyon-01", observations=2, sent_at_us=BATCH_AT, received_at_us=BATCH_AT)
    await ledger.commit_batch(lbatch, lyon)

    await ledger.commit_transitions(
        [
            change(p[0], ItemState.UNOBSERVED, "floor", CHANGES_AT, "silence"),
            change(p[4], ItemState.SOLD, "pos", CHANGES_AT, "pos_transaction"),
            change(p[6], ItemState.EXITING, "exit", CHANGES_AT, "exit"),
        ]
    )
