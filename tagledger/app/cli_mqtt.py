"""``tagledger mqtt provision``: the broker's users, passwords, ACL (and TLS certificates) from the site file.

Registered in ``cli.py`` with one line; the work is in :mod:`tagledger.app.mqtt_provision`
and :mod:`tagledger.app.mqtt_tls`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from tagledger.app.cli_common import fail
from tagledger.site import SiteError, load_site
from tagledger.wire import DEFAULT_ROOT

mqtt_app = typer.Typer(help="The MQTT broker's identities and access rules.", no_args_is_help=True)


@mqtt_app.command("provision")
def provision(
    site: Annotated[Path, typer.Option(envvar="TAGLEDGER_SITE", help="The site file (stores, readers).")],
    out: Annotated[Path, typer.Option(help="Directory to write passwd, acl, credentials.json (and TLS files) to.")],
    topic_root: Annotated[
        str,
        typer.Option(
            envvar=["TAGLEDGER_GATEWAY_TOPIC_ROOT", "TAGLEDGER_TOPIC_ROOT"], help="MQTT topic root (the gateway's)."
        ),
    ] = DEFAULT_ROOT,
    gateway_user: Annotated[str, typer.Option(help="MQTT user of the gateway.")] = "tagledger-gateway",
    rotate: Annotated[bool, typer.Option(help="New passwords for every identity (default: keep known ones).")] = False,
    tls: Annotated[
        bool, typer.Option(help="Also a CA, the broker's certificate and client certificates (the 'tls' extra).")
    ] = False,
    tls_host: Annotated[
        list[str] | None,
        typer.Option(help="Name or address agents use to reach the broker (repeat); default localhost, 127.0.0.1."),
    ] = None,
) -> None:
    """One MQTT user per edge agent, reader that publishes itself, store till system, and the gateway, each
    allowed only its own topics; writes Mosquitto's password file and ACL (and with --tls, certificates).

    The passwords are printed nowhere: they are in OUT/credentials.json (mode 0600).
    """
    from tagledger.app import mqtt_provision  # noqa: PLC0415

    try:
        the_site = load_site(site)
    except SiteError as exc:
        fail(str(exc))
    try:
        done = mqtt_provision.write(the_site, out, topic_root=topic_root, gateway_user=gateway_user, rotate=rotate)
    except (mqtt_provision.ProvisionError, ValueError) as exc:
        fail(str(exc))
    typer.echo(
        f"{len(done.identities)} MQTT identities written to {out} (passwd, acl, credentials.json); "
        f"{len(done.new)} new password(s)",
        err=True,
    )
    if tls:
        try:
            from tagledger.app import mqtt_tls  # noqa: PLC0415
        except ImportError as exc:
            fail(str(exc))
        created = mqtt_tls.write(
            out / "tls",
            server_hosts=tls_host or ["localhost", "127.0.0.1"],
            client_names=[i.username for i in done.identities],
        )
        typer.echo(f"TLS: {len(created)} new file(s) in {out / 'tls'} (CA, server and client certificates)", err=True)
