"""`tagledger keys issue|list|revoke` against a real ledger, and the issued token working on the API."""

from __future__ import annotations

import asyncio
import json

from typer.testing import CliRunner

from cloud.app import create_app
from cloud.settings import ApiSettings
from tagledger.app.cli import app as cli
from tagledger.ledger import open_ledger
from tests.cloud.harness import api_client, two_store_site


def test_issue_list_revoke(ledger_url: str) -> None:
    runner = CliRunner()
    db = ["--database-url", ledger_url]
    issued = runner.invoke(
        cli, ["keys", "issue", "--name", "shop", "--scope", "availability:read", "--store", "lyon-01", *db]
    )
    assert issued.exit_code == 0, issued.output
    token = issued.stdout.strip().splitlines()[-1]
    assert token.startswith("tlk_")
    key_id = token.split("_")[1]

    listed = runner.invoke(cli, ["keys", "list", "--json", *db])
    (row,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert (row["id"], row["name"], row["scopes"], row["stores"], row["revoked_at"]) == (
        key_id,
        "shop",
        ["availability:read"],
        ["lyon-01"],
        None,
    )
    assert token not in listed.stdout

    async def status() -> int:
        ledger = await open_ledger(ledger_url)
        try:
            settings = ApiSettings(database_url=ledger_url, auth_cache_s=0, hold_sweep_s=0)
            async with api_client(create_app(settings, ledger=ledger, site=two_store_site())) as client:
                r = await client.get("/v1/stores", headers={"Authorization": f"Bearer {token}"})
                return r.status_code
        finally:
            await ledger.close()

    assert asyncio.run(status()) == 200
    assert runner.invoke(cli, ["keys", "revoke", key_id, *db]).exit_code == 0
    assert asyncio.run(status()) == 401
    assert runner.invoke(cli, ["keys", "revoke", "0123456789abcdef", *db]).exit_code == 2
    bad = runner.invoke(cli, ["keys", "issue", "--name", "x", "--scope", "root", *db])
    assert bad.exit_code == 2
    assert "unknown scope 'root'" in bad.output
