"""Put each reader's batches back in ``seq`` order before the state machine sees them.

Pure: no I/O, time from an injected :class:`tagledger.clock.Clock` (the gateway
gives it a monotonic one).  ``gateway.ingest`` asks it about every read batch.

Why order matters
    States and counts do not depend on the order batches arrive in, but the
    ledger's evidence does.  An item first read in batch N and read again in N+1
    is created citing N (and N's first-seen time) when N comes first; when N+1
    comes first, the creation cites N+1, and N is then late evidence that
    changes nothing.  Both ledgers hold the same stock; only one holds the trail
    an uninterrupted run writes.

Where the holes come from
    MQTT keeps one publisher's messages on one topic in order, but a
    subscription only receives what is published after it takes effect.  A
    gateway that subscribes afresh (its first start, a new client id, a store
    taken over under leases) while an agent is sending a run of batches gets
    the run's tail at once and its head only when the agent sends it again.
    (Measured on the failover test: the gateway subscribed 58 ms into one of
    the agent's publish rounds and saw seq 4..9 1.5 s before seq 0..3.)  A
    gateway restarted on its persistent session is not affected: the broker
    queued everything, in order.  Some holes never fill: batches an agent
    dropped from a full spool (its ``spool_full`` gap), a payload that could
    not be parsed.

What this does
    Per stream ``(reader_id, boot_id)`` it knows ``next``, the seq expected
    next: the ledger's highest committed seq + 1 when the stream is first seen
    (0 for a stream the ledger has never seen: an agent's seq starts at 0 per
    boot), then one past every batch let through.

    * ``seq == next`` with nothing held: let through at once.  This is the
      fast path (:meth:`Reorder.admit`, one dict lookup), so an in-order
      stream pays nothing for the rest.
    * ``seq < next``: let through at once: a re-send, which de-duplication
      answers, or a batch whose hole was given up on (late evidence, which the
      state machine already treats as such).
    * ``seq > next``: held (:meth:`Reorder.offer`).  Held batches are released
      in seq order the moment the hole before them fills.  No batch is held
      longer than ``wait_s``: then the holes below it are given up (counted)
      and it is released with everything held below it.  No more than
      ``max_held`` messages are held in all: the oldest hold is then given up
      the same way.

    Each stream holds on its own: a hole in one reader's stream never delays
    another reader.  :meth:`Reorder.missing` names the seqs a hold waits for,
    so the caller can ask the agent for them at once.  Copies of a held batch (the agent re-sending it) are held
    with it and released right after it, so the caller answers them as the
    duplicates they are.

The caller keeps what it holds unacknowledged (no MQTT PUBACK, no ack to the
agent) until it is committed, so a gateway that dies holding batches loses
nothing: the broker or the agent delivers them again.  That is also why
``max_held`` must stay below the in-flight window (the gateway's MQTT 5 Receive
Maximum; under 3.1.1 the broker's, Mosquitto's ``max_inflight_messages``): held
messages occupy it, and a full
window would keep the missing predecessors out until the holds time out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar

from tagledger.clock import US_PER_S, Clock

T = TypeVar("T")

StreamKey = tuple[str, str]  # (reader_id, boot_id)

#: How a hold ended: its predecessors arrived (``in_order``), it waited
#: ``wait_s`` (``waited_out``), the buffer was full (``buffer_full``), or its
#: store went to another gateway (``dropped``, not processed here at all).
Outcome = Literal["in_order", "waited_out", "buffer_full", "dropped"]


#: Most missing seqs :meth:`Reorder.missing` returns for one stream at a time.
MAX_ASKED = 32


@dataclass(slots=True)
class _Hold(Generic[T]):
    until_us: int
    items: list[T]  # the batch and its copies; empty: a seq settled without processing


@dataclass(slots=True)
class _Stream(Generic[T]):
    next: int
    held: dict[int, _Hold[T]] = field(default_factory=dict)
    asked: set[int] = field(default_factory=set)  # missing seqs already asked for (see Reorder.missing)


class Reorder(Generic[T]):
    """Per-stream reorder buffer; ``T`` is whatever the caller needs to process a batch later.

    ``on_release(outcome, n)`` is told about every ended hold (``n`` batches)
    and every seq given up on (``"skipped"``, ``n`` seqs), for metrics.
    """

    def __init__(
        self,
        wait_s: float,
        max_held: int,
        clock: Clock,
        on_release: Callable[[Outcome | Literal["skipped"], int], None] | None = None,
    ) -> None:
        if wait_s < 0 or max_held < 1:
            raise ValueError("wait_s must be >= 0 and max_held >= 1")
        self._wait_us = round(wait_s * US_PER_S)
        self._max_held = max_held
        self._clock = clock
        self._on_release = on_release or (lambda _outcome, _n: None)
        self._streams: dict[StreamKey, _Stream[T]] = {}
        self._holding: set[StreamKey] = set()  # streams with something held
        self._held = 0  # messages held, copies included (each is one broker in-flight slot)

    @property
    def held(self) -> int:
        """Messages held now (copies included)."""
        return self._held

    def known(self, stream: StreamKey) -> bool:
        return stream in self._streams

    def next_seq(self, stream: StreamKey) -> int:
        return self._streams[stream].next

    def start(self, stream: StreamKey, next_seq: int) -> None:
        """Begin a stream: ``next_seq`` is the ledger's highest committed seq + 1 (0: none)."""
        self._streams[stream] = _Stream(next_seq)

    def forget_readers(self, reader_ids: Iterable[str]) -> list[T]:
        """Drop these readers' streams (their store changed hands); returns what they held, unprocessed."""
        readers = set(reader_ids)
        dropped: list[T] = []
        for key in [k for k in self._streams if k[0] in readers]:
            s = self._streams.pop(key)
            self._holding.discard(key)
            batches = [hold.items for hold in s.held.values() if hold.items]
            for items in batches:
                self._held -= len(items)
                dropped.extend(items)
            if batches:
                self._on_release("dropped", len(batches))
        return dropped

    # ------------------------------------------------------------------ #

    def admit(self, stream: StreamKey, seq: int) -> bool:
        """The fast path: True if the batch goes through now (and ``next`` moved past it).

        False: it is ahead of a hole, or fills one; the caller then hands it to
        :meth:`offer`.
        """
        s = self._streams[stream]
        if seq < s.next:
            return True
        if seq == s.next and not s.held:
            s.next = seq + 1
            return True
        return False

    def offer(self, stream: StreamKey, seq: int, item: T | None) -> list[T]:
        """Hold a batch, or let it through with the held ones it unblocks; returns what to process now, in order.

        ``item`` None settles ``seq`` without anything to process (a batch
        that was rejected): nobody should wait for it.
        """
        s = self._streams[stream]
        out: list[T] = []
        if seq < s.next:
            if item is not None:
                out.append(item)
            return out
        if seq == s.next:
            if item is not None:
                out.append(item)
            s.next = seq + 1
            self._release_run(stream, s, out, "in_order")
            return out
        hold = s.held.get(seq)
        if hold is None:
            s.held[seq] = _Hold(self._clock.now_us() + self._wait_us, [] if item is None else [item])
            self._holding.add(stream)
        elif item is not None:
            hold.items.append(item)
        else:
            return out
        if item is not None:
            self._held += 1
            if self._held > self._max_held:
                self._give_up_oldest(out)
        elif len(s.held) > self._max_held:
            # Settled seqs hold no message, but a hole that never fills followed by
            # nothing but rejected batches would pile them up: the same bound applies.
            self._give_up_to(stream, s, min(s.held), out, "buffer_full")
        return out

    def restart(self, stream: StreamKey, next_seq: int) -> list[T]:
        """Expect ``next_seq`` next: the seqs before it are neither waited for, asked for nor counted as skipped.

        For a stream that jumped far ahead of what it had sent (an agent's seq
        counter reset or corrupted): waiting for, asking for or counting the
        seqs in between would be meaningless.  What is held below ``next_seq``
        is released, in seq order, with the run that follows it.
        """
        s = self._streams[stream]
        out: list[T] = []
        batches = 0
        for seq in sorted(q for q in s.held if q < next_seq):
            hold = s.held.pop(seq)
            self._held -= len(hold.items)
            out.extend(hold.items)
            batches += 1 if hold.items else 0
        if batches:
            self._on_release("waited_out", batches)
        s.next = max(s.next, next_seq)
        s.asked.clear()
        self._release_run(stream, s, out, "in_order")
        if not s.held:
            self._holding.discard(stream)
        return out

    def missing(self, stream: StreamKey, limit: int = MAX_ASKED) -> list[int]:
        """The seqs a held batch waits for that were not asked for yet, lowest first.

        The caller asks the agent to send them again at once rather than when its
        own ack timeout fires (30 s by default, ten times the wait here).  Each
        seq is returned once per stream, so a burst of batches behind one hole
        asks for it once, and at most ``limit`` asks are outstanding per stream
        (until the hole fills or is given up): a hole of thousands of batches
        (a spool that overflowed) asks for ``limit`` of them, not thousands.
        """
        s = self._streams[stream]
        if not s.held:
            return []
        s.asked = {q for q in s.asked if q >= s.next}
        limit -= len(s.asked)
        if limit <= 0:
            return []
        out: list[int] = []
        # Every seq scanned is held, asked or new: this many cover ``limit`` new ones.
        end = min(max(s.held), s.next + limit + len(s.held) + len(s.asked))
        for seq in range(s.next, end):
            if seq not in s.held and seq not in s.asked:
                out.append(seq)
                if len(out) >= limit:
                    break
        s.asked.update(out)
        return out

    def due(self) -> list[T]:
        """Release the batches whose wait is over (giving up the holes below them), in seq order per stream.

        A settled seq (``offer(..., None)``) has nothing to release and never
        expires by itself: it goes with the hole before it, or with a held batch
        above it.
        """
        now = self._clock.now_us()
        out: list[T] = []
        for key in list(self._holding):
            s = self._streams[key]
            expired = [seq for seq, hold in s.held.items() if hold.items and hold.until_us <= now]
            if expired:
                self._give_up_to(key, s, max(expired), out, "waited_out")
        return out

    def next_due_us(self) -> int | None:
        """When :meth:`due` next has something to release (clock µs), or None if nothing is held."""
        return min(
            (hold.until_us for key in self._holding for hold in self._streams[key].held.values() if hold.items),
            default=None,
        )

    # ------------------------------------------------------------------ #

    def _release_run(self, key: StreamKey, s: _Stream[T], out: list[T], outcome: Outcome) -> None:
        """Release what is held from ``next`` on without a hole."""
        released = 0
        while s.held:
            hold = s.held.pop(s.next, None)
            if hold is None:
                break
            s.next += 1
            self._held -= len(hold.items)
            out.extend(hold.items)
            released += 1 if hold.items else 0
        if not s.held:
            self._holding.discard(key)
        if released:
            self._on_release(outcome, released)

    def _give_up_to(self, key: StreamKey, s: _Stream[T], upto: int, out: list[T], outcome: Outcome) -> None:
        """Stop waiting for the holes at or below ``upto``: release what is held there, in order, and the run after."""
        below = sorted(seq for seq in s.held if seq <= upto)
        batches = 0
        for seq in below:
            hold = s.held.pop(seq)
            if hold.items:
                batches += 1
                self._held -= len(hold.items)
                out.extend(hold.items)
        skipped = upto + 1 - s.next - len(below)
        if skipped:
            self._on_release("skipped", skipped)
        if batches:
            self._on_release(outcome, batches)
        s.next = upto + 1
        self._release_run(key, s, out, outcome)

    def _give_up_oldest(self, out: list[T]) -> None:
        oldest: tuple[int, StreamKey, int] | None = None
        for key in self._holding:
            for seq, hold in self._streams[key].held.items():
                if hold.items and (oldest is None or hold.until_us < oldest[0]):
                    oldest = (hold.until_us, key, seq)
        assert oldest is not None  # called only with something held
        _, key, seq = oldest
        self._give_up_to(key, self._streams[key], seq, out, "buffer_full")
