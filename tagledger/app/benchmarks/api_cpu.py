"""``tagledger bench api-cpu``: the API's CPU per availability look-up and per ``/healthz``, in process, no network.

``tagledger bench api`` needs an idle machine: its rates and its ratio of the
look-up to ``/healthz`` move with whatever else runs.  Its
``server_cpu_us_per_request`` figures move much less, and the look-up's share
of them that is not the HTTP server (the app: middleware, routing, auth, the
ledger call through asyncpg, the answer) is what a change to the route can
lower.  This measures that share alone: the app as ``tagledger api`` builds it
(auth on, the rate limiter on with a budget nobody spends, uvloop,
``gc.freeze`` after startup) against a throwaway PostgreSQL ledger loaded as
``bench api`` loads it, called straight through ASGI by ``--concurrency``
closed-loop callers (the look-ups gather into shared statements as they do
under load), with ``time.process_time`` around ``--requests`` requests of each
route, alternately, ``--rounds`` times.  The PostgreSQL backends' CPU per
look-up is reported beside it (from ``/proc``, local server only).

The HTTP server's own work (parsing, writing, the connection's task) is not in
these figures; it is the same for both routes, so the difference
``lookup - healthz`` is what the look-up costs beyond a trivial request.

``--compare DIR`` measures another checkout (a ``git worktree`` of an older
commit) in the same run, interleaved ``--pairs`` times, each run in its own
interpreter: compare the minima.

    tagledger bench api-cpu --json
    tagledger bench api-cpu --compare /tmp/old-checkout --pairs 3 --json
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import json
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

if __name__ == "__main__":  # script mode: nothing of the package before checkouts.use_tree
    _spec = importlib.util.spec_from_file_location("checkouts", Path(__file__).with_name("checkouts.py"))
    assert _spec is not None
    assert _spec.loader is not None
    checkouts = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(checkouts)
else:
    from tagledger.app.benchmarks import checkouts

STORES, GTINS = 100, 2_000


async def _lifespan(app: Any) -> tuple[dict[str, Any], asyncio.Queue[dict[str, Any]], asyncio.Task[None]]:
    """Start the app's lifespan as an ASGI server does; returns its state, the shutdown queue and the task."""
    state: dict[str, Any] = {}
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    started: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    await inbox.put({"type": "lifespan.startup"})

    async def send(message: dict[str, Any]) -> None:
        if not started.done() and message["type"].startswith("lifespan.startup."):
            started.set_result(message["type"])

    task = asyncio.create_task(app({"type": "lifespan", "asgi": {"version": "3.0"}, "state": state}, inbox.get, send))
    if await started != "lifespan.startup.complete":
        raise RuntimeError("the app failed to start")
    return state, inbox, task


async def _measure(args: argparse.Namespace) -> dict[str, Any]:
    import asyncpg  # noqa: PLC0415
    import yaml  # noqa: PLC0415

    from cloud.app import create_app  # noqa: PLC0415
    from cloud.auth import tokens  # noqa: PLC0415
    from cloud.auth.repository import ApiKeyRecord, add_api_key  # noqa: PLC0415
    from cloud.settings import ApiSettings  # noqa: PLC0415
    from tagledger.app.benchmarks.api import CpuMeter, gtin_list, load, site_data  # noqa: PLC0415
    from tagledger.clock import SystemClock  # noqa: PLC0415
    from tagledger.ledger import open_ledger  # noqa: PLC0415
    from tagledger.ledger.migrate import migrate  # noqa: PLC0415
    from tagledger.ledger.scratch import scratch_database  # noqa: PLC0415

    name = f"tagledger_bench_api_cpu_{uuid.uuid4().hex[:8]}"
    stores = [f"store-{s:04d}" for s in range(STORES)]
    gtins = gtin_list(GTINS)
    async with scratch_database(args.database_url, name) as url:
        await migrate(url)
        await load(url, items=args.items, stores=stores, gtins=gtins)
        key_id, token = tokens.new_token()
        ledger = await open_ledger(url)
        try:
            record = ApiKeyRecord(
                id=key_id,
                secret_sha256=tokens.digest(token),
                name="bench",
                scopes=("availability:read",),
                stores=None,
                created_us=SystemClock().now_us(),
            )
            await add_api_key(ledger, record)
        finally:
            await ledger.close()
        admin = await asyncpg.connect(args.database_url)
        with tempfile.TemporaryDirectory() as tmp:
            site = Path(tmp) / "site.yaml"
            site.write_text(yaml.safe_dump(site_data(STORES)))
            # As ``bench api`` starts the server: auth on, the limiter on with a budget nobody spends.
            settings = ApiSettings(database_url=url, site=site, auth_required=True, rate_limit_per_s=1e9)
            app = create_app(settings)
            state, inbox, lifespan = await _lifespan(app)
            try:
                gc.collect()
                gc.freeze()  # as cloud.server does once the app is up
                return await _rounds(args, app, state, token, stores, gtins, CpuMeter(os.getpid(), admin, name))
            finally:
                await inbox.put({"type": "lifespan.shutdown"})
                await lifespan
                await admin.close()


async def _rounds(
    args: argparse.Namespace,
    app: Any,
    state: dict[str, Any],
    token: str,
    stores: list[str],
    gtins: list[str],
    meter: Any,
) -> dict[str, Any]:
    rng = random.Random(args.seed)
    lookups = [f"/v1/stores/{rng.choice(stores)}/availability/{rng.choice(gtins)}" for _ in range(10_000)]
    headers = [(b"host", b"127.0.0.1:8080"), (b"authorization", f"Bearer {token}".encode())]
    statuses: dict[int, int] = {}
    body = {"type": "http.request", "body": b"", "more_body": False}

    async def receive() -> dict[str, Any]:
        return body

    async def call(path: str) -> None:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1",
            "server": ("127.0.0.1", 8080),
            "client": ("127.0.0.1", 50000),
            "scheme": "http",
            "method": "GET",
            "root_path": "",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "headers": headers,
            "state": state.copy(),  # as uvicorn hands each request a copy of the lifespan state
        }
        status = 0

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await app(scope, receive, send)
        statuses[status] = statuses.get(status, 0) + 1

    async def phase(paths: list[str], n: int) -> tuple[float, float]:
        """``n`` requests over ``--concurrency`` closed-loop callers: (process CPU s, database CPU s)."""
        left = [n]

        async def caller(r: random.Random) -> None:
            while left[0] > 0:
                left[0] -= 1
                await call(paths[r.randrange(len(paths))])

        before = await meter.snapshot()
        c0 = time.process_time()
        await asyncio.gather(*(caller(random.Random(rng.random())) for _ in range(args.concurrency)))
        cpu = time.process_time() - c0
        db = meter.spent(before, await meter.snapshot()).get("db", 0.0)
        return cpu, db

    await phase(lookups, args.requests)  # warm-up: pools, caches, plans
    await phase(["/healthz"], args.requests)
    statuses.clear()
    runs: dict[str, list[float]] = {"lookup": [], "healthz": [], "lookup_db": []}
    for _ in range(args.rounds):
        cpu, db = await phase(lookups, args.requests)
        runs["lookup"].append(cpu / args.requests * 1e6)
        runs["lookup_db"].append(db / args.requests * 1e6)
        cpu, _ = await phase(["/healthz"], args.requests)
        runs["healthz"].append(cpu / args.requests * 1e6)
    out: dict[str, Any] = {}
    for key, values in runs.items():
        out[f"{key}_cpu_us_min"] = round(min(values), 1)
        out[f"{key}_cpu_us_median"] = round(statistics.median(values), 1)
    out["lookup_minus_healthz_us_min"] = round(out["lookup_cpu_us_min"] - out["healthz_cpu_us_min"], 1)
    out["non_200"] = sum(n for s, n in statuses.items() if s != 200)
    return out


def _inner(args: argparse.Namespace) -> dict[str, Any]:
    try:
        import uvloop  # noqa: PLC0415 - as tagledger api serves
    except ImportError:
        factory = None
    else:
        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        figures = runner.run(_measure(args))
    import cloud  # noqa: PLC0415

    return {"tree": str(Path(cloud.__file__ or "").resolve().parent.parent), **figures}


def _compare(trees: list[str | None], args: argparse.Namespace) -> dict[str, Any]:
    passed = ["--items", str(args.items), "--requests", str(args.requests), "--rounds", str(args.rounds)]
    passed += ["--concurrency", str(args.concurrency), "--database-url", args.database_url]
    runs = checkouts.in_turn(__file__, passed, trees, args.pairs)
    keys = ("lookup_cpu_us_min", "healthz_cpu_us_min", "lookup_db_cpu_us_min", "lookup_minus_healthz_us_min")
    return {
        tree: {key: min(r[key] for r in results) for key in keys}
        | {"runs": len(results), "non_200": sum(r["non_200"] for r in results)}
        for tree, results in runs.items()
    }


def main(argv: list[str] | None = None) -> int:
    if __name__ == "__main__":
        parser: argparse.ArgumentParser = argparse.ArgumentParser(description=__doc__)
        parser.add_argument("--json", action="store_true")
        parser.add_argument("--database-url", default=os.environ.get("TAGLEDGER_TEST_DATABASE_URL"))
    else:
        from tagledger.app.benchmarks.args import add_database_url, bench_parser  # noqa: PLC0415

        parser = bench_parser("api-cpu", __doc__)
        add_database_url(parser)
    parser.add_argument("--items", type=int, default=200_000, help="items to load (COPY), as bench api does")
    parser.add_argument("--requests", type=int, default=5_000, help="requests per route per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds, each the look-up then /healthz")
    parser.add_argument("--concurrency", type=int, default=16, help="closed-loop callers (bench api's connections)")
    parser.add_argument("--seed", type=int, default=1)
    checkouts.add_options(parser)
    args = parser.parse_args(argv)
    figures = _compare([None, *args.compare], args) if args.compare else _inner(args)
    if __name__ == "__main__":
        print(json.dumps(figures))
    else:
        from tagledger.app.benchmarks.args import report  # noqa: PLC0415

        report(figures, as_json=args.json)
    return 0


if __name__ == "__main__":
    if "--tree" in sys.argv:
        checkouts.use_tree(sys.argv[sys.argv.index("--tree") + 1])
    raise SystemExit(main())
