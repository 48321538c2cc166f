"""check_batch returns the batch's newest read and its dropped reads, computed once for the caller."""

from __future__ import annotations

import pytest

from gateway.fastwire import Batch, GapS, Obs
from gateway.records import FormatError
from gateway.vetting import check_batch, check_time

NOW = 1_795_000_000_000_000


def _batch(lasts: list[int], offset: int = 0, dropped: tuple[int, ...] = ()) -> Batch:
    obs = [Obs(f"30340BB8C0{i:014X}", 1, t - 5, t, 1, -50.0, -50.0) for i, t in enumerate(lasts)]
    gaps = [GapS("queue_overflow", d, 1, 2) for d in dropped]
    return Batch("s", "r", "b", 0, NOW, obs, clock_offset_us=offset, gaps=gaps)


def test_newest_is_the_latest_read_whatever_the_order_shifted_onto_the_host_clock() -> None:
    assert check_batch(_batch([NOW - 10, NOW - 30, NOW - 20], offset=7), NOW) == (NOW - 17, 0)
    assert check_batch(_batch([], dropped=(3, 4)), NOW) == (None, 7)


def test_a_time_beyond_the_allowed_skew_or_before_1970_is_refused() -> None:
    with pytest.raises(FormatError) as exc:
        check_batch(_batch([NOW + 11]), NOW + 10)
    assert exc.value.reason == "clock"
    with pytest.raises(FormatError, match="before 1970"):  # first_seen_us 1, on the host clock -1
        check_batch(_batch([6], offset=2), NOW)
    with pytest.raises(FormatError, match="before 1970"):
        check_time(-1, None, "at_us")


def test_gaps_beyond_int4_are_out_of_range() -> None:
    with pytest.raises(FormatError) as exc:
        check_batch(_batch([NOW], dropped=(2**31 - 1, 1)), NOW)
    assert exc.value.reason == "out_of_range"
