"""ERP book stock: CSV parsing (errors name line and column) and the RFID-vs-book arithmetic."""

from __future__ import annotations

import pytest

from cloud.audit.book import BookError, BookImport, BookLine, differences, parse_book_csv, totals

SHIRT, SHOE, JEANS = "00614141000012", "00614141100019", "00614141000043"
STORES = frozenset({"paris-01", "lyon-01"})


def test_parse_groups_by_store_and_as_of_and_normalises_gtins() -> None:
    text = (
        "\ufeffStore,GTIN,Quantity,As_Of,Unit_Price,ignored\n"
        "paris-01,0614141000012,4,2026-01-01T01:00:00+01:00,12.50,x\n"
        "paris-01,00614141100019,-1,2026-01-01T00:00:00Z,,x\n"
        "lyon-01,614141000012,2,2026-01-01T00:00:00Z,9,x\n"
        ",,,,,\n"
    )
    imports = parse_book_csv(text, known_stores=STORES)
    assert imports == [
        BookImport("lyon-01", 1_767_225_600_000_000, (BookLine(SHIRT, 2, 9.0),)),
        BookImport(
            "paris-01", 1_767_225_600_000_000, (BookLine(SHIRT, 4, 12.5), BookLine(SHOE, -1, None))
        ),  # 01:00+01:00 is the same moment as 00:00Z: one import
    ]


@pytest.mark.parametrize(
    ("text", "line", "column", "words"),
    [
        ("", None, None, "empty"),
        ("store,gtin,quantity\n", 1, None, "as_of"),
        ("store,gtin,quantity,as_of\n", None, None, "no lines"),
        ("store,gtin,quantity,as_of\nnowhere,00614141000012,1,2026-01-01T00:00:00Z\n", 2, "store", "unknown store"),
        ("store,gtin,quantity,as_of\nparis-01,00614141000013,1,2026-01-01T00:00:00Z\n", 2, "gtin", "check digit"),
        ("store,gtin,quantity,as_of\nparis-01,00614141000012,1.5,2026-01-01T00:00:00Z\n", 2, "quantity", "whole"),
        ("store,gtin,quantity,as_of\nparis-01,00614141000012,1,2026-01-01T00:00:00\n", 2, "as_of", "offset"),
        ("store,gtin,quantity,as_of\nparis-01,00614141000012,1,yesterday\n", 2, "as_of", "RFC 3339"),
        (
            "store,gtin,quantity,as_of,unit_price\nparis-01,00614141000012,1,2026-01-01T00:00:00Z,-3\n",
            2,
            "unit_price",
            "from 0 to",
        ),
        (
            "store,gtin,quantity,as_of\nparis-01,00614141000012,1,2026-01-01T00:00:00Z\n"
            "paris-01,0614141000012,2,2026-01-01T00:00:00Z\n",
            3,
            None,
            "twice",
        ),
        ("store,gtin,quantity,as_of\nparis-01,,1,2026-01-01T00:00:00Z\n", 2, "gtin", "empty"),
    ],
)
def test_bad_files_are_refused_with_where(text: str, line: int | None, column: str | None, words: str) -> None:
    with pytest.raises(BookError) as err:
        parse_book_csv(text, known_stores=STORES)
    assert err.value.line == line
    assert err.value.column == column
    assert words in str(err.value)


def test_differences_over_under_value_and_rate() -> None:
    book = BookImport("paris-01", 0, (BookLine(SHIRT, 4, 12.5), BookLine(SHOE, 3, None), BookLine(JEANS, 2, 40.0)))
    diffs = differences(book, {SHIRT: 6, JEANS: 2, "00614141000050": 1})
    assert [(d.gtin, d.book, d.rfid, d.difference, d.kind, d.value) for d in diffs] == [
        (SHIRT, 4, 6, 2, "over", 25.0),
        (JEANS, 2, 2, 0, "match", 0.0),
        ("00614141000050", 0, 1, 1, "over", None),  # RFID sees what the book lacks
        (SHOE, 3, 0, -3, "under", None),
    ]
    t = totals(diffs)
    assert (t.gtins, t.matching, t.over_units, t.under_units, t.book_units) == (4, 1, 3, 3, 9)
    assert (t.over_value, t.under_value) == (25.0, 0.0)
    assert t.difference_rate == pytest.approx(6 / 9)
    assert totals(differences(BookImport("s", 0, ()), {})).difference_rate == 0.0
