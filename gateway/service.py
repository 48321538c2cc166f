"""The gateway process: broker in, ledger out.

``run(settings)`` composes the resources (ledger, store leases, health
endpoint) with an ``AsyncExitStack`` and runs named tasks in a ``TaskGroup``:

* ``receive`` — the MQTT session (``gateway.session``): connect (reconnecting
  with jittered backoff), subscribe, and *prepare* each message in arrival order
  (validation, de-duplication, state machine; ``gateway.ingest``) into the open
  group;
* ``commit`` — commit grouping (``gateway.grouping``): whenever the previous
  commit is done, take the whole open group and commit it (one ledger
  transaction per store for all its batches), then publish the acks and dead
  letters and PUBACK the messages;
* ``tick`` — the state machines' silence timers, into the open group too;
* ``reorder`` — batches held because they arrived ahead of a missing
  predecessor (``gateway.reorder``) and waited ``reorder_wait_s`` for it in
  vain, into the open group too;
* ``leases`` (PostgreSQL) — share the stores with the other gateways
  (``gateway.lease_loop``).

Shutdown (the task running :meth:`Gateway.run` cancelled) drains, then
cancels: no new message is prepared, the commit under way and the open group
are committed and their acks published and PUBACKed (for at most
``DRAIN_LIMIT_S``), then the tasks are cancelled, the connection closed, and the
cancellation goes on to the caller.  What was received but not prepared is not
acknowledged: the broker delivers it again to the next session.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
from collections.abc import Callable
from contextlib import AsyncExitStack

from gateway.grouping import CommitGroups
from gateway.health import HealthServer
from gateway.ingest import Ingestor
from gateway.lease_loop import DRAIN_LIMIT_S, LeaseKeeper
from gateway.leases import StoreLeases
from gateway.metrics import GatewayMetrics
from gateway.policy import DEFAULT_POLICY, Policy
from gateway.session import MqttSession
from gateway.settings import GatewaySettings
from gateway.state import StoreTracker
from gateway.work import Outgoing, Receipt
from tagledger.clock import Clock, SystemClock
from tagledger.ledger import open_ledger
from tagledger.ledger.migrate import migrate
from tagledger.ledger.repository import LedgerWriter
from tagledger.ledger.urls import parse as parse_ledger_url
from tagledger.site import Site, Store, load_site
from tagledger.wire import Topics

log = logging.getLogger(__name__)


class Gateway:
    """A running gateway; ``ready`` is set once the ledger is loaded and the broker subscribed."""

    def __init__(self, settings: GatewaySettings, clock: Clock | None = None, policy: Policy | None = None) -> None:
        self.settings = settings
        # The state machine's knobs; the defaults but for an embedded demo (tagledger.app.stack).
        self.policy = policy or DEFAULT_POLICY
        self.clock = clock or SystemClock()
        self.metrics = GatewayMetrics()
        self.topics = Topics(settings.topic_root)
        self.ready = asyncio.Event()
        self.ingestor: Ingestor | None = None
        self.groups: CommitGroups | None = None
        self.session: MqttSession | None = None
        self.health_port: int | None = None
        self.leases: StoreLeases | None = None
        self._site: Site | None = None
        self.metrics.stalled.set_function(self.stalled_s)

    # ------------------------------------------------------------------ #

    async def run(self) -> None:
        """Run until cancelled; then drain (see the module's docstring) and re-raise the cancellation."""
        s = self.settings
        site = self._site = load_site(s.site)
        async with AsyncExitStack() as stack:
            if s.migrate:
                await migrate(s.database_url)
            ledger = await open_ledger(s.database_url)
            stack.push_async_callback(ledger.close)
            postgres = parse_ledger_url(s.database_url).backend == "postgresql"
            if s.leases and postgres:
                self.leases = StoreLeases(parse_ledger_url(s.database_url).target, application_name=s.client_id)
                stack.push_async_callback(self.leases.close)
            leases = self.leases
            ingestor = self.ingestor = Ingestor(
                site,
                ledger,
                self.topics,
                self.clock,
                self.metrics,
                s.stores,
                ledger_for=self._ledger_for(ledger),
                reorder_wait_s=s.reorder_wait_s,
                reorder_max_held=s.reorder_max_held,
                clock_skew_s=s.clock_skew_s,
                tracker_factory=self._tracker,
            )
            groups = self.groups = CommitGroups(ingestor, self.metrics, s.group_max_messages, self._deliver)
            keeper = None
            if leases is None:
                await ingestor.load()
            else:
                keeper = LeaseKeeper(leases, ingestor, groups, self._candidate_stores, self.metrics, s.lease_poll_s)
                await keeper.poll()
            self.metrics.stores_held.set(len(ingestor.trackers))
            held = None if leases is None else (lambda: set(ingestor.trackers))
            session = self.session = MqttSession(
                s, self.topics, self.metrics, groups, self.ready, held, self._candidate_stores
            )
            if keeper is not None:
                keeper.session = session
            _freeze_heap()
            if s.health_port is not None:
                health = await stack.enter_async_context(
                    HealthServer(s.health_host, s.health_port, ready=self._is_ready, metrics=self.metrics.render)
                )
                self.health_port = health.port
            async with asyncio.TaskGroup() as tg:
                tasks = [
                    tg.create_task(session.run(), name="gateway-receive"),
                    tg.create_task(groups.commit_loop(), name="gateway-commit"),
                    tg.create_task(groups.ticks(s.tick_interval_s), name="gateway-tick"),
                ]
                if s.reorder_wait_s > 0:
                    tasks.append(tg.create_task(groups.release_held(), name="gateway-reorder"))
                if keeper is not None:
                    tasks.append(tg.create_task(keeper.run(), name="gateway-leases"))
                try:
                    await asyncio.Event().wait()  # until cancelled (or a task fails)
                except asyncio.CancelledError:
                    if not any(t.done() for t in tasks):  # cancelled from outside, not by a failed task
                        await self._drain(groups)
                    raise

    async def _drain(self, groups: CommitGroups) -> None:
        """Commit what was prepared and deliver its acks while the connection is still open."""
        groups.close()
        try:
            async with asyncio.timeout(DRAIN_LIMIT_S):
                await groups.idle()
        except TimeoutError:
            log.warning("stopping before the last group was committed; the broker delivers it again")

    async def _deliver(self, replies: list[Outgoing], receipts: list[Receipt]) -> None:
        if self.session is not None:
            await self.session.deliver(replies, receipts)

    def _tracker(self, store: Store, clock: Clock) -> StoreTracker:
        return StoreTracker(store, clock, policy=self.policy)

    def _ledger_for(self, ledger: LedgerWriter) -> Callable[[str], LedgerWriter]:
        def ledger_for(store_id: str) -> LedgerWriter:
            if self.leases is not None and store_id in self.leases.held():
                return self.leases.ledger(store_id)
            return ledger

        return ledger_for

    def _candidate_stores(self) -> list[str]:
        assert self._site is not None
        wanted = self.settings.stores
        return [st.id for st in self._site.stores if not wanted or st.id in wanted]

    # ------------------------------------------------------------------ #
    # Health

    async def _is_ready(self) -> bool:
        return self.ready.is_set() and not self.stalled() and not self.dropping()

    def stalled_s(self) -> float:
        """How long the oldest unfinished step (prepare or commit) has been running; 0 when none is."""
        return self.groups.stalled_s() if self.groups is not None else 0.0

    def stalled(self) -> bool:
        """Ingestion stuck: messages wait and no commit has ended for ``stall_after_s``."""
        return self.stalled_s() > self.settings.stall_after_s

    def dropping(self) -> bool:
        """The broker dropped messages within the last ``dropped_unready_s``."""
        at = self.session.dropped_at if self.session is not None else None
        return at is not None and time.monotonic() - at < self.settings.dropped_unready_s


def _freeze_heap() -> None:
    """Take what exists after start-up (imported modules, loaded items) out of the cyclic GC's walks.

    A full collection walks every tracked object: the imports alone leave ~99,000
    (pydantic, asyncpg, aiomqtt, epcpy, ...), plus ~3 per loaded item.  Measured
    on a busy 2-core host with 30,000 items made after start-up: a full
    collection took ~90 ms, a stall of ingestion, and 10-18 ms with the start-up
    heap frozen.  These objects live as long as the process, so they are frozen
    once, after a collection has removed the garbage of start-up; objects made
    later are collected as usual.
    """
    gc.collect()
    gc.freeze()


async def run(settings: GatewaySettings) -> None:
    """Run a gateway until cancelled; the cancellation is re-raised once it has drained."""
    await Gateway(settings).run()
