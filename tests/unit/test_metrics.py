"""Metrics: the dashboard uses only names the bot exports; the bot's paths feed them."""

import json
import re
from pathlib import Path

import yaml
from prometheus_client import REGISTRY
from prometheus_client.metrics import MetricWrapperBase

from bot import metrics

DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "gatehouse.json"


def exported() -> set[str]:
    names = set()
    for collector in vars(metrics).values():
        if isinstance(collector, MetricWrapperBase):
            names |= {family.name for family in collector.describe()}
    return names


def test_every_dashboard_query_uses_an_exported_metric() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    used = {
        re.sub(r"_(bucket|count|sum|total)$", "", name)
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"gatehouse_[a-z_]+", target["expr"])
    }
    known = {re.sub(r"_total$", "", name) for name in exported()}
    assert used, "the dashboard has no queries"
    assert used <= known, used - known


def test_every_exported_metric_is_on_the_dashboard() -> None:
    text = DASHBOARD.read_text()
    assert all(name in text for name in exported())


def test_vault_path_labels_carry_no_ids() -> None:
    assert metrics.vault_path_label("sys/leases/lookup/database/creds/x/") == "sys/leases/lookup"
    assert metrics.vault_path_label("database/creds/inference-logs-ro") == (
        "database/creds/inference-logs-ro"
    )
    assert metrics.vault_path_label("") == "other"


def test_metrics_are_registered_once_with_the_default_registry() -> None:
    assert REGISTRY.get_sample_value("gatehouse_active_grants") is not None


ALERTS = DASHBOARD.parents[1] / "prometheus" / "alerts.yaml"


def test_every_alert_rule_uses_an_exported_metric_and_names_its_runbook() -> None:
    rules = [
        rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]
    ]
    known = exported() | {name + "_total" for name in exported()}
    runbook = (DASHBOARD.parents[2] / "docs" / "operations.md").read_text()
    assert {rule["alert"] for rule in rules} >= {"GatehouseVaultNotServing"}
    for rule in rules:
        assert set(re.findall(r"gatehouse_[a-z_]+", rule["expr"])) <= known, rule["alert"]
        anchor = rule["annotations"]["runbook"].partition("#")[2]
        assert f"## {anchor.replace('-', ' ')}".lower() in runbook.lower(), anchor


def test_the_vault_state_gauge_says_one_state_at_a_time() -> None:
    metrics.set_vault_state("sealed")
    assert REGISTRY.get_sample_value("gatehouse_vault_state", {"state": "sealed"}) == 1
    assert REGISTRY.get_sample_value("gatehouse_vault_state", {"state": "active"}) == 0
    metrics.set_vault_state("active")
    assert REGISTRY.get_sample_value("gatehouse_vault_state", {"state": "sealed"}) == 0
