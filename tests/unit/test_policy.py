"""policy.yaml loading: the example file, every kind of mistake, explain and the JSON Schema."""

import copy
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.domain.durations import format_duration
from bot.domain.errors import NotFound
from bot.domain.rules import AccessPolicy, Delivery
from bot.policy import (
    PolicyError,
    PolicyProblem,
    check_policy,
    explain_resource,
    load_policy,
    parse_policy,
    policy_json_schema,
)
from bot.policy.load import FILE_NOT_FOUND

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy" / "policy.example.yaml"
ONCALL_EXAMPLE = EXAMPLE.with_name("policy.oncall.example.yaml")

Doc = dict[str, Any]


def example_doc(path: Path = EXAMPLE) -> Doc:
    doc: Doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    return copy.deepcopy(doc)


def oncall_example_doc() -> Doc:
    """The example with PagerDuty and Slack user-group groups, auto-approval and the commander."""
    return example_doc(ONCALL_EXAMPLE)


def dump(doc: object) -> str:
    return yaml.safe_dump(doc, sort_keys=False)


def problems_in(doc: object) -> list[PolicyProblem]:
    with pytest.raises(PolicyError) as info:
        parse_policy(dump(doc))
    return info.value.problems


def only_problem(doc: object) -> PolicyProblem:
    problems = problems_in(doc)
    assert len(problems) == 1, problems
    return problems[0]


# --- The example file --------------------------------------------------------------------------


def test_example_file_loads_into_the_domain_policy() -> None:
    policy = load_policy(EXAMPLE)

    assert isinstance(policy, AccessPolicy)
    assert set(policy.resources) == {
        "inference-logs-ro",
        "feature-store-rw",
        "serving-cluster-exec",
    }
    assert policy.groups["ml-leads"] == frozenset({"U0LEAD1", "U0LEAD2", "U0LEAD3"})
    assert policy.incident.channel_prefix == "inc"
    assert policy.incident.admin_groups == ("incident-admins",)
    assert policy.incident.request_timeout == timedelta(minutes=30)
    assert policy.incident.reminder_after == timedelta(minutes=10)
    assert policy.incident.archive_on_close is True
    assert policy.incident.archive_after == timedelta(hours=24)
    assert policy.incident.invite_groups == ()
    assert policy.incident.announce_channel is None and policy.incident.ops_channel is None
    assert policy.is_admin("U0ADMIN1")

    logs = policy.resource("inference-logs-ro")
    assert logs.vault.path == "database/creds/inference-logs-ro"
    assert logs.vault.kind == "dynamic_secret"
    assert (logs.default_ttl, logs.max_ttl) == (timedelta(hours=1), timedelta(hours=4))
    assert logs.break_glass is None
    assert logs.sensitive is False

    store = policy.resource("feature-store-rw")
    assert store.requester_groups == ("ml-oncall",)
    assert store.approver_groups == ("ml-leads", "security")
    assert policy.approvers(store) == {"U0LEAD1", "U0LEAD2", "U0LEAD3", "U0SEC1", "U0SEC2"}
    assert store.approvals_required == 2
    assert policy.can_request("U0ONCALL2", store)

    serving = policy.resource("serving-cluster-exec")
    assert serving.vault.path is None
    assert serving.vault.token_policies == ("ml-serving-exec",)
    assert serving.vault.kind == "token"
    assert serving.break_glass is not None
    assert serving.break_glass.max_ttl == timedelta(minutes=15)


def test_sensitive_flag_is_read() -> None:
    doc = example_doc()
    doc["resources"]["feature-store-rw"]["sensitive"] = True

    policy = parse_policy(dump(doc))

    assert policy.resource("feature-store-rw").sensitive is True
    assert policy.resource("inference-logs-ro").sensitive is False


def test_incident_section_is_optional_and_defaults_apply() -> None:
    doc = example_doc()
    del doc["incident"]

    incident = parse_policy(dump(doc)).incident

    assert incident.admin_groups == ()
    assert incident.request_timeout == timedelta(minutes=30)
    assert incident.reminder_after == timedelta(minutes=10)


@pytest.mark.parametrize(
    ("written", "meant"),
    [(0, timedelta(0)), ("0", timedelta(0)), ("0s", timedelta(0)), ("3d", timedelta(days=3))],
)
def test_the_channel_settings_of_an_incident(written: object, meant: timedelta) -> None:
    doc = example_doc()
    doc["incident"] |= {
        "archive_after": written,
        "invite": ["ml-leads", "security", "ml-leads"],
        "announce_channel": "C0ANNOUNCE",
        "ops_channel": "G0OPS",
    }
    rules = parse_policy(dump(doc)).incident
    assert rules.archive_after == meant
    assert rules.invite_groups == ("ml-leads", "security")
    assert (rules.announce_channel, rules.ops_channel) == ("C0ANNOUNCE", "G0OPS")


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("archive_after", "-1h"),
        ("archive_after", True),
        ("announce_channel", "#incidents"),
        ("ops_channel", "U0ONCALL1"),
    ],
)
def test_bad_channel_settings_are_refused_at_their_key(key: str, value: object) -> None:
    doc = example_doc()
    doc["incident"][key] = value
    assert only_problem(doc).path == f"incident.{key}"


def test_the_schema_takes_zero_or_a_duration_for_archive_after() -> None:
    schema = policy_json_schema()
    defs = schema["$defs"]
    assert isinstance(defs, dict)
    archive_after = defs["IncidentSection"]["properties"]["archive_after"]
    assert archive_after["default"] == "1d"
    assert {"const": 0} in archive_after["anyOf"]


def test_check_policy_is_empty_for_the_example() -> None:
    assert check_policy(EXAMPLE) == []


# --- Broken variants: each reported at its key path, in plain words ----------------------------


@pytest.mark.parametrize(
    ("where", "path"),
    [
        (("resources", "feature-store-rw", "requesters"), "resources.feature-store-rw.requesters"),
        (("resources", "feature-store-rw", "approvers"), "resources.feature-store-rw.approvers"),
        (("incident", "admins"), "incident.admins"),
        (("incident", "invite"), "incident.invite"),
    ],
)
def test_unknown_group_is_reported(where: tuple[str, ...], path: str) -> None:
    doc = example_doc()
    section = doc
    for key in where[:-1]:
        section = section[key]
    section[where[-1]] = ["ml-oncall", "securty"]

    problem = only_problem(doc)

    assert problem.path == path
    assert "unknown group 'securty'" in problem.message
    assert "did you mean 'security'" in problem.message


def test_default_ttl_above_max_ttl() -> None:
    doc = example_doc()
    doc["resources"]["inference-logs-ro"]["default_ttl"] = "5h"

    problem = only_problem(doc)

    assert problem.path == "resources.inference-logs-ro.default_ttl"
    assert "default_ttl (5h) is longer than max_ttl (4h)" in problem.message


def test_more_approvals_than_distinct_eligible_approvers() -> None:
    doc = example_doc()
    doc["resources"]["feature-store-rw"]["approvals_required"] = 6

    problem = only_problem(doc)

    assert problem.path == "resources.feature-store-rw.approvals_required"
    assert "needs 6 approvals" in problem.message
    assert "only 5 distinct members" in problem.message


def test_approvers_are_counted_once_across_groups() -> None:
    doc = example_doc()
    doc["groups"]["security"]["members"] = ["U0LEAD1", "U0LEAD2"]
    doc["resources"]["feature-store-rw"]["approvals_required"] = 4

    problem = only_problem(doc)

    assert problem.path == "resources.feature-store-rw.approvals_required"
    assert "only 3 distinct members" in problem.message


def test_approvals_required_below_one() -> None:
    doc = example_doc()
    doc["resources"]["feature-store-rw"]["approvals_required"] = 0

    problem = only_problem(doc)

    assert problem.path == "resources.feature-store-rw.approvals_required"
    assert "must be at least 1" in problem.message


def test_approvals_required_must_be_a_number() -> None:
    doc = example_doc()
    doc["resources"]["feature-store-rw"]["approvals_required"] = "2"

    problem = only_problem(doc)

    assert problem.path == "resources.feature-store-rw.approvals_required"
    assert "must be a whole number" in problem.message


@pytest.mark.parametrize(
    ("vault", "which"),
    [
        ({}, "neither"),
        ({"path": "database/creds/x", "token_policies": ["x"]}, "both"),
    ],
)
def test_vault_needs_exactly_one_target(vault: Doc, which: str) -> None:
    doc = example_doc()
    doc["resources"]["inference-logs-ro"]["vault"] = vault

    problem = only_problem(doc)

    assert problem.path == "resources.inference-logs-ro.vault"
    assert "exactly one of 'path'" in problem.message
    assert which in problem.message


@pytest.mark.parametrize(
    ("where", "path", "allowed"),
    [
        ((), "owner", "version, incident, groups, resources"),
        (("incident",), "incident.owner", "channel_prefix, admins"),
        (("groups", "security"), "groups.security.owner", "members"),
        (("resources", "feature-store-rw"), "resources.feature-store-rw.owner", "description"),
        (
            ("resources", "feature-store-rw", "vault"),
            "resources.feature-store-rw.vault.owner",
            "path",
        ),
        (
            ("resources", "serving-cluster-exec", "break_glass"),
            "resources.serving-cluster-exec.break_glass.owner",
            "max_ttl",
        ),
    ],
)
def test_unknown_key_is_reported_with_allowed_keys(
    where: tuple[str, ...], path: str, allowed: str
) -> None:
    doc = example_doc()
    section = doc
    for key in where:
        section = section[key]
    section["owner"] = "someone"

    problem = only_problem(doc)

    assert problem.path == path
    assert problem.message.startswith("unknown key 'owner' (allowed: ")
    assert allowed in problem.message


def test_misspelt_key_gets_a_suggestion() -> None:
    doc = example_doc()
    resource = doc["resources"]["serving-cluster-exec"]
    resource["breakglass"] = resource.pop("break_glass")

    problem = only_problem(doc)

    assert problem.path == "resources.serving-cluster-exec.breakglass"
    assert "did you mean 'break_glass'?" in problem.message


@pytest.mark.parametrize(
    ("value", "gist"),
    [
        ("10x", "'10x' is not a duration"),
        ("abc", "'abc' is not a duration"),
        ("0s", "longer than zero"),
        (60, "must be a duration with a unit"),
    ],
)
def test_bad_duration(value: object, gist: str) -> None:
    doc = example_doc()
    doc["resources"]["feature-store-rw"]["max_ttl"] = value

    problem = only_problem(doc)

    assert problem.path == "resources.feature-store-rw.max_ttl"
    assert gist in problem.message


def test_bad_incident_duration() -> None:
    doc = example_doc()
    doc["incident"]["request_timeout"] = "soon"

    problem = only_problem(doc)

    assert problem.path == "incident.request_timeout"
    assert "'soon' is not a duration" in problem.message


def test_break_glass_above_max_ttl() -> None:
    doc = example_doc()
    doc["resources"]["serving-cluster-exec"]["break_glass"] = {"max_ttl": "2h"}

    problem = only_problem(doc)

    assert problem.path == "resources.serving-cluster-exec.break_glass.max_ttl"
    assert "(2h) cannot last longer than the resource's max_ttl (1h)" in problem.message


def test_reminder_must_come_before_the_timeout() -> None:
    doc = example_doc()
    doc["incident"]["reminder_after"] = "30m"

    problem = only_problem(doc)

    assert problem.path == "incident.reminder_after"
    assert "before the request times out" in problem.message


@pytest.mark.parametrize("version", [2, "1", None])
def test_version_other_than_1(version: object) -> None:
    doc = example_doc()
    doc["version"] = version

    problem = only_problem(doc)

    assert problem.path == "version"
    assert "unsupported version" in problem.message
    assert "reads version 1" in problem.message


def test_missing_version() -> None:
    doc = example_doc()
    del doc["version"]

    problem = only_problem(doc)

    assert problem.path == "version"
    assert "required" in problem.message


def test_empty_group() -> None:
    doc = example_doc()
    doc["groups"]["security"] = {"members": []}

    problem = only_problem(doc)

    assert problem.path == "groups.security.members"
    assert "at least one member" in problem.message


def test_group_without_members_mapping() -> None:
    doc = example_doc()
    doc["groups"]["security"] = ["U0SEC1"]

    problem = only_problem(doc)

    assert problem.path == "groups.security"
    assert "must be a mapping with the keys members" in problem.message


def test_member_must_be_a_slack_user_id() -> None:
    doc = example_doc()
    doc["groups"]["security"]["members"] = ["U0SEC1", "alice@example.com"]

    problem = only_problem(doc)

    assert problem.path == "groups.security.members.1"
    assert "Slack user ID" in problem.message


def test_resource_name_must_be_typeable() -> None:
    doc = example_doc()
    doc["resources"]["feature store"] = doc["resources"].pop("feature-store-rw")

    problem = only_problem(doc)

    assert problem.path == "resources.feature store"
    assert "'feature store' is not a valid name" in problem.message


def test_resource_name_fits_a_slack_option_value() -> None:
    doc = example_doc()
    long_name = "r" * 151
    doc["resources"][long_name] = doc["resources"].pop("feature-store-rw")

    problem = only_problem(doc)

    assert problem.path == f"resources.{long_name}"
    assert "valid name" in problem.message and "150" in problem.message


def test_channel_prefix_must_suit_slack() -> None:
    doc = example_doc()
    doc["incident"]["channel_prefix"] = "Incident #"

    problem = only_problem(doc)

    assert problem.path == "incident.channel_prefix"
    assert "lowercase letters" in problem.message


def test_yaml_syntax_error_gives_the_line() -> None:
    text = "version: 1\ngroups:\n  a: {members: [U1]\nresources: {}\n"

    with pytest.raises(PolicyError) as info:
        parse_policy(text, source="policy.yaml")

    [problem] = info.value.problems
    assert problem.path.startswith("policy.yaml:4:")
    assert "not valid YAML" in problem.message


def test_duplicate_key_is_an_error() -> None:
    text = dump(example_doc()) + "groups: {}\n"

    with pytest.raises(PolicyError) as info:
        parse_policy(text, source="p.yaml")

    [problem] = info.value.problems
    assert re.fullmatch(r"p\.yaml:\d+:1", problem.path)
    assert "duplicate key 'groups'" in problem.message


@pytest.mark.parametrize(
    ("text", "gist"),
    [("- a\n- b\n", "this file is a list"), ("just words\n", "plain string"), ("", "empty")],
)
def test_top_level_must_be_a_mapping(text: str, gist: str) -> None:
    with pytest.raises(PolicyError) as info:
        parse_policy(text, source="policy.yaml")

    [problem] = info.value.problems
    assert problem.path == "policy.yaml"
    assert "the top level must be a mapping" in problem.message
    assert gist in problem.message


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"

    with pytest.raises(PolicyError) as info:
        load_policy(missing)

    assert info.value.problems == [PolicyProblem(str(missing), FILE_NOT_FOUND)]
    assert check_policy(missing) == info.value.problems


def test_every_problem_is_reported_in_file_order() -> None:
    doc = example_doc()
    doc["version"] = 3
    doc["groups"]["security"] = {"members": []}
    logs = doc["resources"]["inference-logs-ro"]
    logs["default_ttl"] = "10x"
    logs["approvers"] = ["ml-lead"]
    store = doc["resources"]["feature-store-rw"]
    store["vault"] = {}
    store["default_ttl"] = "3h"
    store["colour"] = "red"
    doc["resources"]["serving-cluster-exec"]["break_glass"] = {"max_ttl": "abc"}

    problems = problems_in(doc)

    assert [problem.path for problem in problems] == [
        "version",
        "groups.security.members",
        "resources.inference-logs-ro.default_ttl",
        "resources.inference-logs-ro.approvers",
        "resources.feature-store-rw.vault",
        "resources.feature-store-rw.default_ttl",
        "resources.feature-store-rw.colour",
        "resources.serving-cluster-exec.break_glass.max_ttl",
    ]


def test_policy_error_lists_one_problem_per_line() -> None:
    error = PolicyError([PolicyProblem("a.b", "first"), PolicyProblem("c", "second")])

    assert str(error) == "a.b: first\nc: second"


# --- explain and schema ------------------------------------------------------------------------


def test_explain_resource_covers_everything() -> None:
    text = explain_resource(load_policy(EXAMPLE), "feature-store-rw")

    assert "Write access to the online feature store" in text
    assert "database/creds/feature-store-rw" in text
    assert "ml-oncall (U0ONCALL1, U0ONCALL2)" in text
    assert "ml-leads (U0LEAD1, U0LEAD2, U0LEAD3); security (U0SEC1, U0SEC2)" in text
    assert "2 of 5 eligible approvers" in text
    assert "Default TTL:        30m" in text
    assert "Max TTL:            2h" in text
    assert "no break-glass" in text
    assert "Sensitive:          no" in text


def test_explain_break_glass_and_token_target() -> None:
    text = explain_resource(load_policy(EXAMPLE), "serving-cluster-exec")

    assert "token with policies ml-serving-exec" in text
    assert "up to 15m" in text


def test_explain_unknown_resource_lists_the_known_ones() -> None:
    with pytest.raises(NotFound, match="feature-store-rw, inference-logs-ro"):
        explain_resource(load_policy(EXAMPLE), "gpu-nodes")


def test_schema_describes_the_document() -> None:
    schema = policy_json_schema()

    assert schema["type"] == "object"
    properties = schema["properties"]
    assert isinstance(properties, dict)
    assert set(properties) == {"version", "incident", "groups", "resources"}
    assert set(schema["required"]) == {"version", "groups", "resources"}  # type: ignore[call-overload]
    resource = schema["$defs"]["ResourceSection"]  # type: ignore[index]
    assert resource["additionalProperties"] is False
    max_ttl = resource["properties"]["max_ttl"]
    assert max_ttl["type"] == "string"
    for text in ("90s", "45m", "2h", "1h30m", "1d"):
        assert re.fullmatch(max_ttl["pattern"], text)
    for text in ("", "10x", "h"):
        assert not re.fullmatch(max_ttl["pattern"], text)
    incident = schema["$defs"]["IncidentSection"]  # type: ignore[index]
    assert incident["properties"]["request_timeout"]["default"] == "30m"


# --- Any policy built within the rules loads ----------------------------------------------------

_names = st.from_regex(r"[a-z0-9][a-z0-9-]{0,11}", fullmatch=True)
_user_ids = st.from_regex(r"U[A-Z0-9]{2,8}", fullmatch=True)
_seconds = st.integers(min_value=1, max_value=7 * 86400)


@st.composite
def valid_policies(draw: st.DrawFn) -> Doc:
    group_names = draw(st.lists(_names, min_size=1, max_size=4, unique=True))
    groups = {name: draw(st.lists(_user_ids, min_size=1, max_size=4)) for name in group_names}
    timeout = draw(st.integers(min_value=2, max_value=86400))
    resources: Doc = {}
    for name in draw(st.lists(_names, max_size=4, unique=True)):
        max_ttl = draw(_seconds)
        approvers = draw(st.lists(st.sampled_from(group_names), min_size=1, unique=True))
        eligible = set().union(*(groups[group] for group in approvers))
        if draw(st.booleans()):
            vault: Doc = {"path": f"database/creds/{name}"}
        else:
            vault = {"token_policies": draw(st.lists(_names, min_size=1, max_size=3))}
        resource: Doc = {
            "description": f"Access to {name}",
            "vault": vault,
            "default_ttl": format_duration(timedelta(seconds=draw(st.integers(1, max_ttl)))),
            "max_ttl": format_duration(timedelta(seconds=max_ttl)),
            "requesters": draw(st.lists(st.sampled_from(group_names), min_size=1)),
            "approvers": approvers,
            "approvals_required": draw(st.integers(1, len(eligible))),
            "sensitive": draw(st.booleans()),
        }
        if draw(st.booleans()):
            glass = timedelta(seconds=draw(st.integers(1, max_ttl)))
            resource["break_glass"] = {"max_ttl": format_duration(glass)}
        resources[name] = resource
    return {
        "version": 1,
        "incident": {
            "admins": draw(st.lists(st.sampled_from(group_names), max_size=2)),
            "request_timeout": format_duration(timedelta(seconds=timeout)),
            "reminder_after": format_duration(timedelta(seconds=draw(st.integers(1, timeout - 1)))),
        },
        "groups": {name: {"members": members} for name, members in groups.items()},
        "resources": resources,
    }


@settings(max_examples=60, deadline=None)
@given(valid_policies())
def test_any_valid_policy_loads(doc: Doc) -> None:
    policy = parse_policy(dump(doc))

    assert dict(policy.groups) == {
        name: frozenset(group["members"]) for name, group in doc["groups"].items()
    }
    assert set(policy.resources) == set(doc["resources"])
    for name, spec in doc["resources"].items():
        rule = policy.resource(name)
        assert format_duration(rule.max_ttl) == spec["max_ttl"]
        assert format_duration(rule.default_ttl) == spec["default_ttl"]
        assert rule.approver_groups == tuple(spec["approvers"])
        assert rule.approvals_required <= len(policy.approvers(rule))
        assert rule.vault.path == spec["vault"].get("path")
        assert rule.vault.token_policies == tuple(spec["vault"].get("token_policies", ()))
        assert (rule.break_glass is not None) == ("break_glass" in spec)


def test_vault_policy_and_delivery_are_optional_and_read() -> None:
    text = EXAMPLE.read_text().replace(
        "    vault: {path: database/creds/inference-logs-ro}\n",
        "    vault: {path: database/creds/inference-logs-ro, policy: logs-reader}\n"
        "    delivery: ephemeral\n",
    )
    policy = parse_policy(text)
    logs = policy.resources["inference-logs-ro"]
    assert logs.vault_policies == ("logs-reader",)
    assert logs.delivery is Delivery.EPHEMERAL
    assert policy.resources["feature-store-rw"].vault_policies == ("gatehouse-feature-store-rw",)
    assert policy.resources["feature-store-rw"].delivery is Delivery.WRAPPED
    assert policy.vault_policies == (
        "gatehouse-feature-store-rw",
        "logs-reader",
        "ml-serving-exec",
    )


def test_vault_policy_beside_token_policies_is_a_problem() -> None:
    doc = example_doc()
    doc["resources"]["serving-cluster-exec"]["vault"]["policy"] = "extra"
    problem = only_problem(doc)
    assert problem.path == "resources.serving-cluster-exec.vault.policy"


@pytest.mark.parametrize("oncall", [False, True], ids=["plain", "oncall"])
def test_the_example_policy_module_is_the_example_file(oncall: bool) -> None:
    from tests.unit.example_policy import example_policy, oncall_example_policy

    if oncall:
        loaded, built = load_policy(ONCALL_EXAMPLE), oncall_example_policy()
    else:
        loaded, built = load_policy(EXAMPLE), example_policy()

    assert dict(loaded.groups) == dict(built.groups)
    assert dict(loaded.dynamic_groups) == dict(built.dynamic_groups)
    assert dict(loaded.resources) == dict(built.resources)
    assert loaded.incident == built.incident
