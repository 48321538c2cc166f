"""Where webhooks may be delivered: no request forgery into the operator's own network.

A webhook URL is chosen by whoever holds an admin key, and the API process POSTs
to it from inside the operator's network.  Without a rule, ``http://127.0.0.1:5432``,
``http://169.254.169.254/`` (a cloud's metadata service) or ``http://10.0.0.7/``
would make the API a proxy into places the caller cannot reach (SSRF).  So a
target is refused when any address its host resolves to is not a public unicast
address: loopback, private, link-local, unspecified, shared (100.64/10),
multicast, reserved, and their IPv4-mapped IPv6 forms.  Hosts are compared as
addresses, so the spellings of one (``0x7f000001``, ``2130706433``, ``0177.1``,
``::ffff:127.0.0.1``) are the same address.

The operator may allow networks (``webhook_allowed_networks``, e.g. a receiver on
the LAN, or ``127.0.0.0/8`` for tests).  The check runs when a subscription is made
and again before every delivery attempt, since a name may resolve elsewhere
later (DNS rebinding); the delivery then connects to the address that was checked
(:func:`resolve_checked`), not to a second lookup's answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import threading
from collections.abc import Iterable, Sequence
from typing import Any

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

#: How long a name lookup may take at registration or before a delivery.
RESOLVE_TIMEOUT_S = 5.0
#: Lookups running at once; beyond, a target is "unresolvable" at once (retried later).
MAX_LOOKUPS_IN_FLIGHT = 16

_in_flight = 0
_in_flight_lock = threading.Lock()


class TargetForbidden(Exception):
    """The target's host is, or resolves to, an address webhooks may not reach."""

    def __init__(self, host: str, address: str, reason: str) -> None:
        super().__init__(f"webhook target {host!r} resolves to {address} ({reason}); not allowed")
        self.host = host
        self.address = address
        self.reason = reason


class TargetUnresolvable(Exception):
    def __init__(self, host: str, error: str) -> None:
        super().__init__(f"webhook target {host!r} does not resolve: {error}")
        self.host = host


def parse_networks(values: Iterable[str]) -> tuple[IpNetwork, ...]:
    """The allow-list from settings (CIDR or single addresses); ValueError names a bad one."""
    return tuple(ipaddress.ip_network(v.strip(), strict=False) for v in values)


def literal_address(host: str) -> IpAddress | None:
    """``host`` as an address if it is one, in any spelling the C resolver would accept; else None."""
    text = host.strip("[]")
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    if "%" in text:  # an IPv6 zone id (fe80::1%eth0)
        try:
            return ipaddress.ip_address(text.split("%", 1)[0])
        except ValueError:
            return None
    try:
        # inet_aton takes the classic forms: 127.1, 0x7f000001, 2130706433, 0177.0.0.1.
        return ipaddress.IPv4Address(socket.inet_aton(text))
    except (OSError, ValueError):
        return None


def forbidden_reason(address: IpAddress) -> str | None:
    """Why webhooks may not reach ``address`` (None: a public unicast address)."""
    if isinstance(address, ipaddress.IPv6Address):
        for embedded in (address.ipv4_mapped, address.sixtofour):
            if embedded is not None:
                reason = forbidden_reason(embedded)
                if reason is not None:
                    return f"{reason} (embedded in IPv6)"
        if address.teredo is not None:
            return "Teredo (tunnels to another address)"
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("private", address.is_private),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
        ("not globally routable", not address.is_global),
    )
    for reason, hit in checks:
        if hit:
            return reason
    return None


def check_address(host: str, address: IpAddress, allowed: Sequence[IpNetwork]) -> None:
    """Raise :class:`TargetForbidden` unless ``address`` is public or in an allowed network."""
    if any(address.version == net.version and address in net for net in allowed):
        return
    reason = forbidden_reason(address)
    if reason is not None:
        raise TargetForbidden(host, str(address), reason)


async def _getaddrinfo(host: str, port: int) -> list[tuple[Any, ...]]:
    """``socket.getaddrinfo`` in a daemon thread of its own, at most MAX_LOOKUPS_IN_FLIGHT at once.

    Not the event loop's default executor: a lookup that hangs (an unreachable DNS
    server) outlives the caller's timeout in its thread, and asyncio waits for every
    job of the default executor, queued ones included, when the loop closes -- a
    few hundred webhooks to names that never resolve kept ``tagledger api`` from
    exiting for minutes after SIGTERM (found with schemathesis).  A daemon thread
    never holds up the exit, and the bound keeps hung lookups from piling up.
    """
    global _in_flight  # noqa: PLW0603 - one count per process, guarded by the lock
    with _in_flight_lock:
        if _in_flight >= MAX_LOOKUPS_IN_FLIGHT:
            raise TargetUnresolvable(host, f"{_in_flight} name lookups already in flight; try later")
        _in_flight += 1
    loop = asyncio.get_running_loop()
    future: asyncio.Future[list[tuple[Any, ...]]] = loop.create_future()

    def settle(result: list[tuple[Any, ...]] | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result or [])

    def lookup() -> None:
        global _in_flight  # noqa: PLW0603
        result: list[tuple[Any, ...]] | None = None
        error: BaseException | None = None
        try:
            result = list(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except (OSError, UnicodeError) as exc:
            error = exc
        finally:
            with _in_flight_lock:
                _in_flight -= 1
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nobody waits
            loop.call_soon_threadsafe(settle, result, error)

    threading.Thread(target=lookup, name=f"webhook-dns-{host[:40]}", daemon=True).start()
    return await future


async def resolve_checked(host: str, port: int, allowed: Sequence[IpNetwork]) -> IpAddress:
    """Resolve ``host`` and check EVERY address it has; returns the first, to connect to.

    Every address is checked (not only the first): a name answering with a public
    and a private address could otherwise be connected to the private one.
    """
    literal = literal_address(host)
    if literal is not None:
        check_address(host, literal, allowed)
        return literal
    try:
        infos = await asyncio.wait_for(_getaddrinfo(host, port), RESOLVE_TIMEOUT_S)
    except (OSError, TimeoutError, UnicodeError) as exc:
        raise TargetUnresolvable(host, str(exc) or type(exc).__name__) from None
    addresses = [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]
    if not addresses:
        raise TargetUnresolvable(host, "no address")
    for address in addresses:
        check_address(host, address, allowed)
    return addresses[0]
