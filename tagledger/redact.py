"""Credentials out of messages: what a URL looks like in a log line or an error."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def redact_url(url: str) -> str:
    """``url`` with its password (if any) replaced by ``***``; anything unparseable is cut to its scheme.

    For every message, log line and exception text that names a broker, ledger or
    webhook URL: those URLs may carry ``user:password@``.
    """
    try:
        parts = urlsplit(url if "://" in url else f"//{url}")
        netloc = parts.netloc
    except ValueError:
        scheme = url.split("://", 1)[0] if "://" in url else ""
        return f"{scheme}://..." if scheme else "..."
    if "@" not in netloc:
        return url
    creds, _, host = netloc.rpartition("@")
    if ":" not in creds:
        return url
    user = creds.split(":", 1)[0]
    redacted = urlunsplit((parts.scheme, f"{user}:***@{host}", parts.path, parts.query, parts.fragment))
    return redacted if "://" in url else redacted.removeprefix("//")
