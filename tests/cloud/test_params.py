from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from cloud.errors import InvalidParameter
from cloud.params import decode_cursor, encode_cursor, parse_as_of, parse_gtins
from tagledger.clock import datetime_to_us

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
NOW_US = datetime_to_us(NOW)


def test_cursor_round_trips_and_is_opaque() -> None:
    for event_id in (0, 1, 123_456_789, 2**62):
        cursor = encode_cursor(event_id)
        assert str(event_id) not in cursor or event_id == 0
        assert decode_cursor(cursor) == event_id


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "abc",  # not base64 of anything we issue
        "!!!",  # not base64 at all
        "ZXY6LTE",  # "ev:-1"
        "ZXY6eA",  # "ev:x"
        "aWQ6MTI",  # "id:12": another prefix
    ],
)
def test_foreign_cursors_are_refused(cursor: str) -> None:
    with pytest.raises(InvalidParameter) as info:
        decode_cursor(cursor)
    assert info.value.code == "invalid_cursor"


def test_as_of_needs_an_offset_and_a_past_time() -> None:
    assert parse_as_of(NOW - timedelta(hours=1), now_us=NOW_US) == NOW_US - 3_600_000_000
    plus_two = NOW.astimezone(timezone(timedelta(hours=2)))
    assert parse_as_of(plus_two, now_us=NOW_US) == NOW_US  # same instant, other offset
    with pytest.raises(InvalidParameter) as naive:
        parse_as_of(datetime(2025, 1, 1), now_us=NOW_US)  # noqa: DTZ001 - the point of the test
    assert naive.value.code == "naive_datetime"
    with pytest.raises(InvalidParameter) as future:
        parse_as_of(NOW + timedelta(seconds=1), now_us=NOW_US)
    assert future.value.code == "as_of_in_future"


def test_gtin_lists_are_normalised_deduplicated_and_the_bad_one_named() -> None:
    assert parse_gtins(["614141000012", "00614141000012", "96385074"], field="gtins") == [
        "00614141000012",
        "00000096385074",
    ]
    with pytest.raises(InvalidParameter) as info:
        parse_gtins(["614141000012", "123"], field="gtins")
    assert info.value.code == "invalid_gtin"
    assert info.value.details["index"] == 1
    assert info.value.details["field"] == "gtins"
