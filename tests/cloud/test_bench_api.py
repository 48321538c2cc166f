"""`tagledger bench api` (the open-loop schedule; a smoke run with every figure) and `bench api-cpu` (a smoke run)."""

from __future__ import annotations

import json

import pytest

from tagledger.app.benchmarks import api as bench_api
from tagledger.app.benchmarks import api_cpu as bench_api_cpu


def test_open_loop_schedule_is_evenly_spaced_and_dealt_round_robin() -> None:
    schedules = bench_api.open_loop_schedule(rate=100.0, seconds=1.0, connections=3, start=10.0)
    assert [len(s) for s in schedules] == [34, 33, 33]
    merged = sorted(t for s in schedules for t in s)
    assert merged == pytest.approx([10.0 + i / 100 for i in range(100)])
    # Each connection keeps a fixed pace of its own: connections / rate apart.
    assert schedules[1][:3] == pytest.approx([10.01, 10.04, 10.07])


def test_open_loop_schedule_refuses_a_zero_rate() -> None:
    with pytest.raises(ValueError, match="rate"):
        bench_api.open_loop_schedule(rate=0.0, seconds=1.0, connections=1, start=0.0)


@pytest.mark.integration
@pytest.mark.slow
def test_bench_api_prints_the_figures_as_its_last_line(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--items", "20000", "--stores", "10", "--gtins", "50", "--connections", "4"]
    assert bench_api.main([*argv, "--seconds", "1", "--warmup-s", "0.3", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    issue_keys = {"items", "rps", "p50_ms", "p99_ms", "trivial_rps", "ratio_to_trivial"}
    method_keys = {"saturation_p50_ms", "saturation_p99_ms", "latency_load", "latency_rps", "latency_achieved_rps"}
    assert issue_keys | method_keys <= set(figures)
    assert figures["items"] == 20000
    assert figures["non_200"] == 0
    assert figures["latency_non_200"] == 0
    assert figures["rps"] > 0
    assert figures["trivial_rps"] > 0
    # The open-loop phase runs at the stated fraction of the measured maximum.
    assert figures["latency_rps"] == pytest.approx(0.5 * figures["rps"], abs=0.1)
    assert figures["latency_requests"] > 0
    assert 0 < figures["p50_ms"] <= figures["p99_ms"]
    # The server is local: its CPU per request is read from /proc for both endpoints.
    assert figures["server_cpu_us_per_request"] > 0
    assert figures["trivial_server_cpu_us_per_request"] > 0
    assert figures["client_cpu_us_per_request"] > 0


@pytest.mark.integration
def test_bench_api_cpu_reports_the_cpu_of_both_routes(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_api_cpu.main(["--items", "2000", "--requests", "100", "--rounds", "2", "--json"]) == 0
    figures = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert figures["non_200"] == 0  # every look-up and every /healthz answered 200
    assert figures["lookup_cpu_us_min"] > 0
    assert figures["healthz_cpu_us_min"] > 0
    assert figures["lookup_cpu_us_min"] <= figures["lookup_cpu_us_median"]
