"""Prometheus metrics of one gateway process.

Each :class:`GatewayMetrics` owns its own registry, so several gateways can run
in one process (tests, the demo) without colliding on the global one.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.observations = Counter("tagledger_observations", "Observations received in valid batches.", registry=r)
        self.batches = Counter(
            "tagledger_batches", "Read batches by outcome.", ["result"], registry=r
        )  # committed / duplicate / rejected
        self.transitions = Counter(
            "tagledger_transitions", "Item state transitions written to the ledger.", ["to_state"], registry=r
        )
        self.rejects = Counter("tagledger_rejects", "Payloads sent to the dead letter.", ["reason"], registry=r)
        self.gaps = Counter("tagledger_gap_reads", "Reads agents reported as lost.", ["reason"], registry=r)
        self.commit_lag = Histogram(
            "tagledger_read_to_commit_seconds",
            "From the newest read in a batch (event time) to its commit.",
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600),
            registry=r,
        )
        self.readers_down = Gauge("tagledger_readers_down", "Readers reported down or offline.", registry=r)
        self.readers_stale = Gauge(
            "tagledger_readers_stale",
            "Readers whose agent said it was up but sent no heartbeat for three of its intervals.",
            registry=r,
        )
        self.items = Gauge("tagledger_items_tracked", "Items held by the state machines.", registry=r)
        # Readers that publish MQTT themselves (Impinj IoT device interface, Zebra IoT Connector).
        self.reader_payloads = Counter(
            "tagledger_reader_payloads", "Reader-published MQTT payloads ingested, by format.", ["format"], registry=r
        )
        self.skipped_events = Counter(
            "tagledger_reader_events_skipped",
            "Events inside a reader-published payload that were skipped, by reason.",
            ["reason"],
            registry=r,
        )
        self.gap_events = Counter(
            "tagledger_gap_events",
            "Gaps reported by readers (e.g. Impinj overflowEvent), by reason.",
            ["reason"],
            registry=r,
        )
        # Grouping: how many messages share one commit, and how long it takes.
        self.group_messages = Histogram(
            "tagledger_group_messages",
            "Messages prepared together and committed in one step.",
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000),
            registry=r,
        )
        self.commit_seconds = Histogram(
            "tagledger_commit_seconds",
            "Duration of one group's ledger commit.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5),
            registry=r,
        )
        # Batches that arrived ahead of a hole in their reader's seq (gateway.reorder).
        self.held_batches = Counter(
            "tagledger_held_batches",
            "Read batches held for a missing predecessor, by how the hold ended (in_order: the predecessor came;"
            " waited_out / buffer_full: processed without it; dropped: the store went to another gateway).",
            ["outcome"],
            registry=r,
        )
        self.skipped_seqs = Counter(
            "tagledger_skipped_seqs",
            "Batch seqs not received in time: later batches of their reader were processed before them.",
            registry=r,
        )
        self.seq_jumps = Counter(
            "tagledger_seq_jumps",
            "Read batches whose seq jumped more than MAX_SEQ_JUMP past what their stream expected: the stream"
            " restarts there (no resend requests, no skipped seqs counted).",
            registry=r,
        )
        self.resend_requests = Counter(
            "tagledger_resend_requests",
            "Missing batch seqs the gateway asked their agent to send again (a later batch arrived first).",
            registry=r,
        )
        self.held_now = Gauge(
            "tagledger_held_messages", "Messages held now, waiting for a missing predecessor.", registry=r
        )
        self.stores_held = Gauge("tagledger_stores_held", "Stores this gateway ingests now.", registry=r)
        # For the "ingestion stuck" alert (deploy/monitoring/): a gateway whose pump or
        # ledger hangs keeps serving /healthz, but this stops moving.  0 until the first commit.
        self.last_commit = Gauge(
            "tagledger_last_commit_timestamp_seconds",
            "Wall-clock time (Unix seconds) of this gateway's last successful ledger commit.",
            registry=r,
        )

        self.stalled = Gauge(
            "tagledger_ingest_stalled_seconds",
            "How long the oldest unfinished prepare or commit step has run (0: none); /readyz fails past"
            " stall_after_s.",
            registry=r,
        )
        self.broker_dropped = Gauge(
            "tagledger_broker_dropped_messages",
            "The broker's count of messages it dropped for queue or in-flight limits since it started"
            " ($SYS/broker/publish/messages/dropped); reader-published formats cannot be re-sent.",
            registry=r,
        )
        self.session_takeovers = Counter(
            "tagledger_session_takeovers",
            "Times the broker closed this gateway's MQTT session because another client connected with its"
            " client id (MQTT 5 reason 142).",
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
