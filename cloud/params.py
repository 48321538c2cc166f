"""Parsing of parameters shared by several domains, with the API's error codes."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any

from cloud.errors import InvalidParameter
from cloud.gtin import InvalidGtin, normalise_gtin
from tagledger.clock import datetime_to_us, us_to_datetime


def parse_gtin(value: str, *, where: dict[str, Any] | None = None) -> str:
    try:
        return normalise_gtin(value)
    except InvalidGtin as exc:
        raise InvalidParameter(
            str(exc), code="invalid_gtin", details={"value": value, "reason": exc.reason, **(where or {})}
        ) from None


def parse_gtins(values: list[str], *, field: str) -> list[str]:
    """Normalise every GTIN (first bad one refused, with its index); duplicates kept once, order kept."""
    out: dict[str, None] = {}
    for i, value in enumerate(values):
        out[parse_gtin(value, where={"field": field, "index": i})] = None
    return list(out)


def parse_time(value: datetime, name: str) -> int:
    """A time parameter in µs: one without an offset, or beyond what a datetime holds, is refused."""
    us = _offset_time_us(value, name)
    _representable(us, value, name)
    return us


def parse_as_of(value: datetime, *, now_us: int) -> int:
    """``as_of`` in µs; a naive time or one in the future is refused."""
    as_of_us = _offset_time_us(value, "as_of")
    if as_of_us > now_us:
        raise InvalidParameter(
            "as_of is in the future; omit it for current stock",
            code="as_of_in_future",
            details={"value": value.isoformat()},
        )
    _representable(as_of_us, value, "as_of")
    return as_of_us


def _offset_time_us(value: datetime, name: str) -> int:
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidParameter(
            f"{name} needs a time zone offset (RFC 3339, e.g. 2026-01-01T12:00:00Z)",
            code="naive_datetime",
            details={"parameter": name, "value": value.isoformat()},
        )
    try:
        return datetime_to_us(value)
    except (OverflowError, ValueError, OSError):
        raise _out_of_range(value, name) from None


def _representable(us: int, value: datetime, name: str) -> None:
    try:
        us_to_datetime(us)  # in UTC too: year 1 with a positive offset is year 0, which no datetime holds
    except (OverflowError, ValueError, OSError):
        raise _out_of_range(value, name) from None


def _out_of_range(value: datetime, name: str) -> InvalidParameter:
    return InvalidParameter(
        f"{name} is out of range", code="invalid_datetime", details={"parameter": name, "value": value.isoformat()}
    )


_CURSOR_PREFIX = "ev:"
_MAX_EVENT_ID = 2**63  # event ids are BIGINT in the ledger; a larger one would fail in the driver


def encode_cursor(event_id: int) -> str:
    return base64.urlsafe_b64encode(f"{_CURSOR_PREFIX}{event_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    """The id a backwards-paging cursor points before (item history, audit log); anything else is a 422."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not raw.startswith(_CURSOR_PREFIX):
            raise ValueError(raw)
        event_id = int(raw[len(_CURSOR_PREFIX) :])
        if not 0 <= event_id < _MAX_EVENT_ID:
            raise ValueError(raw)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidParameter(
            "cursor is not one this API issued; pass next_cursor from the previous page",
            code="invalid_cursor",
            details={"value": cursor},
        ) from None
    return event_id
