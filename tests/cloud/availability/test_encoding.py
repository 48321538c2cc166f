"""The look-up's encoding: exactly the bytes of the documented model, the headers of a plain Response."""

from __future__ import annotations

import pytest
from starlette.responses import Response

from cloud.availability import rules
from cloud.availability.endpoints import CACHE_CONTROL, LookupAnswer, encode_answer
from cloud.availability.schemas import AvailabilityOut
from cloud.availability.service import answer
from tagledger.ledger.model import ItemState, StockRow

G1 = "00614141000012"


def rows(*spec: tuple[str, ItemState, int]) -> list[StockRow]:
    return [StockRow(store_id="s1", gtin=G1, zone=z, state=st, count=n) for z, st, n in spec]


@pytest.mark.parametrize(
    ("stock", "reserved", "safety", "as_of_us"),
    [
        ([], 0, 0, 1_767_225_600_000_000),  # nothing on hand: confidence null, whole second
        (rows(("floor", ItemState.PRESENT, 3)), 0, 0, 1_767_225_600_000_001),
        (
            rows(
                ("floor", ItemState.PRESENT, 5),
                ("backroom", ItemState.UNOBSERVED, 2),
                ("fitting-room", ItemState.EXITING, 1),
            ),
            2,
            1,
            1_767_225_612_345_678,
        ),
        (rows(("floor", ItemState.RETURNED, 1)), 4, 0, 1_000_000),  # over-reserved
    ],
)
def test_the_answer_is_the_models_json(stock: list[StockRow], reserved: int, safety: int, as_of_us: int) -> None:
    a = rules.availability("s1", G1, stock, reserved=reserved, safety_stock=safety)
    numbers, body = encode_answer(a, as_of_us)
    model = answer(a, as_of_us)
    assert body == model.model_dump_json().encode()
    assert numbers == model.model_dump_json(exclude={"as_of"}).encode()
    assert AvailabilityOut.model_validate_json(body) == model


def test_the_rules_result_has_the_models_fields_in_order() -> None:
    assert [*rules.Availability.__dataclass_fields__, "as_of"] == list(AvailabilityOut.model_fields)


def test_the_lookups_response_has_the_headers_starlettes_response_would_give() -> None:
    body, tag = b'{"store_id":"s1"}', '"0123456789abcdef01234567"'
    fast = LookupAnswer(body, tag)
    plain = Response(body, media_type="application/json", headers={"ETag": tag, "Cache-Control": CACHE_CONTROL})
    assert (fast.status_code, fast.body, fast.raw_headers) == (plain.status_code, plain.body, plain.raw_headers)
    assert fast.background is None
