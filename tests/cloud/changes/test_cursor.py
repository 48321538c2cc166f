from __future__ import annotations

import pytest

from cloud.changes.cursor import HOLD_OVERLAP_US, Cursor, parse_id

T = 1_800_000_000_000_000
PAGE = 100


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


def test_event_changes_come_first_then_hold_only_changes_and_ids_never_go_back() -> None:
    c = Cursor.fresh(10, T)
    out = c.step(
        [(11, "A"), (12, "B"), (13, "A")],
        [(T + 5, "h1", "C"), (T + 6, "h3", "D"), (T + 7, "h2", "A")],
        hold_page=PAGE,
    )
    # A's hold change is covered by A's message (its availability includes holds).
    assert out == [("B", f"12.{T}"), ("A", f"13.{T}"), ("C", f"13.{T + 7}"), ("D", f"13.{T + 7}")]
    assert c.marks == (13, T + 7)
    ids = [tuple(map(int, i.split("."))) for _, i in out]
    assert ids == sorted(ids)


def test_hold_changes_read_again_within_the_overlap_are_announced_once() -> None:
    c = Cursor.fresh(0, T)
    assert c.step([], [(T + 10, "h1", "A")], hold_page=PAGE) == [("A", f"0.{T + 10}")]
    assert c.hold_position() == (T, "")  # back by the overlap, but not before the stream began
    c.step([], [], hold_page=PAGE)
    # A later look: h1 again, and a change that committed late (its time is before h1's).
    assert c.step([], [(T + 8, "h2", "B"), (T + 10, "h1", "A")], hold_page=PAGE) == [("B", f"0.{T + 10}")]
    # The same hold changed again is a new change.
    assert c.step([], [(T + 10, "h1", "A"), (T + 20, "h1", "A")], hold_page=PAGE) == [("A", f"0.{T + 20}")]


def test_a_fresh_stream_announces_nothing_from_before_it_began() -> None:
    c = Cursor.fresh(5, T)
    assert c.hold_position() == (T, "")
    assert c.step([], [(T - 1, "h1", "A"), (T, "h2", "B"), (T + 1, "h3", "C")], hold_page=PAGE) == [("C", f"5.{T + 1}")]


def test_a_resumed_stream_reads_the_overlap_again_so_a_late_commit_is_not_lost() -> None:
    # Saved at T + 10; a hold changed at T + 8 committed only after that was read.
    c = Cursor.resume(3, T + 10)
    assert c.hold_position() == (T + 10 - HOLD_OVERLAP_US, "")
    got = c.step([], [(T + 8, "late", "B"), (T + 10, "h1", "A")], hold_page=PAGE)
    assert [g for g, _ in got] == ["B", "A"]  # A again: harmless, an availability is a snapshot


def test_a_full_page_goes_on_from_its_last_row_even_at_one_instant() -> None:
    c = Cursor.fresh(0, T)
    burst = [(T + 1, f"h{i:03d}", f"G{i:03d}") for i in range(5)]  # a sweep: one instant
    assert len(c.step([], burst[:2], hold_page=2)) == 2
    assert c.hold_position() == (T + 1, "h001")
    assert [g for g, _ in c.step([], burst[2:4], hold_page=2)] == ["G002", "G003"]
    assert c.hold_position() == (T + 1, "h003")
    assert [g for g, _ in c.step([], burst[4:], hold_page=2)] == ["G004"]
    assert c.hold_position() == (T, "")  # a page not full: back to the overlap (bounded by the start)


def test_remembered_changes_are_forgotten_past_the_overlap() -> None:
    c = Cursor.fresh(0, T)
    c.step([], [(T + 1, "h1", "A")], hold_page=PAGE)
    c.step([], [(T + 1 + HOLD_OVERLAP_US * 2, "h2", "B")], hold_page=PAGE)
    assert c._seen == {("h2", T + 1 + HOLD_OVERLAP_US * 2): None}
