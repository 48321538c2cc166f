"""EPC hex -> what the ledger records about an item's identity (GS1 Tag Data Standard).

Interface::

    decode_epc(epc_hex: str) -> DecodedEpc     # cached, never raises
    DecodedEpc(epc, scheme, gtin, serial)       # frozen

* SGTIN-96 / SGTIN-198 -> ``gtin`` (GTIN-14) and ``serial`` (URI escapes undone);
* any other scheme epcpy can decode (SSCC-96, GIAI-96/202, GRAI-96/170, SGLN,
  GID, ...) -> its binary coding scheme name (``"sscc-96"``), ``gtin`` and
  ``serial`` None: the EPC is kept raw, the item is still an item;
* anything else (no known header, bad partition, not hex) -> scheme ``"unknown"``.

Decoding is done by epcpy (a maintained TDS implementation), which costs ~30-50 µs
per EPC: far too much to pay per read at 200k reads/s, but the state machine
decodes an EPC only once, when it becomes an item, and keeps the result on the
item.  SGTIN-96, by far the most common retail tag, has a bit-arithmetic fast
path (~2 µs) that is tested to agree with epcpy and defers to it for anything
unusual.  The LRU cache in front is therefore small (4,096 entries): it serves
repeats close in time (a glimpse that expired and comes back, a till line for an
EPC just read), not every item ever seen.  Sized for every item of a few dozen
stores (2**20) it had no hit at all in the ingest bench's stream, yet kept an
entry and a GC-tracked object per EPC ever admitted: up to a million objects
for every full collection to walk (measured on a busy 2-core host: ~0.7 µs per
object walked, so up to ~0.7 s per collection), for nothing.

Input is the upper-case hex that the wire contract and :mod:`gateway.formats`
produce; other spellings are normalised before the cache so that one EPC never
occupies two entries.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from functools import lru_cache

from epcpy.epc_schemes.sgtin import SGTIN
from epcpy.utils.common import ConvertException, replace_uri_escapes
from epcpy.utils.parsers import TAG_ENCODABLE_CLASSES, hex_to_tag_encodable

UNKNOWN_SCHEME = "unknown"
CACHE_SIZE = 1 << 12

_HEX = frozenset(string.hexdigits.upper())

# First byte (8-bit binary header) -> coding scheme name, e.g. "00110000" -> "sgtin-96".
_SCHEME_BY_HEADER: dict[str, str] = {
    header: scheme.value for cls in TAG_ENCODABLE_CLASSES for header, scheme in cls.header_to_schemes().items()
}


@dataclass(frozen=True, slots=True)
class DecodedEpc:
    epc: str  # upper-case hex, as read
    scheme: str  # "sgtin-96", "sgtin-198", "sscc-96", "giai-96", ..., or "unknown"
    gtin: str | None  # GTIN-14 for SGTIN, else None
    serial: str | None  # SGTIN serial, else None

    @property
    def is_sgtin(self) -> bool:
        return self.gtin is not None


def decode_epc(epc_hex: str) -> DecodedEpc:
    """Decode one EPC (hex).  Never raises: what cannot be decoded is scheme "unknown"."""
    if epc_hex.isupper() or epc_hex.isdigit():
        return _decode_cached(epc_hex)
    return _decode_cached(epc_hex.upper())


# SGTIN-96 partition table (TDS 14.5.1): partition -> (company prefix bits,
# digits, item reference bits, digits).  Digits always sum to 13.
_SGTIN_PARTITIONS = (
    (40, 12, 4, 1),
    (37, 11, 7, 2),
    (34, 10, 10, 3),
    (30, 9, 14, 4),
    (27, 8, 17, 5),
    (24, 7, 20, 6),
    (20, 6, 24, 7),
)


def _check_digit(digits13: str) -> int:
    # GS1 mod-10: weights 3,1,3,... from the rightmost digit; with 13 digits the
    # weight-3 digits are those at even positions from the left.
    total = 3 * sum(map(int, digits13[0::2])) + sum(map(int, digits13[1::2]))
    return (10 - total % 10) % 10


def _fast_sgtin96(epc: str) -> DecodedEpc | None:
    """SGTIN-96 by bit arithmetic (~20x faster than epcpy); None: let epcpy decide.

    Only well-formed values are answered here; anything unusual falls through to
    epcpy, so behaviour is epcpy's.  tests/gateway/test_epc.py checks both agree.
    """
    value = int(epc, 16)
    partition = (value >> 82) & 0b111
    if partition > 6:
        return None
    cp_bits, cp_digits, ir_bits, ir_digits = _SGTIN_PARTITIONS[partition]
    serial = value & ((1 << 38) - 1)
    item_ref = (value >> 38) & ((1 << ir_bits) - 1)
    company = (value >> (38 + ir_bits)) & ((1 << cp_bits) - 1)
    if company >= 10**cp_digits or item_ref >= 10**ir_digits:
        return None
    cp = f"{company:0{cp_digits}d}"
    ir = f"{item_ref:0{ir_digits}d}"
    body = ir[0] + cp + ir[1:]
    return DecodedEpc(epc, "sgtin-96", body + str(_check_digit(body)), str(serial))


@lru_cache(maxsize=CACHE_SIZE)
def _decode_cached(epc: str) -> DecodedEpc:
    if len(epc) < 2 or not _HEX.issuperset(epc):
        return DecodedEpc(epc, UNKNOWN_SCHEME, None, None)
    if len(epc) == 24 and epc[:2] == "30":
        fast = _fast_sgtin96(epc)
        if fast is not None:
            return fast
    header = f"{int(epc[:2], 16):08b}"
    scheme = _SCHEME_BY_HEADER.get(header)
    if scheme is None:
        return DecodedEpc(epc, UNKNOWN_SCHEME, None, None)
    try:
        tag = hex_to_tag_encodable(epc)
    except (ConvertException, ValueError, IndexError, KeyError):
        # A known header with an invalid body (bad partition, truncated EPC,
        # illegal characters): the tag is real, its content is not TDS.
        return DecodedEpc(epc, UNKNOWN_SCHEME, None, None)
    if isinstance(tag, SGTIN):
        # urn:epc:id:sgtin:CompanyPrefix.ItemRef.Serial -- the serial may contain dots.
        serial = tag.epc_uri.split(":", 4)[4].split(".", 2)[2]
        return DecodedEpc(epc, scheme, tag.gtin(), replace_uri_escapes(serial))
    return DecodedEpc(epc, scheme, None, None)


def cache_info() -> tuple[int, int, int]:
    """(hits, misses, current size) of the decode cache, for metrics."""
    info = _decode_cached.cache_info()
    return info.hits, info.misses, info.currsize
