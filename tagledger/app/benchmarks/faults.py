"""``tagledger bench faults``: a gateway under injected faults, and what became of every message.

What runs
    * a Mosquitto of the run's own (``tagledger.app.faults.Mosquitto``) on a free
      port, so it can be killed; a PostgreSQL database of the run's own
      (``--database-url`` is the administrative connection);
    * the gateway as a separate process (``python -m tagledger.app.cli gateway``),
      so it can be killed with SIGKILL;
    * in this process: an agent per scenario that publishes read batches and
      re-sends what is not acknowledged (as the edge agent does), a reader
      publishing Impinj and Zebra events (no re-send), and a source of poison
      payloads (each unique, so its dead letter can be found).

Scenarios, one after the other on the same stack, each with its own readers' boot
ids and EPCs: ``poison`` (a fifth of the messages are poison, no other fault),
``fuzz`` (``--fuzz-messages``, a third of them valid read batches, Impinj or Zebra
payloads with one to three fields replaced by edge values, or random bytes, or deep
nesting, seeded; here ``silently_dropped`` is what was published minus what the
gateway's own counters account for: dead letters, reader payloads and read batches
ingested),
``database_refuses`` (``ALTER DATABASE ... ALLOW_CONNECTIONS false`` and its
sessions terminated, for ``--fault-s``), ``broker_killed`` (SIGKILL, started again
after ``--fault-s``; read batches only: what a killed broker had not saved of a
reader-published message is gone, which is the broker's durability, not the
gateway's), ``gateway_killed`` (SIGKILL, started again after ``--fault-s``).

Figures per scenario (``--json``: one object per line, then the table as the last line)
    ``sent`` messages (valid + poison), ``dead_lettered`` poison payloads found in
    the rejects table, ``silently_dropped`` poison neither dead-lettered nor
    ingested (must be 0), ``valid_lost`` valid messages whose effects are not in
    the ledger (must be 0), ``doubled`` items that entered the ledger more than
    once (must be 0), ``dead_letters_twice`` poison dead-lettered more than once
    (allowed after a kill -9: see docs/reliability.md), ``recovery_s`` from the end
    of the fault to the first commit after it (for a killed process, counting its
    start, ``restart_s``: until its port or /readyz answers), ``not_ready_during_fault`` whether
    /readyz answered anything but 200 during the fault, ``ready_after`` whether it
    answered 200 at the end.  A benchmark: it asserts nothing about time.

    tagledger bench faults --json
    tagledger bench faults --fault-s 30 --rate 100 --json
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import httpx

from tagledger.app.benchmarks import fault_checks as checks
from tagledger.app.benchmarks.args import DEFAULT_ADMIN_URL, add_database_url, bench_parser
from tagledger.app.benchmarks.fault_sources import Agent, Publisher, Reader, fuzz_payload, poison
from tagledger.app.faults import Mosquitto
from tagledger.ledger.migrate import migrate
from tagledger.ledger.scratch import create_database, drop_database
from tagledger.site import EXAMPLE_SITE
from tagledger.wire import Topics

SCENARIOS = ("poison", "fuzz", "database_refuses", "broker_killed", "gateway_killed")


@dataclass
class Options:
    database_url: str = DEFAULT_ADMIN_URL  # administrative: the run creates its own database
    fault_s: float = 5.0
    before_s: float = 1.0
    after_s: float = 2.0
    rate: float = 50.0  # messages per second, all sources together
    drain_timeout_s: float = 60.0
    resend_s: float = 3.0  # the agent re-sends what is not acknowledged after this long
    scenarios: tuple[str, ...] = SCENARIOS
    fuzz_messages: int = 3000  # fuzz: messages in all (a third fuzzed)
    seed: int = 11
    work_dir: Path | None = None


@dataclass
class Row:
    fault: str
    sent: int = 0
    valid: int = 0
    poison: int = 0
    dead_lettered: int = 0
    silently_dropped: int = 0
    valid_lost: int = 0
    doubled: int = 0
    dead_letters_twice: int = 0
    recovery_s: float | None = None
    restart_s: float | None = None  # of recovery_s: starting the killed process until it answers
    not_ready_during_fault: bool | None = None
    ready_after: bool = False


# --------------------------------------------------------------------------- #
# The gateway process


class GatewayProcess:
    def __init__(self, work: Path, database_url: str, mqtt_url: str, topic_root: str) -> None:
        self.work = work
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.health_port = probe.getsockname()[1]
        self.args = [
            sys.executable, "-m", "tagledger.app.cli", "gateway",
            "--site", str(EXAMPLE_SITE), "--database-url", database_url, "--mqtt-url", mqtt_url,
            "--topic-root", topic_root, "--health-port", str(self.health_port),
            "--client-id", f"bench-gw-{uuid.uuid4().hex[:8]}",
        ]  # fmt: skip
        self.env = {**os.environ, "TAGLEDGER_GATEWAY_STALL_AFTER_S": "2", "TAGLEDGER_GATEWAY_MIGRATE": "false"}
        self.process: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        log = (self.work / "gateway.log").open("ab")
        self.process = subprocess.Popen(self.args, env=self.env, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603, ASYNC220
        deadline = time.monotonic() + 60
        while await self.ready() is not True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the gateway exited; see {self.work / 'gateway.log'}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the gateway did not become ready; see {self.work / 'gateway.log'}")
            await asyncio.sleep(0.1)

    async def ready(self) -> bool | None:
        """True: 200; False: another status; None: no answer (not running)."""
        try:
            async with httpx.AsyncClient(timeout=2) as http:
                return (await http.get(f"http://127.0.0.1:{self.health_port}/readyz")).status_code == 200
        except httpx.HTTPError:
            return None

    def kill(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None


# --------------------------------------------------------------------------- #
# Faults


async def _allow_connections(admin_url: str, name: str, allow: bool) -> None:
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(allow).lower()}')
        if not allow:
            await conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
                name,
            )
    finally:
        await conn.close()


@dataclass
class Stack:
    opts: Options
    admin_url: str
    db_name: str
    db_url: str
    broker: Mosquitto
    gateway: GatewayProcess
    topics: Topics
    marker: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    rejects_before: int = 0

    async def fault(self, name: str) -> None:
        if name == "database_refuses":
            await _allow_connections(self.admin_url, self.db_name, allow=False)
        elif name == "broker_killed":
            self.broker.kill()
        elif name == "gateway_killed":
            self.gateway.kill()

    async def repair(self, name: str) -> None:
        if name == "database_refuses":
            await _allow_connections(self.admin_url, self.db_name, allow=True)
        elif name == "broker_killed":
            await self.broker.start()
        elif name == "gateway_killed":
            await self.gateway.start()


async def _scenario(stack: Stack, name: str, index: int) -> Row:
    opts = stack.opts
    port = stack.broker.port
    row = Row(name)
    agent = Agent(stack.topics, port, boot=f"{name}-{stack.marker}", epc_base=index * 10**8, resend_s=opts.resend_s)
    reader = Reader(stack.topics, port, epc_base=index * 10**8 + 5 * 10**7)
    poisoner = Publisher(port, [], lambda _t, _p: None)
    poisons: list[bytes] = []
    with_readers = name != "broker_killed"
    poison_share = 0.2 if name == "poison" else 0.1 if with_readers else 0.0
    await asyncio.sleep(0.5)  # the clients connect
    fault_at, fault_end = opts.before_s, opts.before_s + (opts.fault_s if name != "poison" else 0)
    total = fault_end + opts.after_s
    began = time.monotonic()
    faulted = repaired = False
    repaired_at = 0.0
    ready_seen: list[bool | None] = []
    probed = 0.0
    n = 0
    try:
        while (elapsed := time.monotonic() - began) < total:
            if not faulted and elapsed >= fault_at and name != "poison":
                await stack.fault(name)
                faulted = True
            if faulted and not repaired and elapsed >= fault_end:
                repaired_at = time.monotonic()  # recovery includes restarting what was killed
                await stack.repair(name)
                repaired = True
                row.restart_s = round(time.monotonic() - repaired_at, 3) if name.endswith("_killed") else None
            # Readiness, sampled from the time a stall is due (stall_after_s = 2 s) to the fault's end.
            if faulted and not repaired and elapsed >= fault_at + 2.2 and elapsed - probed >= 0.25:
                probed = elapsed
                ready_seen.append(await stack.gateway.ready())
            share = (n % 10) / 10
            if share < poison_share:
                topic, payload = poison(stack.topics, n, f"{stack.marker}-{name}")
                poisons.append(payload)
                poisoner.publish(topic, payload)
            elif with_readers and share < poison_share + 0.3:
                reader.send()
            else:
                agent.send()
            n += 1
            agent.resend_due()
            await asyncio.sleep(max(0.0, began + n / opts.rate - time.monotonic()))
        if faulted and not repaired:
            repaired_at = time.monotonic()
            await stack.repair(name)
            repaired = True
        # Drain: every batch acknowledged, every reader message's item in the ledger.
        deadline = time.monotonic() + opts.drain_timeout_s
        while time.monotonic() < deadline:
            agent.resend_due()
            if not agent.pending and await checks.missing(stack.db_url, reader.epcs) == 0:
                break
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)  # the dead letters of the last group
        row.poison = len(poisons)
        row.valid = agent.sent + len(reader.epcs)
        row.sent = row.valid + row.poison
        found, twice = await checks.dead_letters(stack.db_url, poisons)
        row.dead_lettered, row.dead_letters_twice = found, twice
        row.silently_dropped = row.poison - found
        row.valid_lost = len(agent.pending) + await checks.missing(stack.db_url, reader.epcs + agent.epcs)
        row.doubled = await checks.doubled(stack.db_url, reader.epcs + agent.epcs)
        if repaired:
            after = [t for t in agent.ack_times if t >= repaired_at]
            row.recovery_s = round(min(after) - repaired_at, 3) if after else None
            row.not_ready_during_fault = any(r is not True for r in ready_seen) if ready_seen else None
        row.ready_after = await _eventually_ready(stack.gateway)
    finally:
        for c in (agent.pub, reader.pub, poisoner):
            c.close()
    return row


async def _fuzz_scenario(stack: Stack, index: int) -> Row:
    """The probe's fuzzing through the real gateway: every message must be dead-lettered or ingested, and counted.

    ``silently_dropped``: messages published minus messages the gateway's own
    counters account for (dead letters, reader payloads ingested, read batches
    committed, duplicate or rejected).
    """
    opts = stack.opts
    rng = random.Random(opts.seed)
    port = stack.broker.port
    row = Row("fuzz")
    agent = Agent(stack.topics, port, boot=f"fuzz-valid-{stack.marker}", epc_base=index * 10**8, resend_s=opts.resend_s)
    reader = Reader(stack.topics, port, epc_base=index * 10**8 + 5 * 10**7)
    fuzzer = Publisher(port, [], lambda _t, _p: None)
    await asyncio.sleep(0.5)
    before = checks.accounted(await checks.gateway_metrics(stack.gateway.health_port))
    fuzzed = 0
    began = time.monotonic()
    try:
        for n in range(opts.fuzz_messages):
            if n % 3 == 0:
                fuzzer.publish(*fuzz_payload(rng, stack.topics, fuzzed))
                fuzzed += 1
            elif n % 3 == 1:
                reader.send()
            else:
                agent.send()
            agent.resend_due()
            await asyncio.sleep(max(0.0, began + n / (opts.rate * 4) - time.monotonic()))
        deadline = time.monotonic() + opts.drain_timeout_s
        sent = 0
        last, stable_since = -1.0, time.monotonic()
        while time.monotonic() < deadline:
            agent.resend_due()
            sent = fuzzed + len(reader.epcs) + agent.published
            accounted = checks.accounted(await checks.gateway_metrics(stack.gateway.health_port)) - before
            if accounted != last:
                last, stable_since = accounted, time.monotonic()
            # Held batches wait up to reorder_wait_s (3 s) for their predecessors.
            if (not agent.pending and accounted >= sent) or time.monotonic() - stable_since > 5:
                break
            await asyncio.sleep(0.2)
        row.poison = fuzzed
        row.valid = agent.sent + len(reader.epcs)
        row.sent = fuzzed + row.valid
        row.silently_dropped = int(sent - last)
        row.dead_lettered = await checks.rejects_count(stack.db_url) - stack.rejects_before
        row.valid_lost = len(agent.pending) + await checks.missing(stack.db_url, reader.epcs + agent.epcs)
        row.doubled = await checks.doubled(stack.db_url, reader.epcs + agent.epcs)
        row.ready_after = await _eventually_ready(stack.gateway)
    finally:
        for c in (agent.pub, reader.pub, fuzzer):
            c.close()
    return row


async def _eventually_ready(gateway: GatewayProcess, within_s: float = 15) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if await gateway.ready():
            return True
        await asyncio.sleep(0.2)
    return False


@contextlib.asynccontextmanager
async def _stack(opts: Options) -> AsyncIterator[Stack]:
    work = opts.work_dir or Path(tempfile.mkdtemp(prefix="tagledger-faults-"))
    name = f"tagledger_faults_{uuid.uuid4().hex[:8]}"
    db_url = await create_database(opts.database_url, name)
    try:
        await migrate(db_url)
        async with Mosquitto(work / "broker", max_queued_messages=100_000) as broker:
            root = f"faults-{uuid.uuid4().hex[:8]}"
            gateway = GatewayProcess(work, db_url, broker.url, root)
            await gateway.start()
            try:
                yield Stack(opts, opts.database_url, name, db_url, broker, gateway, Topics(root))
            finally:
                gateway.stop()
    finally:
        with contextlib.suppress(Exception):
            await _allow_connections(opts.database_url, name, allow=True)
        await drop_database(opts.database_url, name)


async def run(opts: Options) -> list[Row]:
    rows = []
    async with _stack(opts) as stack:
        for i, name in enumerate(opts.scenarios):
            if name == "fuzz":
                stack.rejects_before = await checks.rejects_count(stack.db_url)
                rows.append(await _fuzz_scenario(stack, i + 1))
            else:
                rows.append(await _scenario(stack, name, i + 1))
    return rows


def table(rows: list[Row]) -> str:
    cols = ["fault", "sent", "valid", "poison", "dead_lettered", "silently_dropped", "valid_lost", "doubled",
            "dead_letters_twice", "recovery_s", "restart_s", "not_ready_during_fault", "ready_after"]  # fmt: skip
    lines = ["| " + " | ".join(cols) + " |", "|" + " --- |" * len(cols)]
    for r in rows:
        d = asdict(r)
        lines.append("| " + " | ".join("–" if d[c] is None else str(d[c]) for c in cols) + " |")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    p = bench_parser("faults", __doc__.split("\n\n")[0], json_help="One JSON object per scenario, then the table.")
    add_database_url(p)
    p.add_argument("--fault-s", type=float, default=5.0, help="How long each fault lasts.")
    p.add_argument("--rate", type=float, default=50.0, help="Messages per second, all sources together.")
    p.add_argument("--scenario", action="append", choices=SCENARIOS, help="Run only these (repeat).")
    p.add_argument("--fuzz-messages", type=int, default=3000, help="fuzz: messages in all, a third of them fuzzed.")
    args = p.parse_args(argv)
    if urlsplit(args.database_url).scheme not in ("postgresql", "postgres"):
        p.error("--database-url must be a PostgreSQL URL")
    opts = Options(
        database_url=args.database_url,
        fault_s=args.fault_s,
        rate=args.rate,
        scenarios=tuple(args.scenario or SCENARIOS),
        fuzz_messages=args.fuzz_messages,
    )
    rows = asyncio.run(run(opts))
    if args.json:
        for r in rows:
            print(json.dumps(asdict(r), sort_keys=True))
    print(table(rows))
    return 0
