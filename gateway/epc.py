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
per EPC: far too much to pay per read at 200k reads/s, but each EPC is decoded
once when it becomes an item and then hits the cache.  The cache is a bounded
LRU of 2**20 entries (~35 k items per store, a gateway serving a few dozen
stores stays inside it; beyond that, old EPCs are simply decoded again).

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
CACHE_SIZE = 1 << 20

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


@lru_cache(maxsize=CACHE_SIZE)
def _decode_cached(epc: str) -> DecodedEpc:
    if len(epc) < 2 or not _HEX.issuperset(epc):
        return DecodedEpc(epc, UNKNOWN_SCHEME, None, None)
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
