"""MQTT identities of a site: one Mosquitto user per publisher, each allowed only its own topics.

``tagledger mqtt provision`` derives them from the site file:

============================  ==========================================  =================================
identity (MQTT user name)     who                                         may
============================  ==========================================  =================================
``tagledger-gateway``         the gateway (every replica)                 read and write ``<root>/#``;
                                                                          read ``$SYS/#`` (broker counters)
``edge.<reader>``             the edge agent of an LLRP reader            write its ``reads``, ``status``,
                                                                          ``heartbeat``; read its ``ack``
``impinj.<reader>``           an Impinj reader publishing itself          write its ``impinj`` topic
``zebra.<reader>``            a Zebra reader publishing itself            write its ``zebra`` topic
``pos.<store>``               the store's till system                     write ``<store>/_pos/transactions``
============================  ==========================================  =================================

So a store's credentials, stolen from its back office, publish nothing as another
store or another reader, and cannot forge the gateway's acknowledgements (which
would make an agent drop batches the ledger never committed), nor read another
reader's.

Files written (``write``):

``passwd``
    Mosquitto's password file (``password_file``), 0600: PBKDF2-SHA512 hashes in
    Mosquitto 2's ``$7$`` format.  The passwords are random (32 bytes of the OS's
    generator, URL-safe), so the hash's iteration count (Mosquitto's default, 101)
    is not what protects them; a higher one would cost the broker CPU on every
    connect of every reader.
``acl``
    Mosquitto's ACL (``acl_file``).
``credentials.json``
    Every identity with its password and what it is for, 0600: hand each agent
    its own (``TAGLEDGER_EDGE_USERNAME`` / ``TAGLEDGER_EDGE_PASSWORD``).  Running
    the command again keeps the passwords of identities it already lists, so
    adding a reader does not change everyone's; ``--rotate`` makes new ones.

With ``--tls`` (the ``tls`` extra, :mod:`tagledger.app.mqtt_tls`), also a CA, a
server certificate for the broker's TLS listener, and a client certificate per
identity.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from tagledger.paths import PRIVATE_FILE_MODE, make_private_dir
from tagledger.site import Site
from tagledger.wire import Topics

GATEWAY_USER = "tagledger-gateway"

#: Mosquitto's own default for ``mosquitto_passwd`` (see the module docstring).
PBKDF2_ITERATIONS = 101
_SALT_BYTES = 12


@dataclass(frozen=True)
class Identity:
    username: str
    role: str  # gateway, edge, impinj, zebra, pos
    store_id: str | None
    reader_id: str | None
    read: tuple[str, ...]
    write: tuple[str, ...]
    readwrite: tuple[str, ...] = ()


class ProvisionError(ValueError):
    pass


def identities(site: Site, topics: Topics, *, gateway_user: str = GATEWAY_USER) -> list[Identity]:
    """Every identity the site needs, the gateway first, then store by store."""
    out = [
        Identity(
            username=gateway_user,
            role="gateway",
            store_id=None,
            reader_id=None,
            read=("$SYS/#",),
            write=(),
            readwrite=(f"{topics.root}/#",),
        )
    ]
    for store in site.stores:
        for reader in store.readers:
            if reader.format == "llrp":
                out.append(
                    Identity(
                        username=f"edge.{reader.id}",
                        role="edge",
                        store_id=store.id,
                        reader_id=reader.id,
                        read=(topics.ack(store.id, reader.id),),
                        write=(
                            topics.reads(store.id, reader.id),
                            topics.status(store.id, reader.id),
                            topics.heartbeat(store.id, reader.id),
                        ),
                    )
                )
            elif reader.format == "impinj_iot":
                out.append(
                    Identity(
                        f"impinj.{reader.id}", "impinj", store.id, reader.id, (), (topics.impinj(store.id, reader.id),)
                    )
                )
            else:
                out.append(
                    Identity(
                        f"zebra.{reader.id}", "zebra", store.id, reader.id, (), (topics.zebra(store.id, reader.id),)
                    )
                )
        out.append(Identity(f"pos.{store.id}", "pos", store.id, None, (), (topics.pos(store.id),)))
    for identity in out:
        # The password file separates user and hash with ':'; site ids may contain one.
        if ":" in identity.username:
            raise ProvisionError(
                f"MQTT user {identity.username!r}: an id used in an MQTT user name may not contain ':'"
            )
    return out


def acl_text(found: list[Identity], *, root: str) -> str:
    lines = [
        "# Mosquitto ACL written by `tagledger mqtt provision` from the site file; do not edit,",
        "# run the command again.  One user per publisher, each limited to its own topics",
        f"# (topic root {root!r}).  Users not listed here may do nothing.",
    ]
    for identity in found:
        where = identity.role
        if identity.store_id:
            where += f", store {identity.store_id}"
        if identity.reader_id:
            where += f", reader {identity.reader_id}"
        lines += ["", f"# {where}", f"user {identity.username}"]
        lines += [f"topic readwrite {t}" for t in identity.readwrite]
        lines += [f"topic write {t}" for t in identity.write]
        lines += [f"topic read {t}" for t in identity.read]
    return "\n".join(lines) + "\n"


def password_hash(password: str, *, salt: bytes | None = None, iterations: int = PBKDF2_ITERATIONS) -> str:
    """Mosquitto 2's password-file hash: ``$7$<iterations>$<base64 salt>$<base64 PBKDF2-SHA512>``."""
    salt = secrets.token_bytes(_SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` with mode 0600 from the start (never readable by others, even briefly)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, PRIVATE_FILE_MODE)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, PRIVATE_FILE_MODE)
    os.replace(tmp, path)


@dataclass(frozen=True)
class Provisioned:
    directory: Path
    identities: list[Identity]
    passwords: dict[str, str]
    new: list[str]  # user names that got a new password this run


def write(
    site: Site, directory: Path, *, topic_root: str, gateway_user: str = GATEWAY_USER, rotate: bool = False
) -> Provisioned:
    """Write ``passwd``, ``acl`` and ``credentials.json`` for the site into ``directory``."""
    topics = Topics(topic_root)
    found = identities(site, topics, gateway_user=gateway_user)
    make_private_dir(directory)
    creds_path = directory / "credentials.json"
    kept: dict[str, str] = {}
    if creds_path.exists() and not rotate:
        try:
            kept = {u: c["password"] for u, c in json.loads(creds_path.read_text())["identities"].items()}
        except (ValueError, KeyError, TypeError) as exc:
            raise ProvisionError(
                f"{creds_path}: not a credentials file of this command ({exc}); move it away"
            ) from None
    passwords: dict[str, str] = {}
    new: list[str] = []
    for identity in found:
        if identity.username in kept:
            passwords[identity.username] = kept[identity.username]
        else:
            passwords[identity.username] = secrets.token_urlsafe(32)
            new.append(identity.username)
    _write_private(
        directory / "passwd", "".join(f"{i.username}:{password_hash(passwords[i.username])}\n" for i in found)
    )
    (directory / "acl").write_text(acl_text(found, root=topic_root))
    credentials = {
        "topic_root": topic_root,
        "identities": {
            i.username: {
                "password": passwords[i.username],
                "role": i.role,
                "store_id": i.store_id,
                "reader_id": i.reader_id,
            }
            for i in found
        },
    }
    _write_private(creds_path, json.dumps(credentials, indent=2) + "\n")
    return Provisioned(directory, found, passwords, new)
