"""deploy/monitoring/: the alert rules and the Grafana dashboard.

* The rules are checked by promtool (Debian package 'prometheus', installed by
  scripts/services.sh ``ensure_tools``): ``check rules`` for syntax and
  PromQL, ``test rules`` for the unit tests in tagledger-rules.test.yaml (each
  alert fires on the series that should raise it, and not on a healthy stack).
* The dashboard's queries go through the same PromQL parser: promtool checks
  them as recording rules (Grafana's ``$__rate_interval`` replaced by 5m).
* Every metric that a rule or a panel queries must be one the code exposes: the
  names (and the label names matched or grouped on) are taken from the parsed
  queries (PyPI ``promql-parser``) and looked up in the Prometheus registries of
  a real ``GatewayMetrics`` and ``ApiMetrics``.  A metric renamed in the code
  fails here instead of silently emptying a panel or an alert.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml
from prometheus_client import CollectorRegistry
from prometheus_client.metrics import MetricWrapperBase

REPO = Path(__file__).resolve().parents[1]
MONITORING = REPO / "deploy" / "monitoring"
RULES = MONITORING / "tagledger-rules.yaml"
RULES_TESTS = MONITORING / "tagledger-rules.test.yaml"
DASHBOARD = MONITORING / "grafana-dashboard.json"
# Series Prometheus itself adds to every scrape target.
PROMETHEUS_SERIES = {"up": set[str]()}
# Labels Prometheus attaches to every series of a target.
TARGET_LABELS = {"job", "instance"}
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


def _promtool(*args: str, cwd: Path = MONITORING) -> subprocess.CompletedProcess[str]:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool is missing (Debian package 'prometheus'; scripts/services.sh installs it)", pytrace=False)
    return subprocess.run([promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


# --------------------------------------------------------------------------- #
# promtool


def test_rules_pass_promtool_check() -> None:
    result = _promtool("check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    rules = sum(len(g["rules"]) for g in yaml.safe_load(RULES.read_text())["groups"])
    assert f"SUCCESS: {rules} rules found" in result.stdout


def test_rules_unit_tests_pass() -> None:
    result = _promtool("test", "rules", RULES_TESTS.name)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_refuses_a_broken_rule(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    text = RULES.read_text().replace("sum by (reason) (increase(tagledger_rejects_total[10m]))", "sum by (reason (", 1)
    assert text != RULES.read_text()
    broken.write_text(text)
    result = _promtool("check", "rules", str(broken), cwd=tmp_path)
    assert result.returncode != 0


def test_every_alert_has_a_unit_test_and_a_severity() -> None:
    rules = [r for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    tested = {
        case["alertname"]
        for test in yaml.safe_load(RULES_TESTS.read_text())["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    for rule in rules:
        assert rule["alert"] in tested, f"{rule['alert']} is never shown to fire in {RULES_TESTS.name}"
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}
        assert {"summary", "description"} <= set(rule["annotations"])


# --------------------------------------------------------------------------- #
# the dashboard


def _dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def _panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def _dashboard_exprs() -> list[tuple[str, str]]:
    out = []
    for panel in _panels(_dashboard()):
        for target in panel.get("targets", []):
            expr = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                expr = expr.replace(variable, value)
            out.append((panel["title"], expr))
    return out


def test_dashboard_shape() -> None:
    dashboard = _dashboard()
    assert dashboard["uid"] == "tagledger-overview"
    (datasource,) = dashboard["templating"]["list"]
    assert (datasource["type"], datasource["query"]) == ("datasource", "prometheus")
    panels = list(_panels(dashboard))
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0, panel["title"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] != "row":
            assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
            assert panel["targets"], panel["title"]
    titles = " ".join(p["title"] for p in panels).lower()
    for topic in ("readers down", "lag", "dead letters", "last commit", "webhook"):
        assert topic in titles, topic


def test_dashboard_queries_pass_promtool(tmp_path: Path) -> None:
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [{"record": f"dashboard:panel_{i}", "expr": e} for i, (_, e) in enumerate(_dashboard_exprs())],
            }
        ]
    }
    path = tmp_path / "dashboard-rules.yaml"
    path.write_text(yaml.safe_dump(rules))
    result = _promtool("check", "rules", str(path), cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


# --------------------------------------------------------------------------- #
# every queried metric exists in the code


def _registry_metrics() -> dict[str, set[str]]:
    """Sample name -> label names, for every metric of the gateway and the API."""
    from cloud.metrics import ApiMetrics
    from gateway.metrics import GatewayMetrics

    out: dict[str, set[str]] = {}
    for owner in (GatewayMetrics(), ApiMetrics()):
        registry: CollectorRegistry = owner.registry
        for metric in vars(owner).values():
            if isinstance(metric, MetricWrapperBase) and metric._labelnames:
                metric.labels(*("x" for _ in metric._labelnames))  # a child, so its samples show
        for family in registry.collect():
            for sample in family.samples:
                out.setdefault(sample.name, set()).update(sample.labels)
    return out


def _selectors(expr: Any) -> Iterator[tuple[str, set[str]]]:
    """(metric name, label names used with it) of every selector in a parsed PromQL expression."""
    if isinstance(expr, promql_parser.VectorSelector):
        yield expr.name or "", {m.name for m in expr.matchers.matchers}
    elif isinstance(expr, promql_parser.MatrixSelector):
        yield from _selectors(expr.vector_selector)
    elif isinstance(expr, promql_parser.AggregateExpr):
        grouping = set(expr.modifier.labels) if expr.modifier is not None else set()
        for name, labels in _selectors(expr.expr):
            yield name, labels | grouping
        if expr.param is not None:
            yield from _selectors(expr.param)
    elif isinstance(expr, promql_parser.BinaryExpr):
        matching = set()
        if expr.modifier is not None and expr.modifier.matching is not None:
            matching = set(expr.modifier.matching.labels)
        for side in (expr.lhs, expr.rhs):
            for name, labels in _selectors(side):
                yield name, labels | matching
    elif isinstance(expr, promql_parser.Call):
        for arg in expr.args:
            yield from _selectors(arg)
    elif isinstance(expr, (promql_parser.ParenExpr, promql_parser.UnaryExpr, promql_parser.SubqueryExpr)):
        yield from _selectors(expr.expr)


def _all_exprs() -> list[tuple[str, str]]:
    rules = [(r["alert"], r["expr"]) for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"]]
    return rules + _dashboard_exprs()


def test_every_queried_metric_and_label_exists_in_the_code() -> None:
    known = _registry_metrics()
    assert "tagledger_batches_total" in known
    assert "tagledger_read_to_commit_seconds_bucket" in known
    used: set[str] = set()
    for where, text in _all_exprs():
        selectors = list(_selectors(promql_parser.parse(text)))
        assert selectors, (where, text)
        for name, labels in selectors:
            assert name, f"{where}: a selector without a metric name ({text})"
            if name in PROMETHEUS_SERIES:
                allowed = TARGET_LABELS
            else:
                assert name in known, f"{where}: {name} is not exposed by the gateway or the API"
                allowed = known[name] | TARGET_LABELS
            assert labels <= allowed, f"{where}: {name} has no label {sorted(labels - allowed)}"
            used.add(name)
    # The list: ingest lag, rejects, readers down, stuck ingestion, webhook failures.
    assert {
        "tagledger_read_to_commit_seconds_bucket",
        "tagledger_rejects_total",
        "tagledger_readers_down",
        "tagledger_last_commit_timestamp_seconds",
        "tagledger_webhook_attempts_total",
    } <= used


def test_the_metric_check_catches_a_misspelt_name_and_label() -> None:
    known = _registry_metrics()
    ((name, _),) = list(_selectors(promql_parser.parse("rate(tagledger_reject_total[5m])")))
    assert name not in known
    ((name, labels),) = list(_selectors(promql_parser.parse("sum by (reasons) (tagledger_rejects_total)")))
    assert name in known
    assert not labels <= known[name] | TARGET_LABELS
