from __future__ import annotations

import pytest

from cloud.gtin import InvalidGtin, check_digit, normalise_gtin


@pytest.mark.parametrize(
    ("raw", "gtin14"),
    [
        ("00614141000012", "00614141000012"),  # GTIN-14 as the ledger stores it
        ("614141000012", "00614141000012"),  # GTIN-12 (UPC-A) padded
        ("4006381333931", "04006381333931"),  # GTIN-13 (EAN-13)
        ("96385074", "00000096385074"),  # GTIN-8
        ("10614141000019", "10614141000019"),  # GTIN-14 with packaging indicator 1
    ],
)
def test_valid_gtins_are_padded_to_14_digits(raw: str, gtin14: str) -> None:
    assert normalise_gtin(raw) == gtin14


def test_check_digit_follows_gs1_mod10() -> None:
    # 4006381333931: digits 400638133393 -> check digit 1 (GS1 worked example).
    assert check_digit("400638133393") == 1
    assert check_digit("0061414100001") == 2
    assert check_digit("0000000000000") == 0


@pytest.mark.parametrize(
    ("raw", "reason_part"),
    [
        ("", "digits"),
        ("1234567", "8 to 14 digits"),
        ("123456789012345", "8 to 14 digits"),
        ("00614141000013", "check digit"),
        ("0061414100001X", "only the digits"),
        ("006141410000 2", "only the digits"),
        ("-0614141000012", "only the digits"),
        ("٠٠٦١٤١٤١٠٠٠٠١٢", "only the digits"),  # Arabic-Indic digits are digits to str.isdigit, not to GS1
    ],
)
def test_invalid_gtins_are_refused_with_a_reason(raw: str, reason_part: str) -> None:
    with pytest.raises(InvalidGtin) as info:
        normalise_gtin(raw)
    assert reason_part in info.value.reason
    assert info.value.value == raw


def test_check_digit_agrees_with_the_weights_written_out() -> None:
    def by_weights(body: str) -> int:
        total = sum(int(ch) * (3 if i % 2 == 0 else 1) for i, ch in enumerate(reversed(body)))
        return (10 - total % 10) % 10

    for n in range(0, 10**7, 9_973):
        for width in (7, 11, 12, 13):
            body = str(n).zfill(width)
            assert check_digit(body) == by_weights(body), body


def test_a_refused_gtin_is_refused_again_and_a_valid_one_answered_again() -> None:
    # normalise_gtin is cached: the cache keeps answers, never a refusal.
    for _ in range(2):
        with pytest.raises(InvalidGtin):
            normalise_gtin("00614141000013")
        assert normalise_gtin("614141000012") == "00614141000012"
