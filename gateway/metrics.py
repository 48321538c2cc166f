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
        self.items = Gauge("tagledger_items_tracked", "Items held by the state machines.", registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)
