"""`gatehouse policy test`: expectations about a policy, checked by the rules the bot applies.

A tests file is a YAML list of cases, each naming a resource, often a user, the expectations
(`can_request`, `can_approve`, `approvals_required`, `auto_approved`) and the facts nothing looks
up here: `oncall` (the user is on call in every PagerDuty group), `member_of` (Slack user groups
or PagerDuty groups the user is in), `commander` (of the incident) and `requester` (who filed the
request a `can_approve` is about; by default someone else).
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.domain.eligibility import (
    Answer,
    Resolution,
    auto_approval,
    may_approve,
    may_request,
    policy_for_request,
)
from bot.domain.oncall import OnCallShift
from bot.domain.rules import AccessPolicy, DynamicGroup, GroupSource, ResourceRule
from bot.policy.load import read_text, read_yaml
from bot.policy.models import SlackUserId
from bot.policy.problems import PolicyError, PolicyProblem, dotted, got

EXPECTATIONS = ("can_request", "can_approve", "approvals_required", "auto_approved")
SOMEONE_ELSE = "someone else"


class PolicyCase(BaseModel):
    """One case of a tests file."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    name: str | None = None
    resource: str
    user: SlackUserId | None = None
    requester: SlackUserId | None = None
    commander: SlackUserId | None = None
    oncall: bool = False
    member_of: list[str] = Field(default_factory=list)
    can_request: bool | None = None
    can_approve: bool | None = None
    approvals_required: int | None = None
    auto_approved: bool | None = None

    def title(self, number: int) -> str:
        about = self.name or " · ".join(part for part in (self.user, self.resource) if part)
        return f"case {number} ({about})"

    def expectations(self) -> dict[str, bool | int]:
        return {key: value for key in EXPECTATIONS if (value := getattr(self, key)) is not None}


@dataclass(frozen=True)
class Failure:
    """An expectation that does not hold, with the reason the rules give."""

    title: str
    expectation: str
    expected: bool | int
    got: bool | int
    because: str

    def __str__(self) -> str:
        return (
            f"{self.title}: {self.expectation}: expected {_shown(self.expected)}, "
            f"got {_shown(self.got)} ({self.because})"
        )


def load_cases(path: str | Path) -> list[PolicyCase]:
    """Read a tests file; raise PolicyError listing every problem in it."""
    source = str(path)
    raw = read_yaml(read_text(path), source)
    if not isinstance(raw, list) or not raw:
        message = (
            "must be a YAML list of cases, like - {user: U0123, resource: x, can_request: true}"
        )
        raise PolicyError([PolicyProblem(source, message)])
    cases: list[PolicyCase] = []
    problems: list[PolicyProblem] = []
    for number, item in enumerate(raw, start=1):
        try:
            case = PolicyCase.model_validate(item)
        except ValidationError as error:
            problems += [_problem(number, detail) for detail in error.errors(include_url=False)]
            continue
        problems += [PolicyProblem(str(number), message) for message in _incomplete(case)]
        cases.append(case)
    if problems:
        raise PolicyError(problems)
    return cases


def _problem(number: int, detail: Any) -> PolicyProblem:
    where = dotted((number, *detail["loc"]))
    if detail["type"] == "extra_forbidden":
        allowed = ", ".join(PolicyCase.model_fields)
        return PolicyProblem(where, f"unknown key (allowed: {allowed})")
    if detail["type"] == "missing":
        return PolicyProblem(where, "missing: this key is required")
    return PolicyProblem(where, f"{detail['msg']}{got(detail.get('input'))}")


def _incomplete(case: PolicyCase) -> list[str]:
    expectations = case.expectations()
    if not expectations:
        return [f"states no expectation; give one of {', '.join(EXPECTATIONS)}"]
    about_user = [key for key in expectations if key != "approvals_required"]
    if about_user and case.user is None:
        return [f"{', '.join(about_user)} is about a user: add `user: U...`"]
    return []


def check_cases(policy: AccessPolicy, cases: list[PolicyCase]) -> list[PolicyProblem]:
    """Cases that name what the policy does not have (a resource, a dynamic group)."""
    problems: list[PolicyProblem] = []
    for number, case in enumerate(cases, start=1):
        if case.resource not in policy.resources:
            known = ", ".join(sorted(policy.resources))
            message = f"unknown resource {case.resource!r} (resources: {known})"
            problems.append(PolicyProblem(f"{number}.resource", message))
        for name in case.member_of:
            if name not in policy.dynamic_groups:
                message = (
                    f"{name!r} is not a Slack user group or PagerDuty group of the policy; "
                    "the members of listed groups come from the policy itself"
                )
                problems.append(PolicyProblem(f"{number}.member_of", message))
    return problems


def run_cases(policy: AccessPolicy, cases: list[PolicyCase]) -> list[Failure]:
    """Every expectation that does not hold. Run `check_cases` first."""
    failures: list[Failure] = []
    for number, case in enumerate(cases, start=1):
        rule = policy.resource(case.resource)
        facts = _stated_facts(policy, rule, case)
        policy_now = policy_for_request(policy, facts, commander_id=case.commander)
        user = case.user or SOMEONE_ELSE
        for key, expected in case.expectations().items():
            if key == "approvals_required":
                answer: bool | int = rule.approvals_required
                because = f"{rule.name} requires {rule.approvals_required}"
            else:
                verdict = _answer(key, policy_now, rule, facts, case, user)
                answer, because = verdict.yes, verdict.because
            if answer != expected:
                failures.append(Failure(case.title(number), key, expected, answer, because))
    return failures


def _answer(
    key: str,
    policy_now: AccessPolicy,
    rule: ResourceRule,
    facts: Resolution,
    case: PolicyCase,
    user: str,
) -> Answer:
    if key == "can_request":
        return may_request(policy_now, rule, user)
    if key == "can_approve":
        return may_approve(policy_now, rule, user, requester=case.requester or SOMEONE_ELSE)
    return auto_approval(policy_now, rule, facts, user)


def _stated_facts(policy: AccessPolicy, rule: ResourceRule, case: PolicyCase) -> Resolution:
    """The dynamic groups as the case states them: the user is in them, or nobody is."""
    members: dict[str, frozenset[str]] = {}
    shift = None
    for group in policy.dynamic_groups_of(rule):
        stated = case.user is not None and (
            group.name in case.member_of or (case.oncall and group.is_pagerduty)
        )
        members[group.name] = frozenset({case.user}) if stated and case.user else frozenset()
        if stated and case.user and group.name == rule.auto_approve_oncall:
            shift = _stated_shift(case.user, group)
    return Resolution(members=members, shift=shift)


def _stated_shift(user: str, group: DynamicGroup) -> OnCallShift:
    """An on-call entry as a case states it: no PagerDuty user or times behind it."""
    by_policy = group.source is GroupSource.PAGERDUTY_ESCALATION_POLICY
    return OnCallShift(
        user_id=user,
        pagerduty_user_id="",
        escalation_policy_id=group.ref if by_policy else "",
        escalation_level=1,
        schedule_id=None if by_policy else group.ref,
    )


def _shown(value: bool | int) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
