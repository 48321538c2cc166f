"""EPC decoding against published GS1 Tag Data Standard examples."""

from __future__ import annotations

import pytest

from gateway.epc import UNKNOWN_SCHEME, DecodedEpc, cache_info, decode_epc


def test_sgtin96_gs1_example() -> None:
    # TDS example: urn:epc:tag:sgtin-96:3.0614141.812345.6789
    d = decode_epc("3074257BF7194E4000001A85")
    assert d == DecodedEpc("3074257BF7194E4000001A85", "sgtin-96", "80614141123458", "6789")
    assert d.is_sgtin


def test_sgtin96_lower_case_is_normalised_to_the_same_entry() -> None:
    assert decode_epc("3074257bf7194e4000001a85") is decode_epc("3074257BF7194E4000001A85")


def test_sgtin96_other_item() -> None:
    d = decode_epc("3034257BF400B7800004CB2F")  # urn:epc:id:sgtin:0614141.000734.314159
    assert (d.scheme, d.gtin, d.serial) == ("sgtin-96", "00614141007349", "314159")


def test_sgtin198_alphanumeric_serial_with_escape() -> None:
    # sgtin-198 of 0614141.812345 serial "AB-12/x" (encoded with epcpy, 208 bits word-aligned).
    d = decode_epc("3634257BF7194E60C25AC592FF00000000000000000000000000")
    assert (d.scheme, d.gtin, d.serial) == ("sgtin-198", "80614141123458", "AB-12/x")


@pytest.mark.parametrize(
    ("epc", "scheme"),
    [
        ("3114257BF4003E8000000457", "sscc-96"),
        ("3314257BF400000000000009", "grai-96"),
        ("3414257BF400000000BC6038", "giai-96"),
    ],
)
def test_other_schemes_keep_their_name_and_no_gtin(epc: str, scheme: str) -> None:
    d = decode_epc(epc)
    assert (d.epc, d.scheme, d.gtin, d.serial) == (epc, scheme, None, None)


@pytest.mark.parametrize(
    "epc",
    [
        "E2801160600002",  # a TID-looking value: no EPC header
        "000000000000000000000000",
        "36314257BF400000000000000000000000000000000000000000000000",  # sgtin-198 header, bad body
        "ZZ",
        "",
    ],
)
def test_undecodable_is_unknown_not_an_error(epc: str) -> None:
    d = decode_epc(epc)
    assert d.scheme == UNKNOWN_SCHEME
    assert d.gtin is None


def test_cache_hits() -> None:
    decode_epc("3074257BF7194E4000001A85")
    hits_before, _, _ = cache_info()
    decode_epc("3074257BF7194E4000001A85")
    hits_after, _, size = cache_info()
    assert hits_after == hits_before + 1
    assert size >= 1
