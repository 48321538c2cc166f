"""Bounds of what the ledger stores, checked before a message reaches the state machine.

The wire contract (``tagledger.wire``) says what a payload may look like; JSON
integers are unbounded and its times only need to fit in 63 bits.  The ledger is
narrower: a batch's ``gaps`` and ``observations`` are int4, its ``seq`` int8, every
time a ``timestamptz`` that the API turns into a Python ``datetime`` (year 9999
at most).  A value that fits the contract but not a column would fail the commit
of every valid batch grouped with it, after the state machine has applied its
transitions.  So each message is checked here, alone, and refused with a reason
before anything changes:

``out_of_range``
    a number the ledger cannot hold (int4 / int8 columns, read counts, POS
    quantities, antenna ports).
``clock``
    an event time before 1970 or further ahead of the gateway's clock than
    ``skew_us`` (``GatewaySettings.clock_skew_s``, 300 s by default).  A reader
    time shifted onto the host clock by ``clock_offset_us`` is checked after the
    shift.  Without this, a status from the year 292,277 pins a reader's state
    for ever and one item dated after 9999 makes its API answer 500.  Times in
    the past are accepted: an agent's spool may deliver batches days late.

Pure: the caller passes the gateway's clock reading.
"""

from __future__ import annotations

import math
from operator import attrgetter
from typing import TYPE_CHECKING

from gateway.formats import FormatError

if TYPE_CHECKING:
    from gateway.fastwire import Batch
    from tagledger.wire import Heartbeat, PosTransaction, ReaderStatus

INT4_MAX = 2**31 - 1
INT8_MAX = 2**63 - 1
#: Largest quantity of one POS line: the state machine confirms that many items one by one.
MAX_POS_QUANTITY = 100_000
DEFAULT_CLOCK_SKEW_S = 300.0
#: Longest heartbeat interval an agent may announce (its staleness deadline is computed from it).
MAX_HEARTBEAT_INTERVAL_S = 86_400.0

_first = attrgetter("first_seen_us")
_last = attrgetter("last_seen_us")
_count = attrgetter("count")
_dropped = attrgetter("dropped_reads")


def check_time(at_us: int, now_us: int, skew_us: int, where: str) -> None:
    """``at_us`` (host clock) is after 1970 and at most ``skew_us`` ahead of ``now_us``; else ``clock``."""
    if at_us < 0 or at_us > now_us + skew_us:
        ahead_s = (at_us - now_us) / 1e6
        allowed = f"allowed: up to {skew_us / 1e6:g} s ahead"
        raise FormatError("clock", f"{where} is {ahead_s:.3g} s from the gateway's clock ({allowed})")


def check_batch(batch: Batch, now_us: int, skew_us: int) -> None:
    """A decoded read batch: every stored number in its column, every time within the skew."""
    if batch.seq > INT8_MAX:
        raise FormatError("out_of_range", f"seq {batch.seq} does not fit the ledger's int8")
    dropped = sum(map(_dropped, batch.gaps))
    if dropped > INT4_MAX:
        raise FormatError("out_of_range", f"gaps drop {dropped} reads, more than the ledger's int4 holds")
    check_time(batch.sent_at_us, now_us, skew_us, "sent_at_us")
    obs = batch.observations
    if not obs:
        return
    if max(map(_count, obs)) > INT4_MAX:
        raise FormatError("out_of_range", "an observation's count does not fit int4")
    offset = batch.clock_offset_us
    # Reader times are shifted onto the host clock (reader - offset) by the state machine.
    check_time(min(map(_first, obs)) - offset, now_us, skew_us, "first_seen_us - clock_offset_us")
    check_time(max(map(_last, obs)) - offset, now_us, skew_us, "last_seen_us - clock_offset_us")


def check_status(status: ReaderStatus, now_us: int, skew_us: int) -> None:
    check_time(status.at_us, now_us, skew_us, "at_us")
    if "\x00" in status.detail:
        # PostgreSQL text cannot hold NUL: the status would be refused at commit.
        raise FormatError("invalid", "detail contains a NUL character")
    for port in status.antennas_down:
        if not 1 <= port <= 65535:
            raise FormatError("out_of_range", f"antenna port {port} is not in 1..65535")


def check_pos(tx: PosTransaction, now_us: int, skew_us: int) -> None:
    check_time(tx.at_us, now_us, skew_us, "at_us")
    for line in tx.lines:
        if line.quantity > MAX_POS_QUANTITY:
            raise FormatError("out_of_range", f"quantity {line.quantity} is above {MAX_POS_QUANTITY}")


def check_heartbeat(beat: Heartbeat, now_us: int, skew_us: int) -> None:
    check_time(beat.at_us, now_us, skew_us, "at_us")
    if beat.interval_s is not None and not beat.interval_s <= MAX_HEARTBEAT_INTERVAL_S:  # NaN and inf fail too
        raise FormatError("out_of_range", f"interval_s {beat.interval_s} is above {MAX_HEARTBEAT_INTERVAL_S:g}")
    for port, rate in beat.reads_per_s.items():
        if port.isdigit() and not 1 <= int(port) <= 65535:
            raise FormatError("out_of_range", f"antenna port {port[:20]} is not in 1..65535")
        if not math.isfinite(rate) or rate < 0:
            raise FormatError("out_of_range", f"reads_per_s of port {port[:20]} is {rate}")
