from __future__ import annotations

import pytest

from cloud.changes.cursor import HOLD_OVERLAP_US, Cursor, parse_id

T = 1_800_000_000_000_000


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("41", (41, None)),  # what streams sent before holds were followed
        (f"41.{T}", (41, T)),
        (None, None),
        ("", None),
        ("abc", None),
        ("41.x", None),
        ("-1", None),
        ("1." + "9" * 60, None),
    ],
)
def test_last_event_ids(value: str | None, expected: tuple[int, int | None] | None) -> None:
    assert parse_id(value) == expected


def test_event_changes_come_first_oldest_last_change_first_then_hold_only_changes() -> None:
    c = Cursor(10, T)
    out = c.step(
        [(11, "A"), (12, "B"), (13, "A")],
        [(T + 5, "h1", "C"), (T + 7, "h2", "A"), (T + 6, "h3", "D")],
    )
    # A's hold change is covered by A's message (its availability includes holds).
    assert out == [("B", f"12.{T}"), ("A", f"13.{T}"), ("C", f"13.{T + 5}"), ("D", f"13.{T + 6}")]
    assert (c.event_id, c.hold_us) == (13, T + 7)
    assert c.id == f"13.{T + 7}"


def test_hold_changes_read_again_within_the_overlap_are_announced_once() -> None:
    c = Cursor(0, T)
    assert c.step([], [(T + 10, "h1", "A")]) == [("A", f"0.{T + 10}")]
    assert c.hold_since() == T + 10 - HOLD_OVERLAP_US
    # The next poll reads back over the overlap: h1 again, and a change that committed late.
    assert c.step([], [(T + 8, "h2", "B"), (T + 10, "h1", "A")]) == [("B", f"0.{T + 8}")]
    assert c.hold_us == T + 10
    # The same hold changed again is a new change.
    assert c.step([], [(T + 10, "h1", "A"), (T + 20, "h1", "A")]) == [("A", f"0.{T + 20}")]


def test_changes_at_or_before_the_start_are_not_announced() -> None:
    c = Cursor(5, T)
    assert c.hold_since() == T - HOLD_OVERLAP_US
    assert c.step([], [(T - 1, "h1", "A"), (T, "h2", "B"), (T + 1, "h3", "C")]) == [("C", f"5.{T + 1}")]


def test_remembered_changes_are_forgotten_past_the_overlap() -> None:
    c = Cursor(0, T)
    c.step([], [(T + 1, "h1", "A")])
    c.step([], [(T + 1 + HOLD_OVERLAP_US * 2, "h2", "B")])
    assert c._seen == {("h2", T + 1 + HOLD_OVERLAP_US * 2): None}
