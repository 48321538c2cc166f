"""``tagledger audit ...``: the auditor tools from a shell, straight on the ledger.

Registered in ``cli.py`` with one line.  The same service functions as the API's
``/v1/audit`` routes (``cloud.audit.service``), so a file written here equals the one
the API serves.  Changes (imports, approvals, counts) are logged with the actor given by
``--actor`` (default: ``cli:<login name>``).
"""

from __future__ import annotations

import asyncio
import getpass
import json
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from tagledger.app.cli_common import fail
from tagledger.paths import default_ledger_url
from tagledger.site import EXAMPLE_SITE

if TYPE_CHECKING:
    from tagledger.ledger.repository import Ledger
    from tagledger.site import Site

T = TypeVar("T")

#: The embedded ledger in the per-user state directory, as for the other commands.
DEFAULT_LEDGER_URL = default_ledger_url()

audit_app = typer.Typer(
    help="Auditor tools: stock CSV, count sessions, ERP book stock and differences, KPIs, EPCIS 2.0 export.",
    no_args_is_help=True,
)
count_app = typer.Typer(
    help="Count sessions: open, send reads, show coverage, close with a result.", no_args_is_help=True
)
audit_app.add_typer(count_app, name="count")

DatabaseOpt = Annotated[
    str,
    typer.Option(
        "--database-url",
        envvar="TAGLEDGER_DATABASE_URL",
        help="Ledger database: postgresql://user@host:5432/db, or sqlite:///path/file.sqlite.",
    ),
]
SiteOpt = Annotated[
    Path,
    typer.Option("--site", envvar="TAGLEDGER_SITE", help="Site file (YAML). Default: the bundled example store."),
]
ActorOpt = Annotated[
    str | None,
    typer.Option("--actor", envvar="TAGLEDGER_ACTOR", help="Who does this, for the audit log (default cli:<login>)."),
]
OutOpt = Annotated[Path | None, typer.Option("--out", "-o", help="Write to this file (default: standard output).")]
StoreOpt = Annotated[str, typer.Option("--store", help="Store id.")]


class Period(StrEnum):
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"


def _actor(actor: str | None) -> str:
    if actor:
        return actor
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def _time(text: str, option: str) -> int:
    from tagledger.clock import datetime_to_us, us_to_datetime  # noqa: PLC0415

    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        fail(f"{option}: {text!r} is not an RFC 3339 time (e.g. 2026-01-01T00:00:00Z)")
    if value.tzinfo is None:
        fail(f"{option}: {text!r} has no offset (e.g. 2026-01-01T00:00:00+01:00)")
    try:
        us = datetime_to_us(value)
        us_to_datetime(us)  # year 1 with a positive offset is year 0 in UTC
    except (OverflowError, ValueError, OSError):
        fail(f"{option}: {text!r} is out of range")
    return us


def _run(database_url: str, site_path: Path, fn: Callable[[Ledger, Site], Awaitable[T]]) -> T:
    """Open the ledger and the site, run ``fn``; API errors and ledger errors become messages."""
    from cloud.errors import ApiError  # noqa: PLC0415  (server libraries only when used)
    from tagledger.ledger import open_ledger  # noqa: PLC0415
    from tagledger.ledger.repository import LedgerError  # noqa: PLC0415
    from tagledger.site import SiteError, load_site  # noqa: PLC0415

    try:
        site = load_site(site_path)
    except SiteError as exc:
        fail(str(exc))

    async def go() -> T:
        ledger = await open_ledger(database_url)
        try:
            return await fn(ledger, site)
        finally:
            await ledger.close()

    try:
        return asyncio.run(go())
    except ApiError as exc:
        details = f" {json.dumps(exc.details)}" if exc.details else ""
        fail(f"{exc.message} ({exc.code}){details}")
    except LedgerError as exc:
        fail(str(exc))


def _write(text: str, out: Path | None) -> None:
    if out is None:
        sys.stdout.write(text)
        if not text.endswith("\n"):
            sys.stdout.write("\n")
    else:
        out.write_text(text, encoding="utf-8")


def _now() -> int:
    from tagledger.clock import SystemClock  # noqa: PLC0415

    return SystemClock().now_us()


def _dump(model: Any) -> str:
    return str(model.model_dump_json(indent=2))


@audit_app.command("stock")
def stock(
    store: StoreOpt,
    as_of: Annotated[str | None, typer.Option("--as-of", help="RFC 3339 time; default now.")] = None,
    out: OutOpt = None,
    database_url: DatabaseOpt = DEFAULT_LEDGER_URL,
    site: SiteOpt = EXAMPLE_SITE,
) -> None:
    """Stock of a store as CSV, now or at any past moment (columns: store_id, as_of, gtin, product, zone, state,
    count, on_hand)."""
    from cloud.audit import service  # noqa: PLC0415

    as_of_us = None if as_of is None else _time(as_of, "--as-of")
    now = _now()
    text = _run(
        database_url, site, lambda ledger, s: service.stock_as_csv(ledger, s, store, as_of_us=as_of_us, now_us=now)
    )
    _write(text, out)


@audit_app.command("epcis")
def epcis(
    store: StoreOpt,
    from_: Annotated[str, typer.Option("--from", help="Events at or after this time (RFC 3339).")],
    to: Annotated[str, typer.Option("--to", help="Events before this time (RFC 3339).")],
    out: OutOpt = None,
    database_url: DatabaseOpt = DEFAULT_LEDGER_URL,
    site: SiteOpt = EXAMPLE_SITE,
    actor: ActorOpt = None,
) -> None:
    """EPCIS 2.0 JSON-LD document of the store's item events (ObjectEvents, CBV 2.0, hashed event ids)."""
    from cloud.audit import service  # noqa: PLC0415

    from_us, to_us, now, who = _time(from_, "--from"), _time(to, "--to"), _now(), _actor(actor)
    doc = _run(
        database_url,
        site,
        lambda ledger, s: service.epcis_document(ledger, s, store, from_us=from_us, to_us=to_us, now_us=now, actor=who),
    )
    _write(json.dumps(doc, indent=2, ensure_ascii=False), out)
    typer.echo(f"{len(doc['epcisBody']['eventList'])} events", err=True)


@audit_app.command("import-book")
def import_book(
    file: Annotated[Path, typer.Argument(help="CSV: store,gtin,quantity,as_of[,unit_price]", exists=True)],
    database_url: DatabaseOpt = DEFAULT_LEDGER_URL,
    site: SiteOpt = EXAMPLE_SITE,
    actor: ActorOpt = None,
) -> None:
    """Import ERP book stock; prints one line per import (id, store, as-of, lines).  All or nothing."""
    from cloud.audit import service  # noqa: PLC0415

    text = file.read_text(encoding="utf-8-sig")
    now, who = _now(), _actor(actor)
    imports = _run(
        database_url,
        site,
        lambda ledger, s: service.import_book(ledger, s, text, now_us=now, actor=who, source=file.name, allowed=None),
    )
    for i in imports:
        typer.echo(f"{i.id}  {i.store_id}  {i.as_of.isoformat()}  {i.lines} lines")


@audit_app.command("differences")
def differences(
    import_id: Annotated[str, typer.Argument(help="Book import id (bk_...).")],
    as_json: Annotated[bool, typer.Option("--json", help="The whole report as JSON.")] = False,
    database_url: DatabaseOpt = DEFAULT_LEDGER_URL,
    site: SiteOpt = EXAMPLE_SITE,
) -> None:
    """RFID vs book per GTIN at the book's as-of time: over, under, value, approvals."""
    from cloud.audit import service  # noqa: PLC0415

    report = _run(database_url, site, lambda ledger, s: service.difference_report(ledger, s, import_id))
    if as_json:
        typer.echo(_dump(report))
        return
    typer.echo(f"{'gtin':14}  {'book':>6}  {'rfid':>6}  {'diff':>6}  {'value':>10}  approved by")
    for line in report.lines:
        value = "" if line.value is None else f"{line.value:.2f}"
        who = line.approval.approved_by if line.approval else ""
        typer.echo(f"{line.gtin:14}  {line.book:6d}  {line.rfid:6d}  {line.difference:+6d}  {value:>10}  {who}")
    t = report.totals
    typer.echo(f"over {t.over_units}, under {t.under_units}, difference rate {t.difference_rate:.2%}")


@audit_app.command("approve")
def approve(
    import_id: Annotated[str, typer.Argument(help="Book import id (bk_...).")],
    gtin: Annotated[list[str] | None, typer.Option(help="Accept this GTIN's difference (repeat); default all.")] = None,
    note: Annotated[str, typer.Option(help="Why, for the audit log.")] = "",
    database_url: DatabaseOpt = DEFAULT_LEDGER_URL,
    site: SiteOpt = EXAMPLE_SITE,
    actor: ActorOpt = None,
) -> None:
    """Accept differences as adjustments, recorded with who accepted them."""
    from cloud.audit import service  # noqa: PLC0415
    from cloud.gtin import InvalidGtin, normalise_gtin  # noqa: PLC0415

    try:
        gtins = None if not gtin else [normalise_gtin(g) for g in gtin]
    except InvalidGtin as exc:
        fail(str(exc))
    now, who = _now(), _actor(actor)
    approved, _ = _run(
        database_url,
        site,
        lambda ledger, s: service.approve(ledger, s, import_id, gtins, note=note, now_us=now, actor=who),
    )
    typer.echo(f"approved {len(approved)}: {' '.join(approved)}" if approved else "nothing new to approve")


@audit_app.command("kpis")
def kpis(
    store: StoreOpt,
    from_: Annotated[str, typer.Option("--from", help="Start (RFC 3339).")],
    to: Annotated[str | None, typer.Option("--to", help="End (RFC 3339); default now.")] = None,
    period: Annotated[Period, typer.Option(help="Length of each point.")] = Period.DAY,
    database_url: DatabaseOpt = DEFAULT_LEDGER_URL,
    site: SiteOpt = EXAMPLE_SITE,
) -> None:
    """Accuracy KPIs per period, one JSON object per line."""
    from cloud.audit import service  # noqa: PLC0415

    from_us, now = _time(from_, "--from"), _now()
    to_us = now if to is None else _time(to, "--to")
    out = _run(
        database_url,
        site,
        lambda ledger, s: service.kpis(ledger, s, store, from_us=from_us, to_us=to_us, period=period.value),
    )
    for p in out.points:
        typer.echo(p.model_dump_json())


@count_app.command("open")
def count_open(
    store: StoreOpt,
    zone: Annotated[list[str] | None, typer.Option(help="Count this zone (repeat); default the whole store.")] = None,
    database_url: DatabaseOpt = DEFAULT_LEDGER_URL,
    site: SiteOpt = EXAMPLE_SITE,
    actor: ActorOpt = None,
) -> None:
    """Open a count: the items on hand now become what it expects.  Prints the count id."""
    from cloud.audit import service  # noqa: PLC0415

    now, who = _now(), _actor(actor)
    c = _run(database_url, site, lambda ledger, s: service.open_count(ledger, s, store, zone, now_us=now, actor=who))
    typer.echo(c.id)
    typer.echo(f"expects {c.coverage.expected} items", err=True)


@count_app.command("reads")
def count_reads(
    count_id: Annotated[str, typer.Argument(help="Count id (cnt_...).")],
    file: Annotated[Path, typer.Argument(help="Reads: one EPC (hex) per line, optionally ',zone'.", exists=True)],
    database_url: DatabaseOpt = DEFAULT_LEDGER_URL,
    site: SiteOpt = EXAMPLE_SITE,
) -> None:
    """Send a handheld's reads to an open count; prints its coverage."""
    from cloud.audit import service  # noqa: PLC0415
    from cloud.audit.counts import Sighting  # noqa: PLC0415

    reads = []
    for n, line in enumerate(file.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        epc, _, zone = line.strip().partition(",")
        if not epc or any(c not in "0123456789abcdefABCDEF" for c in epc):
            fail(f"{file}:{n}: {epc!r} is not a hex EPC")
        reads.append(Sighting(epc.upper(), zone.strip() or None))
    now = _now()
    c = _run(database_url, site, lambda ledger, s: service.add_reads(ledger, s, count_id, reads, now_us=now))
    typer.echo(_dump(c.coverage))


@count_app.command("follow")
def count_follow(
    count_id: Annotated[str, typer.Argument(help="Count id (cnt_...).")],
    # The gateway's broker and topic root, on the host where the gateway runs (the names of
    # earlier releases still read as well).
    mqtt_url: Annotated[
        str,
        typer.Option(
            "--mqtt-url",
            envvar=["TAGLEDGER_GATEWAY_MQTT_URL", "TAGLEDGER_MQTT_URL"],
            help="MQTT broker the store's readers publish to.",
        ),
    ] = "mqtt://127.0.0.1:1883",
    topic_root: Annotated[
        str,
        typer.Option(
            "--topic-root",
            envvar=["TAGLEDGER_GATEWAY_TOPIC_ROOT", "TAGLEDGER_TOPIC_ROOT"],
            help="First level of every tagledger topic.",
        ),
    ] = "tagledger",
    database_url: DatabaseOpt = DEFAULT_LEDGER_URL,
    site: SiteOpt = EXAMPLE_SITE,
) -> None:
    """Send the store's live reads (from MQTT) to an open count until it is closed or you press Ctrl-C."""
    from tagledger.app.audit_follow import CountGone, follow  # noqa: PLC0415  (MQTT client only when used)
    from tagledger.clock import SystemClock  # noqa: PLC0415

    typer.echo(f"following the store's reads for {count_id}; Ctrl-C to stop", err=True)
    try:
        sent = _run(
            database_url,
            site,
            lambda ledger, s: follow(
                ledger, s, count_id, mqtt_url=mqtt_url, topic_root=topic_root, clock=SystemClock()
            ),
        )
    except CountGone as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        typer.echo("stopped", err=True)
        return
    typer.echo(f"the count is closed; {sent} reads sent", err=True)


@count_app.command("show")
def count_show(
    count_id: Annotated[str, typer.Argument(help="Count id (cnt_...).")],
    database_url: DatabaseOpt = DEFAULT_LEDGER_URL,
    site: SiteOpt = EXAMPLE_SITE,
) -> None:
    """A count as JSON: coverage, and its result once closed."""
    from cloud.audit import service  # noqa: PLC0415

    typer.echo(_dump(_run(database_url, site, lambda ledger, s: service.get_count(ledger, s, count_id))))


@count_app.command("close")
def count_close(
    count_id: Annotated[str, typer.Argument(help="Count id (cnt_...).")],
    database_url: DatabaseOpt = DEFAULT_LEDGER_URL,
    site: SiteOpt = EXAMPLE_SITE,
    actor: ActorOpt = None,
) -> None:
    """Close a count and print its result (per GTIN expected vs counted, missing items) as JSON."""
    from cloud.audit import service  # noqa: PLC0415

    now, who = _now(), _actor(actor)
    c = _run(database_url, site, lambda ledger, s: service.close_count(ledger, s, count_id, now_us=now, actor=who))
    typer.echo(_dump(c))


@audit_app.command("log")
def log(
    store: Annotated[str | None, typer.Option("--store", help="Only this store.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 100,
    database_url: DatabaseOpt = DEFAULT_LEDGER_URL,
    site: SiteOpt = EXAMPLE_SITE,
) -> None:
    """The audit log, newest first, one JSON object per line."""
    from cloud.audit import repository  # noqa: PLC0415
    from tagledger.clock import us_to_datetime  # noqa: PLC0415

    entries = _run(database_url, site, lambda ledger, s: repository.audit_log(ledger, store_id=store, limit=limit))
    for e in entries:
        row = {"id": e.id, "at": us_to_datetime(e.at_us).isoformat(), "actor": e.actor, "action": e.action}
        typer.echo(json.dumps({**row, "store_id": e.store_id, "subject": e.subject, "detail": e.detail}))
