"""policy.yaml's dynamic groups, auto-approval and incident_commander: loading, every mistake
at its key path, the JSON Schema, and explain for a resource and for one user."""

import pytest
import yaml

from bot.domain.eligibility import Resolution
from bot.domain.oncall import OnCallShift
from bot.domain.rules import INCIDENT_COMMANDER, DynamicGroup, GroupSource
from bot.policy import load_policy, parse_policy, policy_json_schema
from bot.policy.explain import explain_for_user, explain_resource
from tests.unit.test_policy import (
    ONCALL_EXAMPLE,
    Doc,
    oncall_example_doc,
    only_problem,
    problems_in,
)


def test_the_example_reads_dynamic_groups_auto_approval_and_the_commander() -> None:
    policy = load_policy(ONCALL_EXAMPLE)

    assert policy.dynamic_groups == {
        "ml-primary": DynamicGroup("ml-primary", GroupSource.PAGERDUTY_SCHEDULE, "P7ML0NC"),
        "platform-leads": DynamicGroup("platform-leads", GroupSource.SLACK_USERGROUP, "S0PLATLEAD"),
    }
    assert "ml-primary" not in policy.groups  # nobody until looked up for a request
    assert policy.resource("inference-logs-ro").auto_approve_oncall == "ml-primary"
    serving = policy.resource("serving-cluster-exec")
    assert serving.commander_approves
    assert serving.approver_groups == ("ml-leads", "platform-leads", INCIDENT_COMMANDER)
    assert policy.approvers(serving) == {"U0LEAD1", "U0LEAD2", "U0LEAD3"}


def test_an_escalation_policy_group_is_read() -> None:
    doc = oncall_example_doc()
    doc["groups"]["ml-primary"] = {"pagerduty_escalation_policy": "PEPML01"}

    group = parse_policy(yaml.safe_dump(doc)).dynamic_groups["ml-primary"]

    assert group.source is GroupSource.PAGERDUTY_ESCALATION_POLICY and group.ref == "PEPML01"


@pytest.mark.parametrize(
    ("group", "message"),
    [
        ({}, "set exactly one of members, slack_usergroup, pagerduty_schedule"),
        (
            {"members": ["U0A1"], "pagerduty_schedule": "P7ML0NC"},
            "this group has members and pagerduty_schedule",
        ),
    ],
)
def test_a_group_has_exactly_one_source(group: Doc, message: str) -> None:
    doc = oncall_example_doc()
    doc["groups"]["security"] = group

    problem = only_problem(doc)

    assert problem.path == "groups.security"
    assert message in problem.message


@pytest.mark.parametrize(
    ("name", "key", "value", "message"),
    [
        ("platform-leads", "slack_usergroup", "@leads", "a Slack user group ID like S0123ABCD"),
        ("ml-primary", "pagerduty_schedule", "ml primary", "a PagerDuty ID like PABC123"),
        ("ml-primary", "pagerduty_escalation_policy", "https://x/PX", "a PagerDuty ID"),
    ],
)
def test_dynamic_group_ids_are_checked(name: str, key: str, value: str, message: str) -> None:
    doc = oncall_example_doc()
    doc["groups"][name] = {key: value}

    problem = only_problem(doc)

    assert problem.path == f"groups.{name}.{key}"
    assert message in problem.message and repr(value) in problem.message


def test_incident_commander_only_approves() -> None:
    doc = oncall_example_doc()
    doc["resources"]["feature-store-rw"]["requesters"] = ["ml-oncall", INCIDENT_COMMANDER]
    doc["incident"]["admins"] = [INCIDENT_COMMANDER]

    problems = problems_in(doc)

    assert [p.path for p in problems] == [
        "incident.admins",
        "resources.feature-store-rw.requesters",
    ]
    assert all("can only be listed among approvers" in p.message for p in problems)


def test_incident_commander_is_not_a_group_name() -> None:
    doc = oncall_example_doc()
    doc["groups"][INCIDENT_COMMANDER] = {"members": ["U0LEAD1"]}

    problem = only_problem(doc)

    assert problem.path == f"groups.{INCIDENT_COMMANDER}"
    assert "is reserved" in problem.message


def test_incident_admins_are_listed_people() -> None:
    doc = oncall_example_doc()
    doc["incident"]["admins"] = ["incident-admins", "platform-leads"]

    problem = only_problem(doc)

    assert problem.path == "incident.admins"
    assert "'platform-leads' is a slack_usergroup group" in problem.message


@pytest.mark.parametrize(
    ("oncall", "message"),
    [
        ("ml-primery", "unknown group 'ml-primery'"),
        ("ml-leads", "'ml-leads' is a members group"),
        ("platform-leads", "'platform-leads' is a slack_usergroup group"),
    ],
)
def test_auto_approval_names_a_pagerduty_group(oncall: str, message: str) -> None:
    doc = oncall_example_doc()
    doc["resources"]["inference-logs-ro"]["auto_approve"] = {"oncall": oncall}

    problem = only_problem(doc)

    assert problem.path == "resources.inference-logs-ro.auto_approve.oncall"
    assert message in problem.message


def test_auto_approval_has_only_oncall() -> None:
    doc = oncall_example_doc()
    doc["resources"]["inference-logs-ro"]["auto_approve"] = {"oncal": "ml-primary"}

    paths = [p.path for p in problems_in(doc)]

    assert "resources.inference-logs-ro.auto_approve.oncal" in paths


def test_the_schema_allows_exactly_one_group_key_and_auto_approval() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = policy_json_schema()
    group = schema["$defs"]["GroupSection"]  # type: ignore[index]
    assert (group["minProperties"], group["maxProperties"]) == (1, 1)
    assert set(group["properties"]) == {
        "members",
        "slack_usergroup",
        "pagerduty_schedule",
        "pagerduty_escalation_policy",
    }
    doc = oncall_example_doc()
    jsonschema.validate(doc, schema)
    doc["groups"]["ml-primary"] = {"pagerduty_schedule": "P7ML0NC", "members": ["U0A1"]}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, schema)


# --- explain ------------------------------------------------------------------------------------


def test_explain_names_dynamic_groups_the_commander_and_auto_approval() -> None:
    policy = load_policy(ONCALL_EXAMPLE)

    serving = explain_resource(policy, "serving-cluster-exec")
    logs = explain_resource(policy, "inference-logs-ro")

    assert "platform-leads (members of Slack user group S0PLATLEAD when a request is filed)" in (
        serving
    )
    assert "incident_commander (the incident's commander, never for their own request)" in serving
    assert "plus platform-leads, incident_commander when a request is filed" in serving
    assert "Auto-approval:      none" in serving
    assert (
        "Auto-approval:      a requester on call in ml-primary (PagerDuty schedule P7ML0NC) gets "
        "access at once" in logs
    )


def test_explain_for_a_user_on_call() -> None:
    policy = load_policy(ONCALL_EXAMPLE)
    shift = OnCallShift("U0ONCALL1", "PADA001", "PEPML01", 1, "P7ML0NC")

    text = explain_for_user(
        policy,
        "inference-logs-ro",
        "U0ONCALL1",
        Resolution(members={"ml-primary": frozenset({"U0ONCALL1"})}, shift=shift),
    )

    assert "May request:        yes: member of ml-oncall" in text
    assert "Who could approve:  ml-leads (U0LEAD1, U0LEAD2, U0LEAD3)" in text
    assert (
        "Auto-approved:      yes: on call in ml-primary (PagerDuty schedule P7ML0NC): "
        "escalation policy PEPML01 level 1 via schedule P7ML0NC, with no end" in text
    )
    assert "Lookups that failed" not in text


def test_explain_for_a_user_when_pagerduty_fails() -> None:
    policy = load_policy(ONCALL_EXAMPLE)
    failed = "ml-primary (PagerDuty schedule P7ML0NC) could not be looked up: PagerDuty is down"

    text = explain_for_user(
        policy,
        "inference-logs-ro",
        "U0SEC1",
        Resolution(oncall_error="PagerDuty is down", notes=(failed,)),
    )

    assert "May request:        no: not a member of ml-oncall" in text
    assert "Auto-approved:      no: U0SEC1 may not request inference-logs-ro" in text
    assert f"    - {failed}" in text


def test_explain_for_a_user_counts_the_commander_but_not_for_themselves() -> None:
    text = explain_for_user(
        load_policy(ONCALL_EXAMPLE), "serving-cluster-exec", "U0ONCALL2", Resolution()
    )

    assert "incident_commander (the incident's commander, unless that is U0ONCALL2)" in text
    assert "platform-leads (nobody now)" in text
    assert "Approvals required: 1 of 3 people now plus the incident's commander" in text
