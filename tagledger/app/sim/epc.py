"""SGTIN-96 encoding per the GS1 EPC Tag Data Standard (bit-packed here; tests decode with epcpy).

Layout, 96 bits: header ``0x30`` (8) | filter (3) | partition (3) | company prefix
and item reference (44 bits together, split by the partition) | serial (38).
The item reference field holds the GTIN's indicator digit followed by its item
reference digits; the GTIN check digit is not encoded.
"""

from __future__ import annotations

SGTIN96_HEADER = 0x30
FILTER_POS_ITEM = 1  # "point of sale trade item": what a retail item tag carries
MAX_SERIAL = (1 << 38) - 1

# company prefix digits -> (partition, company prefix bits, item reference bits)
_PARTITIONS: dict[int, tuple[int, int, int]] = {
    12: (0, 40, 4),
    11: (1, 37, 7),
    10: (2, 34, 10),
    9: (3, 30, 14),
    8: (4, 27, 17),
    7: (5, 24, 20),
    6: (6, 20, 24),
}


def gtin_check_digit(first13: str) -> int:
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(first13))
    return (10 - total % 10) % 10


def sgtin96(gtin14: str, serial: int, company_prefix_digits: int = 7, filter_value: int = FILTER_POS_ITEM) -> bytes:
    """The 12 bytes of the SGTIN-96 EPC of item ``serial`` of ``gtin14``."""
    if len(gtin14) != 14 or not gtin14.isdigit():
        raise ValueError(f"GTIN-14 must be 14 digits, got {gtin14!r}")
    if gtin_check_digit(gtin14[:13]) != int(gtin14[13]):
        raise ValueError(f"GTIN {gtin14} has a wrong check digit")
    if company_prefix_digits not in _PARTITIONS:
        raise ValueError("company prefix must have 6 to 12 digits")
    if not 0 <= serial <= MAX_SERIAL:
        raise ValueError("SGTIN-96 serials are 0 .. 2^38-1")
    partition, cp_bits, ir_bits = _PARTITIONS[company_prefix_digits]
    company = int(gtin14[1 : 1 + company_prefix_digits])
    item_ref = int(gtin14[0] + gtin14[1 + company_prefix_digits : 13])
    value = SGTIN96_HEADER
    value = (value << 3) | filter_value
    value = (value << 3) | partition
    value = (value << cp_bits) | company
    value = (value << ir_bits) | item_ref
    value = (value << 38) | serial
    return value.to_bytes(12, "big")
