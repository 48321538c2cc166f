"""Opaque cursors for lists that can grow.  No I/O.

A cursor is the sort key of the last entry of the previous page, as base64url
JSON: opaque to callers (they pass back ``next_cursor`` as ``cursor``), stable
when entries are added or removed between pages (a key-set cursor, not an
offset, so nothing is skipped or repeated because of an insert before it).
"""

from __future__ import annotations

import base64
import binascii
import json

from cloud.errors import InvalidParameter

MAX_CURSOR_CHARS = 512


def encode_cursor(key: list[str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, *, parts: int) -> list[str]:
    """The key a cursor carries; a cursor this API did not make is 422 ``invalid_cursor``."""
    try:
        if len(cursor) > MAX_CURSOR_CHARS:
            raise ValueError("too long")
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not (isinstance(key, list) and len(key) == parts and all(isinstance(k, str) for k in key)):
            raise ValueError("not a key")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidParameter(
            "the cursor is not one this API made; pass next_cursor back unchanged", code="invalid_cursor"
        ) from None
    return key
