"""Edge aggregation: exact folds, the milliwatt mean, window cuts."""

from __future__ import annotations

import math

import pytest

from edge.aggregate import Aggregator, dbm_to_mw, mw_to_dbm
from edge.reads import TagRead
from tagledger.clock import ManualClock
from tagledger.wire import Gap

EPC_A = "3034257BF7194E4000001A85"
EPC_B = "3034257BF7194E4000001A86"
T0 = 1_795_000_000_000_000


def read(epc: str = EPC_A, antenna: int = 1, at: int = T0, rssi: float = -60.0, count: int = 1) -> TagRead:
    return TagRead(epc=epc, antenna=antenna, first_seen_us=at, last_seen_us=at, count=count, peak_rssi=rssi)


def test_fold_keeps_first_last_count_peak() -> None:
    clock = ManualClock()
    agg = Aggregator(window_ms=1000, clock=clock)
    agg.add([read(at=T0 + 500, rssi=-61), read(at=T0 + 100, rssi=-55), read(at=T0 + 900, rssi=-70, count=3)])
    window = agg.flush()
    assert window is not None
    (obs,) = window.observations
    assert (obs.epc, obs.antenna) == (EPC_A, 1)
    assert obs.first_seen_us == T0 + 100
    assert obs.last_seen_us == T0 + 900
    assert obs.count == 5
    assert obs.peak_rssi == -55
    assert window.reads == 5


def test_mean_rssi_is_averaged_in_milliwatts_weighted_by_count() -> None:
    agg = Aggregator(window_ms=1000, clock=ManualClock())
    # -50 dBm = 1e-5 mW, -60 dBm = 1e-6 mW.  3 reads at -50 and 1 at -60:
    # (3e-5 + 1e-6) / 4 = 7.75e-6 mW = -51.107 dBm (the dBm average would say -52.5).
    agg.add([read(rssi=-50, count=3), read(rssi=-60, count=1)])
    window = agg.flush()
    assert window is not None
    (obs,) = window.observations
    assert obs.mean_rssi == round(10 * math.log10(7.75e-6), 2) == -51.11
    assert obs.peak_rssi == -50


def test_two_reads_mean_is_not_the_dbm_average() -> None:
    agg = Aggregator(window_ms=1000, clock=ManualClock())
    agg.add([read(rssi=-50), read(rssi=-60)])
    window = agg.flush()
    assert window is not None
    assert window.observations[0].mean_rssi == -52.6  # 10·log10(5.5e-6)


def test_conversions_round_trip() -> None:
    assert dbm_to_mw(0) == 1.0
    assert dbm_to_mw(-30) == pytest.approx(1e-3)
    assert mw_to_dbm(dbm_to_mw(-47.5)) == pytest.approx(-47.5)


def test_epc_and_antenna_fold_separately() -> None:
    agg = Aggregator(window_ms=1000, clock=ManualClock())
    agg.add([read(EPC_A, 1), read(EPC_A, 2), read(EPC_B, 1), read(EPC_A, 1)])
    window = agg.flush()
    assert window is not None
    counts = {(o.epc, o.antenna): o.count for o in window.observations}
    assert counts == {(EPC_A, 1): 2, (EPC_A, 2): 1, (EPC_B, 1): 1}


def test_window_is_cut_when_its_time_is_up_on_the_host_clock() -> None:
    clock = ManualClock()
    agg = Aggregator(window_ms=500, clock=clock)
    assert agg.poll() is None  # nothing open
    agg.add([read()])
    opened = clock.now_us()
    assert agg.deadline_us == opened + 500_000
    clock.advance(0.499)
    assert agg.poll() is None
    agg.add([read(at=T0 + 10)])
    clock.advance(0.001)
    window = agg.poll()
    assert window is not None
    assert window.reason == "time"
    assert window.observations[0].count == 2
    assert (window.opened_us, window.closed_us) == (opened, opened + 500_000)
    # The next window opens with the next read, not on a fixed grid.
    assert agg.deadline_us is None
    clock.advance(3)
    agg.add([read(at=T0 + 3_000_000)])
    assert agg.deadline_us == clock.now_us() + 500_000


def test_window_is_cut_when_full() -> None:
    agg = Aggregator(window_ms=1000, clock=ManualClock(), max_observations=3)
    epcs = [f"3034257BF7194E40000000{i:02X}" for i in range(7)]
    cut = agg.add([read(e) for e in epcs] + [read(epcs[6])])
    assert [len(w.observations) for w in cut] == [3, 3]
    assert all(w.reason == "full" for w in cut)
    rest = agg.flush()
    assert rest is not None
    assert [(o.epc, o.count) for o in rest.observations] == [(epcs[6], 2)]
    # A known pair never forces a cut, however many reads it gets.
    agg.add([read(epcs[0])] * 10_000)
    assert agg.open_observations == 1


def test_gaps_ride_in_the_next_window_even_without_reads() -> None:
    clock = ManualClock()
    agg = Aggregator(window_ms=1000, clock=clock)
    gap = Gap(reason="queue_overflow", dropped_reads=17, since_us=T0, until_us=T0 + 5)
    agg.add_gap(gap)
    clock.advance(1)
    window = agg.poll()
    assert window is not None
    assert window.gaps == [gap]
    assert window.observations == []
    assert agg.flush() is None


def test_out_of_range_rssi_is_clamped_and_invalid_epc_dropped(caplog: pytest.LogCaptureFixture) -> None:
    agg = Aggregator(window_ms=1000, clock=ManualClock())
    agg.add([read(rssi=-200), read(EPC_B, rssi=35), read("not-hex", rssi=-50, count=4)])
    window = agg.flush()
    assert window is not None
    by_epc = {o.epc: o for o in window.observations}
    assert by_epc[EPC_A].peak_rssi == -128
    assert by_epc[EPC_B].peak_rssi == 20
    assert "not-hex" not in by_epc
    assert agg.invalid_reads == 4
    assert "dropping invalid observation" in caplog.text


def test_a_new_sighting_makes_a_long_window_due_within_prompt_ms() -> None:
    clock = ManualClock()
    agg = Aggregator(window_ms=5000, clock=clock, prompt_ms=500)
    opened = clock.now_us()
    agg.add([read(EPC_A)])
    assert agg.deadline_us == opened + 500_000  # never seen: out within 0.5 s, not 5 s
    clock.advance(0.5)
    first = agg.poll()
    assert first is not None
    assert [o.epc for o in first.observations] == [EPC_A]
    # The same tag again is not news: the next window runs its full length ...
    opened = clock.now_us()
    agg.add([read(EPC_A, at=T0 + 600_000)])
    assert agg.deadline_us == opened + 5_000_000
    clock.advance(2.0)
    # ... until another tag (or the same tag on another antenna) is first seen in it.
    agg.add([read(EPC_A, antenna=2, at=T0 + 2_600_000)])
    assert agg.deadline_us == clock.now_us() + 500_000
    clock.advance(0.5)
    second = agg.poll()
    assert second is not None
    assert {(o.epc, o.antenna) for o in second.observations} == {(EPC_A, 1), (EPC_A, 2)}
    assert second.closed_us - second.opened_us == 2_500_000


def test_a_pair_unread_for_a_minute_is_news_again_and_off_means_off() -> None:
    clock = ManualClock()
    agg = Aggregator(window_ms=5000, clock=clock, prompt_ms=500)
    agg.add([read(EPC_B)])
    clock.advance(0.5)
    assert agg.poll() is not None
    clock.advance(61)
    agg.add([read(EPC_B, at=T0 + 61_500_000)])
    assert agg.deadline_us == clock.now_us() + 500_000
    off = Aggregator(window_ms=5000, clock=clock)
    opened = clock.now_us()
    off.add([read(EPC_B)])
    assert off.deadline_us == opened + 5_000_000
    with pytest.raises(ValueError, match="prompt_ms"):
        Aggregator(window_ms=5000, clock=clock, prompt_ms=0)
