"""``tagledger keys issue|revoke|list``: API keys of the channel API.

Registered in ``cli.py`` with one line.  The token is printed once, at issue,
and is not recoverable: the ledger keeps only its SHA-256.
"""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import typer

from tagledger.app.cli_common import fail
from tagledger.paths import default_ledger_url

#: The embedded ledger in the per-user state directory, as for the other commands.
DEFAULT_LEDGER_URL = default_ledger_url()

keys_app = typer.Typer(help="API keys of the HTTP API (issue, revoke, list).", no_args_is_help=True)

DatabaseOpt = Annotated[
    str,
    typer.Option(
        "--database-url",
        envvar="TAGLEDGER_DATABASE_URL",
        help="Ledger database: postgresql://user@host:5432/db, or sqlite:///path/file.sqlite.",
    ),
]


async def _with_ledger(url: str, fn: Any) -> Any:
    from tagledger.ledger import open_ledger  # noqa: PLC0415  (server libraries only when used)

    ledger = await open_ledger(url)
    try:
        return await fn(ledger)
    finally:
        await ledger.close()


@keys_app.command("issue")
def issue(
    name: Annotated[str, typer.Option(help="Who the key is for (shown in lists).")],
    scope: Annotated[
        list[str],
        typer.Option(help="availability:read, reservations:write, staff, audit, metrics or admin (repeat)."),
    ],
    store: Annotated[list[str] | None, typer.Option(help="Limit the key to this store (repeat); default all.")] = None,
    database_url: DatabaseOpt = DEFAULT_LEDGER_URL,
) -> None:
    """Issue a key and print its token ONCE (the ledger keeps only its SHA-256)."""
    from cloud.auth import repository, tokens  # noqa: PLC0415
    from cloud.auth.repository import ApiKeyRecord  # noqa: PLC0415
    from cloud.auth.scopes import parse_scopes  # noqa: PLC0415
    from tagledger.clock import SystemClock  # noqa: PLC0415

    try:
        scopes = parse_scopes(scope)
    except ValueError as exc:
        fail(str(exc))
    key_id, token = tokens.new_token()
    record = ApiKeyRecord(
        id=key_id,
        secret_sha256=tokens.digest(token),
        name=name,
        scopes=tuple(sorted(s.value for s in scopes)),
        stores=tuple(store) if store else None,
        created_us=SystemClock().now_us(),
    )
    asyncio.run(_with_ledger(database_url, lambda ledger: repository.add_api_key(ledger, record)))
    typer.echo(f"key {key_id} issued to {name!r}; its token (shown only now):", err=True)
    typer.echo(token)


@keys_app.command("revoke")
def revoke(
    key_id: Annotated[str, typer.Argument(help="The key id (the 16 hex digits after tlk_).")],
    database_url: DatabaseOpt = DEFAULT_LEDGER_URL,
) -> None:
    """Revoke a key; API processes stop accepting it within their auth cache time (default 5 s)."""
    from cloud.auth import repository  # noqa: PLC0415
    from tagledger.clock import SystemClock  # noqa: PLC0415

    now = SystemClock().now_us()
    found = asyncio.run(
        _with_ledger(database_url, lambda ledger: repository.revoke_api_key(ledger, key_id, now_us=now))
    )
    if not found:
        fail(f"no key {key_id}")
    typer.echo(f"key {key_id} revoked")


@keys_app.command("list")
def list_keys(
    database_url: DatabaseOpt = DEFAULT_LEDGER_URL,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Every key: id, name, scopes, stores, issued and revoked times (never the token)."""
    from cloud.auth import repository  # noqa: PLC0415
    from tagledger.clock import us_to_datetime  # noqa: PLC0415

    keys = asyncio.run(_with_ledger(database_url, repository.api_keys))
    for k in keys:
        row = {
            "id": k.id,
            "name": k.name,
            "scopes": list(k.scopes),
            "stores": None if k.stores is None else list(k.stores),
            "created_at": us_to_datetime(k.created_us).isoformat(),
            "revoked_at": None if k.revoked_us is None else us_to_datetime(k.revoked_us).isoformat(),
        }
        if as_json:
            typer.echo(json.dumps(row))
        else:
            state = "revoked" if k.revoked_us is not None else "active"
            stores = ",".join(k.stores) if k.stores else "all stores"
            typer.echo(f"{k.id}  {state:7}  {k.name}  [{' '.join(k.scopes)}]  {stores}")
