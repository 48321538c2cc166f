"""EPCs as callers write them: upper- or lower-case hex, or a GS1 pure-identity URN.

The ledger keys items by the hex the tag holds.  A pure-identity URN
(``urn:epc:id:sgtin:0614141.812345.6789``) names the item without the tag's
filter value and coding size: an SGTIN URN stands for up to 16 hex EPCs (8
filter values x SGTIN-96/198), which the ledger is asked for by primary key
(``candidates``).  Other schemes' URNs (SSCC, GIAI, ...) are refused with a
clear 422 for now; their hex is accepted.

Answers carry both spellings: ``epc`` (hex) and ``epc_uri`` (pure identity,
decoded by epcpy, None for an EPC no scheme decodes).  epcpy costs tens of µs
per EPC, so the URI of recently shown EPCs is cached.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from functools import lru_cache

from epcpy.epc_schemes.sgtin import SGTIN, SGTINFilterValue
from epcpy.utils.common import ConvertException
from epcpy.utils.parsers import epc_pure_identity_to_scheme, hex_to_tag_encodable

from cloud.errors import InvalidParameter

# Same bounds as the wire contract's EpcHex: 16-bit minimum, 496-bit EPCs at most.
EPC_MIN_HEX = 4
EPC_MAX_HEX = 124
_HEX = frozenset("0123456789ABCDEF")
URN_PREFIX = "urn:epc:id:"
#: What the OpenAPI document says an EPC parameter is.
EPC_PARAM_DESCRIPTION = (
    "EPC as hexadecimal (either case) or as a pure-identity URN (urn:epc:id:sgtin:CompanyPrefix.ItemRef.Serial)."
)


@dataclass(frozen=True, slots=True)
class EpcRef:
    """What a caller named (``given``) and the hex EPCs it may stand for (one for hex, up to 16 for a URN)."""

    given: str
    candidates: tuple[str, ...]


def parse_epc(value: str) -> EpcRef:
    """Hex (upper-cased) or an SGTIN pure-identity URN; anything else is 422 ``invalid_epc``."""
    if value[: len(URN_PREFIX)].lower() == URN_PREFIX:
        return _parse_urn(value)
    epc = value.upper()
    if not (EPC_MIN_HEX <= len(epc) <= EPC_MAX_HEX and set(epc) <= _HEX):
        raise InvalidParameter(
            f"an EPC is {EPC_MIN_HEX} to {EPC_MAX_HEX} hexadecimal digits, or a pure-identity URN"
            " (urn:epc:id:sgtin:...)",
            code="invalid_epc",
            details={"value": value},
        )
    return EpcRef(given=value, candidates=(epc,))


def _parse_urn(value: str) -> EpcRef:
    try:
        scheme = epc_pure_identity_to_scheme(value)
    except (ConvertException, ValueError, IndexError) as exc:
        raise InvalidParameter(
            f"not a valid EPC pure-identity URN: {exc}", code="invalid_epc", details={"value": value}
        ) from None
    if not isinstance(scheme, SGTIN):
        raise InvalidParameter(
            "only SGTIN URNs (urn:epc:id:sgtin:...) are resolved; give other EPCs as hex",
            code="unsupported_epc_scheme",
            details={"value": value},
        )
    candidates: list[str] = []
    for coding in SGTIN.BinaryCodingScheme:
        for filter_value in SGTINFilterValue:
            # A serial too long or not numeric has no SGTIN-96 coding: that candidate does not exist.
            with contextlib.suppress(ConvertException, ValueError):
                candidates.append(scheme.hex(binary_coding_scheme=coding, filter_value=filter_value).upper())
    return EpcRef(given=value, candidates=tuple(candidates))


@lru_cache(maxsize=4096)
def epc_uri(epc_hex: str) -> str | None:
    """The pure-identity URN of a hex EPC, or None if no scheme decodes it."""
    try:
        uri: str = hex_to_tag_encodable(epc_hex).epc_uri
    except (ConvertException, ValueError, IndexError, TypeError):
        return None
    return uri
