"""The accuracy bench's scorer and replay, on one small scenario (so that the figures cannot rot)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from functools import cache

import pytest

from cloud.availability.rules import availability
from tagledger.app.benchmarks.accuracy import (
    SAMPLE_EVERY_S,
    UNKNOWN,
    Belief,
    Score,
    belief_of_record,
    empty_ledgers,
    main,
    replay,
    sample,
    truth_belief,
)
from tagledger.app.sim.scenarios import Outage, Recording, Scenario, record
from tagledger.clock import US_PER_S
from tagledger.ledger.model import ItemRecord, ItemState, StockRow

SMALL = Scenario(
    "test-small",
    "boutique",
    5,
    items=120,
    minutes=8,
    rates={"sale": 2.0, "theft": 0.5, "fitting": 0.5, "restock": 0.5, "return": 0.3},
    outages=(Outage("b-back", 2, 3, announced=False),),
    duplicates=1,
)


@cache
def small() -> Recording:
    return record(SMALL)


def _instants(rec: Recording) -> list[int]:
    step = SAMPLE_EVERY_S * US_PER_S
    return [*range(rec.start_us, rec.end_us, step), rec.end_us]


def test_the_truth_scores_perfectly() -> None:
    rec = small()
    score = Score()
    for t in _instants(rec):
        sample(rec, t, truth_belief(rec, t), score)
    f = score.figures()
    # A duplicated EPC is a tag anomaly, kept out of the counts: a belief that knows where
    # every item is but counts that EPC (as a per-EPC ledger that did not find it would)
    # is one off; one that keeps it out, as the gateway does once it found it, is exact.
    dup_gtins = {i.gtin for i in rec.truth if i.epc in rec.duplicated}
    assert len(dup_gtins) == 1
    assert f["zone_accuracy"] == 1.0
    assert f["false_departures"] == 0.0
    assert f["missed_departures"] == 0.0
    assert 0 < f["count_abs_error"] == f["sellable_abs_error"] <= 1 / 100
    assert score.gone > 0, "the scenario must sell or lose items, or missed departures measure nothing"
    kept_out = Score()
    for t in _instants(rec):
        perfect = truth_belief(rec, t)
        sample(rec, t, lambda epc, perfect=perfect: UNKNOWN if epc in rec.duplicated else perfect(epc), kept_out)
    assert kept_out.figures()["count_abs_error"] == kept_out.figures()["sellable_abs_error"] == 0.0


def test_the_truth_says_where_every_delivered_and_moved_item_is() -> None:
    """Items put down side by side stay inside the zone they are put in: stock is never nowhere."""
    busy = dataclasses.replace(
        SMALL, name="test-deliveries", rates={"delivery": 3.0, "restock": 3.0, "overstock": 2.0}, outages=()
    )
    rec = record(busy)
    delivered = [i for i in rec.truth if i.changes[0][0] > rec.start_us]
    assert len(delivered) > 30
    for item in rec.truth:
        zones = [z for _, z in item.changes]
        first = next(k for k, z in enumerate(zones) if z is not None)
        assert None not in zones[first:], (item.epc, item.changes)  # nothing here is sold, stolen or returned


def test_knowing_nothing_scores_worst_and_frozen_stock_misses_every_departure() -> None:
    rec = small()
    blind, frozen = Score(), Score()
    at_start = truth_belief(rec, rec.start_us)
    for t in _instants(rec):
        sample(rec, t, lambda _epc: UNKNOWN, blind)
        sample(rec, t, at_start, frozen)
    f = blind.figures()
    assert f["zone_accuracy"] == 0.0
    assert sum(share["share"] for share in blind.worst(100)) == pytest.approx(1.0, abs=1e-3)
    assert {w["believed"] for w in blind.worst(100)} == {"none"}
    assert f["count_abs_error"] == f["sellable_abs_error"] == 1.0
    assert f["missed_departures"] == 0.0  # nothing counted, nothing missed
    g = frozen.figures()
    # Items stolen or sold in the run stay counted by a belief frozen at the start.
    started = {i.epc for i in rec.truth if i.zone_at(rec.start_us) is not None}
    gone_from_start = [i for i in rec.truth if i.epc in started and i.zone_at(rec.end_us) is None]
    assert gone_from_start
    assert g["missed_departures"] == 1.0
    assert 0.5 < g["zone_accuracy"] < 1.0


def test_a_belief_that_everything_was_sold_is_all_false_departures() -> None:
    rec = small()
    score = Score()
    for t in _instants(rec):
        sample(rec, t, lambda _epc: Belief(False, None, True, False), score)
    assert score.figures()["false_departures"] == 1.0


def test_replay_through_the_real_ingest_path_gives_sane_figures() -> None:
    with empty_ledgers() as fresh:
        run = asyncio.run(replay(small(), fresh()))
    ours, theirs = run.tagledger.figures(), run.edgex.figures()
    assert run.tagledger.samples == run.edgex.samples == len(_instants(small()))
    for f in (ours, theirs):
        assert 0.5 < f["zone_accuracy"] <= 1.0
        assert 0.0 <= f["count_abs_error"] < 0.3
        assert 0.0 <= f["false_departures"] < 0.2
    assert run.outage is not None
    assert run.end is not None
    assert run.outage[0].samples == 6  # 3 minutes down, one sample every 30 s
    assert run.end[0].samples == 1
    # The baseline only departs a tag after 600 s of silence: in an 8-minute run it misses them all.
    assert theirs["missed_departures"] == 1.0
    assert ours["missed_departures"] < 0.8  # POS transactions are authoritative


def test_unknown_scenario_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--scenario", "no-such", "--json"]) == 2
    assert "known:" in capsys.readouterr().err


def test_json_line_has_the_issue_s_shape(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    tiny = dataclasses.replace(SMALL, name="test-tiny", items=40, minutes=2, outages=())
    monkeypatch.setattr("tagledger.app.benchmarks.accuracy.SCENARIOS", (tiny,))
    assert main(["--json", "--seeds", "2"]) == 0
    doc = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [(r["name"], r["seed"]) for r in doc["scenarios"]] == [("test-tiny", 5), ("test-tiny", 1005)]
    keys = {"zone_accuracy", "count_abs_error", "false_departures", "missed_departures", "sellable_abs_error"}
    for row in doc["scenarios"]:
        assert set(row["tagledger"]) == set(row["edgex"]) == keys
    assert doc["scenarios"][0]["sightings"] != doc["scenarios"][1]["sightings"]  # another draw


def test_a_recording_is_the_same_for_the_same_seed() -> None:
    again = record(SMALL)
    assert again.messages == small().messages
    assert [t.changes for t in again.truth] == [t.changes for t in small().truth]


@pytest.mark.parametrize("state", list(ItemState))
def test_the_scorer_counts_an_item_as_the_api_counts_it(state: ItemState) -> None:
    """Counted = in the store's on-hand stock; sellable = available to sell with no holds or safety stock."""
    gtin = "03012346100006"
    api = availability("s", gtin, [StockRow("s", gtin, "floor", state, 1)])
    b = belief_of_record(ItemRecord("E", "s", gtin, "1", "sgtin-96", state, "floor", 0, 1.0))
    assert b.counted == (api.on_hand == 1)
    assert b.sellable == (api.available_to_sell == 1)
    assert not (b.counted and b.gone)
