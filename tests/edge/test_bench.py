"""`tagledger bench edge` runs end to end and reports every figure (a smoke run: it checks no timing)."""

from __future__ import annotations

import json

import pytest

from tagledger.app.benchmarks import edge as bench_edge


@pytest.mark.integration
@pytest.mark.slow
def test_bench_edge_prints_the_figures_as_its_last_line(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--reads-per-s", "400", "--seconds", "11", "--offline-s", "6", "--warmup-s", "1", "--json"]
    assert bench_edge.main(argv) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    wanted = {"reads_per_s", "cpu_percent", "rss_mb", "messages_per_s", "aggregation_ratio", "spool_bytes_per_hour"}
    assert wanted <= set(figures)
    # Measured, not echoed: the agent read, folded, spooled while offline (4 s measured:
    # at least one 2 s window of the sales-floor profile) and drained after.
    assert figures["reads_per_s"] > 0
    assert figures["cpu_percent"] > 0
    assert 10 < figures["rss_mb"] < 1000
    assert figures["messages_per_s"] > 0
    assert figures["aggregation_ratio"] >= 1
    assert figures["spool_payload_bytes_per_hour"] > 0
    assert figures["batches"] >= 2
    # No assertion on "duplicates": a batch in flight when the link is cut is re-sent
    # after it comes back (the gateway de-duplicates it); loss and duplication are
    # asserted exactly in tests/edge/test_delivery.py.


@pytest.mark.integration
@pytest.mark.slow
def test_bench_edge_per_tag_mode_gets_one_tag_per_report(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--reads-per-s", "300", "--seconds", "8", "--offline-s", "3", "--warmup-s", "1"]
    assert bench_edge.main([*argv, "--reports", "per-tag", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert figures["reports"] == "per-tag"
    assert figures["reads_per_s"] > 0
    # One read per RO_ACCESS_REPORT.
    assert figures["reports_per_s"] == pytest.approx(figures["reads_per_s"], rel=0.05)
