"""Book stock from an ERP and its difference with RFID stock.  Pure: no I/O.

The ERP file is CSV with a header row naming (in any order, any case):

============  =======================================================================
column        meaning
============  =======================================================================
store         store id as in the site file (``store_id`` is accepted too)
gtin          GTIN-8/12/13/14 (check digit verified; kept as GTIN-14)
quantity      book quantity, a whole number (may be negative: ERPs book sales ahead)
as_of         RFC 3339 time with an offset: the moment the book quantity describes
unit_price    optional; a decimal number (``12.50``), used for the value of a difference
============  =======================================================================

Other columns are ignored.  One file may hold several stores and as-of times: it
becomes one import per (store, as_of).  A bad line refuses the whole file, with the
line number, the column and what is wrong, so a half-imported book never exists.

The difference compares book and RFID stock *at the book's as-of time* (the ledger
rebuilds on-hand stock at any past moment), so a file exported last night is checked
against last night's shelves, not this morning's.  ``difference = rfid - book``:
positive is *over* (RFID finds more than the book says), negative *under*.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cloud.gtin import InvalidGtin, normalise_gtin
from tagledger.clock import datetime_to_us

REQUIRED = ("store", "gtin", "quantity", "as_of")
MAX_LINES = 200_000
#: Bounds of a book line: far beyond any store, and small enough that totals and values
#: stay exact integers and finite numbers in every backend's columns and in JSON.
MAX_QUANTITY = 10**9
MAX_UNIT_PRICE = 10**9


class BookError(ValueError):
    """The file cannot be imported; ``line`` (1 = header) and ``column`` say where."""

    def __init__(self, message: str, *, line: int | None = None, column: str | None = None) -> None:
        where = "" if line is None else f"line {line}" + ("" if column is None else f", column {column}")
        super().__init__(f"{where}: {message}" if where else message)
        self.line = line
        self.column = column
        self.reason = message


@dataclass(frozen=True, slots=True)
class BookLine:
    gtin: str
    quantity: int
    unit_price: float | None


@dataclass(frozen=True, slots=True)
class BookImport:
    """One store's book at one moment."""

    store_id: str
    as_of_us: int
    lines: tuple[BookLine, ...]


def _rows(reader: Any) -> Iterator[list[str]]:  # a csv.reader (its type is private to _csv)
    """The reader's rows; text the csv module cannot split (a bare CR inside a field) is a BookError."""
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise BookError(f"not CSV: {exc}", line=reader.line_num) from None
        yield row


def parse_book_csv(text: str, *, known_stores: frozenset[str] | None = None) -> list[BookImport]:
    """The imports a CSV file holds, ordered by store then as-of time."""
    reader = _rows(csv.reader(io.StringIO(text.lstrip("\ufeff"))))  # a BOM is what spreadsheets add
    try:
        header = next(reader)
    except StopIteration:
        raise BookError("the file is empty; expected a header row: store,gtin,quantity,as_of[,unit_price]") from None
    columns = {name.strip().lower(): i for i, name in enumerate(header)}
    if "store" not in columns and "store_id" in columns:
        columns["store"] = columns["store_id"]
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise BookError(f"the header lacks column(s) {', '.join(missing)} (found: {', '.join(header)})", line=1)
    groups: dict[tuple[str, int], dict[str, BookLine]] = {}
    for number, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue  # blank lines, as spreadsheets leave at the end
        if number > MAX_LINES + 1:
            raise BookError(f"more than {MAX_LINES} lines; split the file", line=number)
        line = _parse_row(row, columns, number, known_stores)
        store_id, as_of_us, book_line = line
        lines = groups.setdefault((store_id, as_of_us), {})
        if book_line.gtin in lines:
            raise BookError(f"GTIN {book_line.gtin} is listed twice for this store and as_of", line=number)
        lines[book_line.gtin] = book_line
    if not groups:
        raise BookError("the file has a header but no lines")
    return [
        BookImport(store_id=s, as_of_us=t, lines=tuple(sorted(lines.values(), key=lambda b: b.gtin)))
        for (s, t), lines in sorted(groups.items())
    ]


def _cell(row: list[str], columns: Mapping[str, int], name: str, number: int) -> str:
    i = columns[name]
    if i >= len(row) or not row[i].strip():
        raise BookError("empty", line=number, column=name)
    return row[i].strip()


def _parse_row(
    row: list[str], columns: Mapping[str, int], number: int, known_stores: frozenset[str] | None
) -> tuple[str, int, BookLine]:
    store_id = _cell(row, columns, "store", number)
    if known_stores is not None and store_id not in known_stores:
        raise BookError(f"unknown store {store_id!r}", line=number, column="store")
    try:
        gtin = normalise_gtin(_cell(row, columns, "gtin", number))
    except InvalidGtin as exc:
        raise BookError(str(exc), line=number, column="gtin") from None
    text = _cell(row, columns, "quantity", number)
    try:
        quantity = int(text)
    except ValueError:
        raise BookError(f"{text!r} is not a whole number", line=number, column="quantity") from None
    if abs(quantity) > MAX_QUANTITY:
        raise BookError(f"a quantity is between -{MAX_QUANTITY} and {MAX_QUANTITY}", line=number, column="quantity")
    as_of_us = parse_time(_cell(row, columns, "as_of", number), line=number)
    price: float | None = None
    i = columns.get("unit_price")
    if i is not None and i < len(row) and row[i].strip():
        try:
            price = float(row[i].strip())
        except ValueError:
            raise BookError(f"{row[i].strip()!r} is not a number", line=number, column="unit_price") from None
        if not math.isfinite(price) or not 0 <= price <= MAX_UNIT_PRICE:
            raise BookError(f"a price is a number from 0 to {MAX_UNIT_PRICE}", line=number, column="unit_price")
    return store_id, as_of_us, BookLine(gtin=gtin, quantity=quantity, unit_price=price)


def parse_time(text: str, *, line: int | None = None, column: str = "as_of") -> int:
    """An RFC 3339 time with an offset, in µs."""
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise BookError(f"{text!r} is not an RFC 3339 time", line=line, column=column) from None
    if value.tzinfo is None:
        raise BookError(f"{text!r} has no offset (e.g. 2026-01-01T22:00:00+01:00)", line=line, column=column)
    return datetime_to_us(value)


@dataclass(frozen=True, slots=True)
class Difference:
    """RFID vs book for one GTIN of one import."""

    gtin: str
    book: int
    rfid: int
    unit_price: float | None

    @property
    def difference(self) -> int:
        return self.rfid - self.book

    @property
    def kind(self) -> str:
        d = self.difference
        return "over" if d > 0 else "under" if d < 0 else "match"

    @property
    def value(self) -> float | None:
        """The difference priced at the book's unit price (None when the book gives no price)."""
        return None if self.unit_price is None else round(self.difference * self.unit_price, 2)


def differences(book: BookImport, rfid_on_hand: Mapping[str, int]) -> list[Difference]:
    """Every GTIN of the book or of RFID stock, sorted by GTIN.

    A GTIN RFID sees and the book lacks is an *over* against a book of 0 (with no
    price); a GTIN the book lists and RFID lacks is *under*.
    """
    prices = {b.gtin: b.unit_price for b in book.lines}
    books = {b.gtin: b.quantity for b in book.lines}
    gtins = sorted(set(books) | {g for g, n in rfid_on_hand.items() if n})
    return [
        Difference(gtin=g, book=books.get(g, 0), rfid=rfid_on_hand.get(g, 0), unit_price=prices.get(g)) for g in gtins
    ]


@dataclass(frozen=True, slots=True)
class DifferenceTotals:
    gtins: int
    matching: int
    over_units: int
    under_units: int
    book_units: int
    over_value: float | None
    under_value: float | None

    @property
    def difference_rate(self) -> float:
        """Units in difference (both ways) per book unit; 0 for an empty book that RFID agrees with."""
        moved = self.over_units + self.under_units
        return moved / self.book_units if self.book_units > 0 else float(moved > 0)


def totals(diffs: list[Difference]) -> DifferenceTotals:
    over = [d for d in diffs if d.difference > 0]
    under = [d for d in diffs if d.difference < 0]
    priced = any(d.unit_price is not None for d in diffs)
    return DifferenceTotals(
        gtins=len(diffs),
        matching=sum(1 for d in diffs if d.difference == 0),
        over_units=sum(d.difference for d in over),
        under_units=-sum(d.difference for d in under),
        book_units=sum(max(d.book, 0) for d in diffs),
        over_value=round(sum(d.value or 0.0 for d in over), 2) if priced else None,
        under_value=round(-sum(d.value or 0.0 for d in under), 2) if priced else None,
    )
