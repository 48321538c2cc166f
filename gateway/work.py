"""What a group of messages becomes between prepare and commit (``gateway.ingest``, ``gateway.commit``).

A :class:`Work` holds, per store, an ordered list of :class:`Segment` (a run of
read batches, or a run of transitions without a batch such as silence timers,
POS transactions and readers that publish MQTT themselves), the dead letters,
reader statuses and heartbeats, the replies to publish once it is committed and
the transport receipts to acknowledge then.  Pure data.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.antennas import Step
from tagledger.ledger.model import BatchRecord, ReaderHeartbeatRecord, ReaderStatusRecord, Reject, Transition

#: The caller's handle for acknowledging one message to its transport, opaque to
#: the ingestor (the service's: connection number, MQTT mid, QoS).  Each comes
#: back in the ``Work`` that holds the message's effects, to be acknowledged only
#: after that work is committed.
Receipt = tuple[int, int, int]


@dataclass(frozen=True, slots=True)
class Outgoing:
    topic: str
    payload: bytes
    qos: int = 1


class StoreLost(Exception):
    """The store was handed to another gateway while its writes were pending."""


@dataclass(slots=True)
class PreparedBatch:
    """A read batch the state machine has applied, waiting for its commit."""

    record: BatchRecord
    transitions: list[Transition]
    ack_topic: str
    newest_us: int | None  # newest read, host clock (for the lag metric)
    gaps: list[tuple[str, int]]
    topic: str  # and payload: for the dead letter, should the ledger refuse the batch
    payload: bytes


@dataclass(slots=True)
class Segment:
    batches: list[PreparedBatch] | None  # a run of read batches; None: free transitions
    transitions: list[Transition] = field(default_factory=list)
    observations: int = 0  # sightings behind free transitions (reader-published formats)


@dataclass(slots=True)
class Work:
    """What one group of messages (or one tick) writes, and the replies that follow the commit."""

    stores: dict[str, list[Segment]] = field(default_factory=dict)
    replies: list[Outgoing] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    statuses: list[ReaderStatusRecord] = field(default_factory=list)
    heartbeats: dict[str, ReaderHeartbeatRecord] = field(default_factory=dict)  # the newest per reader
    health: list[Step] = field(default_factory=list)  # antenna_health rows (gateway.antennas)
    rates: list[Step] = field(default_factory=list)  # learned read rates (gateway.read_rates)
    anomalies: list[Step] = field(default_factory=list)  # tag anomalies found or grown (gateway.anomaly_store)
    receipts: list[Receipt] = field(default_factory=list)  # acknowledge these after the commit
    messages: int = 0

    def __bool__(self) -> bool:
        return bool(
            self.stores
            or self.replies
            or self.rejects
            or self.statuses
            or self.heartbeats
            or self.health
            or self.rates
            or self.anomalies
            or self.receipts
        )

    def segment(self, store_id: str, batches: bool) -> Segment:
        """The store's last segment if it is of this kind (a run of batches or not), else a new one."""
        segments = self.stores.setdefault(store_id, [])
        if segments and (segments[-1].batches is not None) == batches:
            return segments[-1]
        segment = Segment([] if batches else None)
        segments.append(segment)
        return segment

    def batches(self, store_id: str) -> list[PreparedBatch]:
        """The run of batches a new read batch of this store joins."""
        batches = self.segment(store_id, batches=True).batches
        assert batches is not None
        return batches
