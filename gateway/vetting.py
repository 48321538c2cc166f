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

Pure: the caller passes the latest time it accepts (its clock plus the allowed skew).
"""

from __future__ import annotations

import math
from operator import attrgetter
from typing import TYPE_CHECKING

from gateway.records import INT4_MAX, INT8_MAX, FormatError
from tagledger.wire import PORT_MAX, PORT_MIN

if TYPE_CHECKING:
    from gateway.fastwire import Batch
    from tagledger.wire import Heartbeat, PosTransaction, ReaderStatus

#: Largest quantity of one POS line: the state machine confirms that many items one by one.
MAX_POS_QUANTITY = 100_000
DEFAULT_CLOCK_SKEW_S = 300.0
#: Longest heartbeat interval an agent may announce (its staleness deadline is computed from it).
MAX_HEARTBEAT_INTERVAL_S = 86_400.0

_count = attrgetter("count")
_dropped = attrgetter("dropped_reads")


def check_time(at_us: int, not_after_us: int | None, where: str) -> None:
    """``at_us`` (host clock) is after 1970 and not after ``not_after_us``; else ``clock``.

    ``not_after_us`` is the gateway's clock plus the allowed skew (None: no
    upper bound).  The one rule for every event time, whatever its format.
    """
    if at_us < 0:
        raise FormatError("clock", f"{where} is before 1970")
    if not_after_us is not None and at_us > not_after_us:
        ahead_s = (at_us - not_after_us) / 1e6
        raise FormatError("clock", f"{where} is {ahead_s:.3g} s beyond the gateway's clock plus the allowed skew")


def check_batch(batch: Batch, not_after_us: int) -> tuple[int | None, int]:
    """A decoded read batch: every stored number in its column, every time within the skew.

    Returns what the caller needs of it anyway, computed here once: the batch's
    newest read in host-clock µs (None: no observations) and the reads its gaps
    dropped.  A read count beyond int4 is refused by the decoder itself
    (``gateway.fastwire``); only a batch the contract's lax mode decoded
    (``fastwire.LaxBatch``) has its counts checked here.
    """
    if batch.seq > INT8_MAX:
        raise FormatError("out_of_range", f"seq {batch.seq} does not fit the ledger's int8")
    gaps = batch.gaps
    dropped = sum(map(_dropped, gaps)) if gaps else 0
    if dropped > INT4_MAX:
        raise FormatError("out_of_range", f"gaps drop {dropped} reads, more than the ledger's int4 holds")
    check_time(batch.sent_at_us, not_after_us, "sent_at_us")
    obs = batch.observations
    if not obs:
        return None, dropped
    if batch.lax and max(map(_count, obs)) > INT4_MAX:
        raise FormatError("out_of_range", "an observation's count does not fit int4")
    offset = batch.clock_offset_us
    # Reader times are shifted onto the host clock (reader - offset) by the state machine.
    # A list comprehension, not map(attrgetter): 27 vs 40 ns per observation (Python 3.11, measured).
    newest = max([o.last_seen_us for o in obs]) - offset
    check_time(newest, not_after_us, "last_seen_us - clock_offset_us")
    if offset > 0:  # else first_seen_us - offset >= first_seen_us >= 0 (the contract's bound)
        check_time(min([o.first_seen_us for o in obs]) - offset, not_after_us, "first_seen_us - clock_offset_us")
    return newest, dropped


def check_status(status: ReaderStatus, not_after_us: int) -> None:
    check_time(status.at_us, not_after_us, "at_us")
    if "\x00" in status.detail:
        # PostgreSQL text cannot hold NUL: the status would be refused at commit.
        raise FormatError("invalid", "detail contains a NUL character")
    for port in status.antennas_down:
        _check_port(port)


def check_pos(tx: PosTransaction, not_after_us: int) -> None:
    check_time(tx.at_us, not_after_us, "at_us")
    for line in tx.lines:
        if line.quantity > MAX_POS_QUANTITY:
            raise FormatError("out_of_range", f"quantity {line.quantity} is above {MAX_POS_QUANTITY}")


def check_heartbeat(beat: Heartbeat, not_after_us: int) -> None:
    check_time(beat.at_us, not_after_us, "at_us")
    if beat.interval_s is not None and not beat.interval_s <= MAX_HEARTBEAT_INTERVAL_S:  # NaN and inf fail too
        raise FormatError("out_of_range", f"interval_s {beat.interval_s} is above {MAX_HEARTBEAT_INTERVAL_S:g}")
    for port, rate in beat.reads_per_s.items():
        if port.isdigit():
            _check_port(int(port))
        if not math.isfinite(rate) or rate < 0:
            raise FormatError("out_of_range", f"reads_per_s of port {port[:20]} is {rate}")


def _check_port(port: int) -> None:
    if not PORT_MIN <= port <= PORT_MAX:
        raise FormatError("out_of_range", f"antenna port {str(port)[:20]} is not in {PORT_MIN}..{PORT_MAX}")
