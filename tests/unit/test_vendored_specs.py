"""The protocol references in tests/specs: each holds what its readers need and nothing more,
Vault's is upstream's text cut at whole paths, and the emulators find them in the repository."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from integrations import oncall
from tests.emulators.pagerduty import contract
from tests.emulators.slack import spec as slack_spec
from tests.emulators.slack.dispatch import HANDLERS
from tests.emulators.vault import spec as vault_spec
from tests.specs import REPO, SPECS, trim_vault_openapi
from tests.unit.slack.test_manifest import methods_called

SLACK_METHODS = SPECS / "slack" / "methods"
VAULT_OPENAPI = SPECS / "vault" / "openapi.json"
# Real methods the emulator does not model, called by tests to check how such a method is served.
UNMODELLED_IN_TESTS = {"reactions.add"}
# Called once by `gatehouse run` before serving, to say in one line which token Slack refuses.
START_PROBES = {"auth.test", "apps.connections.open"}


@pytest.fixture(autouse=True)
def _no_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (
        "GATEHOUSE_SLACK_SPECS",
        "GATEHOUSE_VAULT_OPENAPI",
        "GATEHOUSE_PAGERDUTY_CONTRACT",
    ):
        monkeypatch.delenv(name, raising=False)


def test_the_emulators_read_their_specs_from_the_repository() -> None:
    assert slack_spec.specs_dir() == SPECS / "slack"
    assert vault_spec.spec_path() == VAULT_OPENAPI
    assert contract.contract_path() == SPECS / "pagerduty" / "contract.yaml"
    assert SPECS == REPO / "tests" / "specs"


# -- Slack -----------------------------------------------------------------------------------


def test_slack_methods_are_exactly_those_modelled_called_or_used_by_tests() -> None:
    vendored = {path.stem for path in SLACK_METHODS.glob("*.json")}
    assert methods_called() <= set(HANDLERS), "every method the bot calls is modelled"
    assert vendored == set(HANDLERS) | methods_called() | UNMODELLED_IN_TESTS | START_PROBES
    assert set(slack_spec.all_specs()) == vendored


def test_the_start_probes_are_the_methods_gatehouse_run_calls() -> None:
    source = (REPO / "bot" / "bootstrap.py").read_text()
    for method in START_PROBES:
        assert f".{method.replace('.', '_')}(" in source, method


def test_each_slack_method_file_is_a_method_description_beside_its_license() -> None:
    for path in SLACK_METHODS.glob("*.json"):
        document = json.loads(path.read_text(encoding="utf-8"))
        assert {"args", "http_method", "errors"} <= set(document), path.name
    assert (SLACK_METHODS / "LICENSE").read_text().startswith("MIT License")
    assert "slack-ruby/slack-api-ref" in (SPECS / "slack" / "README.md").read_text()


# -- Vault -----------------------------------------------------------------------------------


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


def test_vault_openapi_holds_whole_served_paths_and_what_they_reference() -> None:
    raw = VAULT_OPENAPI.read_text(encoding="utf-8")
    document = json.loads(raw)
    assert list(document) == ["openapi", "info", "paths", "components"]
    assert raw == trim_vault_openapi.render(document), "upstream's formatting, byte for byte"
    assert trim_vault_openapi.trimmed(document) == document, "nothing unserved, nothing unused"
    paths = document["paths"]
    for prefix in vault_spec.SERVED_PREFIXES:
        assert any(template.startswith(prefix) for template in paths), prefix
    schemas = document["components"]["schemas"]
    for ref in _refs(document):
        assert ref.removeprefix("#/components/schemas/") in schemas, ref
    assert len(raw) < 300_000, "a cut-down document, not the 1.6 MB one"
    assert (SPECS / "vault" / "LICENSE").read_text().count("Mozilla Public License") >= 1


def test_trimming_keeps_served_paths_whole_with_their_schemas_and_the_top_level(
    tmp_path: Path,
) -> None:
    upstream: dict[str, Any] = {
        "openapi": "3.0.2",
        "info": {"title": "HashiCorp Vault API", "version": "1.15.0"},
        "paths": {
            "/auth/token/create": {
                "description": "The token create path.",
                "post": {"requestBody": {"$ref": "#/components/schemas/TokenCreateRequest"}},
            },
            "/sys/tools/random": {"post": {"$ref": "#/components/schemas/RandomRequest"}},
            "/sys/policy/{name}": {"parameters": [{"name": "name", "in": "path"}]},
        },
        "components": {
            "schemas": {
                "RandomRequest": {"type": "object"},
                "TokenCreateRequest": {
                    "properties": {"meta": {"$ref": "#/components/schemas/Metadata"}}
                },
                "Metadata": {"type": "object", "description": "é, kept as UTF-8"},
            }
        },
    }
    source = tmp_path / "openapi.json"
    source.write_text(trim_vault_openapi.render(upstream), encoding="utf-8")
    output = tmp_path / "trimmed.json"

    assert trim_vault_openapi.main([str(source), "--output", str(output)]) == 0
    result = json.loads(output.read_text(encoding="utf-8"))
    assert list(result["paths"]) == ["/auth/token/create", "/sys/policy/{name}"]
    assert result["paths"]["/auth/token/create"] == upstream["paths"]["/auth/token/create"]
    assert list(result["components"]["schemas"]) == ["TokenCreateRequest", "Metadata"]
    assert result["info"] == upstream["info"] and result["openapi"] == "3.0.2"
    assert "é" in output.read_text(encoding="utf-8")

    source.write_text(json.dumps(upstream), encoding="utf-8")  # not upstream's formatting
    assert trim_vault_openapi.main([str(source), "--output", str(output)]) == 1


# -- PagerDuty -------------------------------------------------------------------------------


def test_pagerduty_contract_names_every_query_parameter_the_client_sends() -> None:
    oncalls = contract.operation("GET", "/oncalls")
    users = contract.operation("GET", "/users")
    client_oncalls = [
        *((name, "PXXXXXX") for name in oncall._FILTERS.values()),
        ("include[]", "users"),
        ("limit", str(oncall.PAGE_SIZE)),
        ("offset", "0"),
    ]
    assert contract.check_query(oncalls, client_oncalls) == []
    assert contract.check_query(users, [("query", "ada@example.com"), ("limit", "25")]) == []
    _, max_limit = contract.page_limits()
    assert max_limit >= oncall.PAGE_SIZE


def test_pagerduty_contract_is_our_own_and_its_references_resolve() -> None:
    text = (SPECS / "pagerduty" / "contract.yaml").read_text(encoding="utf-8")
    assert "Written by this project from PagerDuty's public REST API reference" in text
    assert not (SPECS / "pagerduty" / "rest_openapiv3.json").exists()
    shapes = contract.load()["shapes"]
    for ref in _refs(contract.load()):
        assert ref.startswith("#/shapes/") and ref.removeprefix("#/shapes/") in shapes, ref


def test_pagerduty_answer_shapes_hold_what_the_client_reads() -> None:
    entry = {
        "escalation_policy": {"id": "PEP1", "type": "escalation_policy_reference"},
        "escalation_level": 1,
        "user": {"id": "PU1", "type": "user", "name": "Ada", "email": "ada@example.com"},
        "schedule": None,
        "start": "2026-01-01T00:00:00Z",
        "end": None,
    }
    page = {"oncalls": [entry], "limit": 100, "offset": 0, "more": False, "total": None}
    with_users = contract.oncall_with_users_schema()
    assert contract.conforms(with_users, page) == []
    without_email = {**entry, "user": {"id": "PU1", "type": "user", "name": "Ada"}}
    assert contract.conforms(with_users, {**page, "oncalls": [without_email]})
    plain = contract.operation("GET", "/oncalls").response_schema(200)
    assert contract.conforms(plain, page), "without include[]=users the user is a reference"
