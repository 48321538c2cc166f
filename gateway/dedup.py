"""Which batch keys are new, without a database round trip per batch.

Pure bookkeeping, no I/O.  The ledger's insert-first commit is the authority on
exactly-once (a key already in ``batches`` is ``DUPLICATE``), but the state
machine must not see a duplicate's sightings *before* the commit says so: a
redelivered batch fed to the tracker twice could add evidence twice or emit
transitions the ledger then refuses, leaving the tracker and the ledger apart.
So each batch is classified first:

``new``        certainly not committed: observe it and commit it;
``duplicate``  committed by this process: ack ``duplicate`` at once;
``pending``    prepared by this process, its commit still under way: drop it
               (the pending commit's ack carries the same key);
``check``      unknown: ask the ledger (``has_batch``), rare.

Per stream ``(reader_id, boot_id)`` we keep the ledger's highest committed
``seq`` when this process first saw the stream (``floor``, one query per stream
per process or per store take-over) and the seqs committed since.  An agent's
``seq`` grows by one per batch, so above ``floor`` everything this process did
not commit is new; at or below it (an agent re-sending after a gateway restart)
the ledger is asked.  The committed seqs are kept as a contiguous run
``(floor, upto]`` plus a small set for those that arrived out of order; the set
is bounded by raising ``floor`` (which only turns answers into ``check``, never
into a wrong ``new`` or ``duplicate``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from tagledger.ledger.model import BatchKey

Verdict = Literal["new", "duplicate", "pending", "check"]

#: Out-of-order committed seqs kept per stream before ``floor`` is raised.
MAX_SCATTERED = 4_096


@dataclass(slots=True)
class _Stream:
    floor: int  # highest seq the ledger held when we first saw the stream (-1: none)
    upto: int  # every seq in (floor, upto] was committed by this process
    scattered: set[int] = field(default_factory=set)
    pending: set[int] = field(default_factory=set)


class BatchIndex:
    def __init__(self, max_scattered: int = MAX_SCATTERED) -> None:
        self._streams: dict[tuple[str, str], _Stream] = {}
        self._max_scattered = max_scattered

    def __len__(self) -> int:
        return len(self._streams)

    def known(self, reader_id: str, boot_id: str) -> bool:
        return (reader_id, boot_id) in self._streams

    def start(self, reader_id: str, boot_id: str, ledger_max_seq: int | None) -> None:
        """Begin tracking a stream; ``ledger_max_seq`` is the ledger's highest committed seq (None: none)."""
        floor = -1 if ledger_max_seq is None else ledger_max_seq
        self._streams[(reader_id, boot_id)] = _Stream(floor=floor, upto=floor)

    def forget_readers(self, reader_ids: set[str]) -> None:
        """Stop trusting what we know of these readers (their store changed hands)."""
        for key in [k for k in self._streams if k[0] in reader_ids]:
            del self._streams[key]

    def classify(self, key: BatchKey) -> Verdict:
        s = self._streams[(key.reader_id, key.boot_id)]
        seq = key.seq
        if seq in s.pending:
            return "pending"
        if s.floor < seq <= s.upto or seq in s.scattered:
            return "duplicate"
        if seq <= s.floor:
            return "check"
        return "new"

    def prepared(self, key: BatchKey) -> None:
        self._streams[(key.reader_id, key.boot_id)].pending.add(key.seq)

    def abandoned(self, key: BatchKey) -> None:
        """The commit did not happen (the process carries on): the key is unknown again."""
        s = self._streams.get((key.reader_id, key.boot_id))
        if s is not None:
            s.pending.discard(key.seq)

    def committed(self, key: BatchKey) -> None:
        """The ledger holds the key (committed now, or found a duplicate)."""
        s = self._streams.get((key.reader_id, key.boot_id))
        if s is None:
            return
        seq = key.seq
        s.pending.discard(seq)
        if seq == s.upto + 1 and seq > s.floor:
            s.upto = seq
            while s.upto + 1 in s.scattered:
                s.upto += 1
                s.scattered.discard(s.upto)
            return
        if not (s.floor < seq <= s.upto):
            s.scattered.add(seq)
            if len(s.scattered) > self._max_scattered:
                self._raise_floor(s)

    @staticmethod
    def _raise_floor(s: _Stream) -> None:
        ordered = sorted(s.scattered)
        cut = ordered[len(ordered) // 2]
        s.scattered = {q for q in ordered if q > cut}
        # Seqs at or below the new floor that we never committed become "check":
        # slower, never wrong.
        s.floor = max(s.floor, cut)
        s.upto = max(s.upto, s.floor)
        while s.upto + 1 in s.scattered:
            s.upto += 1
            s.scattered.discard(s.upto)
