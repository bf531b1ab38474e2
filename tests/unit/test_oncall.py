"""Dynamic groups at request time, on fakes: on-call auto-approval and its fallbacks, Slack user
groups, and the incident commander as an approver."""

from dataclasses import replace
from datetime import timedelta

import pytest

from bot.domain.access import RequestState
from bot.domain.audit import Action, verify_chain
from bot.domain.eligibility import Resolution
from bot.domain.errors import ChatError, NotAllowed, OnCallUnavailable
from bot.domain.grant import GrantStatus
from bot.domain.rules import DynamicGroup, GroupSource
from bot.services import access, eligibility
from tests.unit.example_policy import ML_PRIMARY, oncall_example_policy
from tests.unit.fakes import FakeDirectory, FakeOnCall
from tests.unit.test_services import World as ServicesWorld

POLICY = oncall_example_policy()


class World(ServicesWorld):
    """The services' test world, with PagerDuty and Slack user groups faked."""

    def __init__(self) -> None:
        super().__init__()
        self.oncall = FakeOnCall()
        self.directory = FakeDirectory()
        self.directory.add_group("S0PLATLEAD", "platform-leads", ["U0PLAT1", "U0PLAT2"])

    def resolve(self, resource: str, by: str) -> Resolution:
        return eligibility.resolve_groups(
            policy=POLICY,
            rule=POLICY.resource(resource),
            requester_id=by,
            directory=self.directory,
            oncall=self.oncall,
        )

    def request(
        self,
        resource: str = "inference-logs-ro",
        *,
        by: str = "U0ONCALL2",
        duration: str | None = "1h",
        resolution: Resolution | None = None,
    ) -> str:
        found = resolution or self.resolve(resource, by)
        return super().request(resource, by=by, duration=duration, resolution=found)

    def state(self, request_id: str) -> RequestState:
        return self.store.state.requests[request_id].state

    def events(self, action: Action) -> list[dict[str, object]]:
        return [dict(e.entry.data) for e in self.store.state.events if e.entry.action == action]


@pytest.fixture
def world() -> World:
    return World()


# --- On-call auto-approval --------------------------------------------------------------------


def test_a_requester_on_call_is_approved_at_once_on_recorded_grounds(world: World) -> None:
    world.oncall.put_on_call("U0ONCALL2", ML_PRIMARY)

    request_id = world.request()

    request = world.store.state.requests[request_id]
    assert request.state is RequestState.APPROVED and request.decisions == []
    assert request.auto_approved_because == (
        "on call in ml-primary (PagerDuty schedule P7ML0NC): escalation policy PEP0001 "
        "level 1 via schedule P7ML0NC, until 2026-11-23 20:00 UTC"
    )
    (grounds,) = world.events(Action.REQUEST_AUTO_APPROVED)
    assert grounds["ref"] == "P7ML0NC" and grounds["schedule_id"] == "P7ML0NC"
    assert grounds["pagerduty_user_id"] == "P0ONCALL2"
    assert (grounds["escalation_policy_id"], grounds["escalation_level"]) == ("PEP0001", 1)
    assert grounds["end"] == "2026-11-23T20:00:00.000000+00:00"
    (approved,) = world.events(Action.REQUEST_APPROVED)
    assert approved == {"approvers": [], "automatic": True}
    # the same issue path as any approved request: exactly one credential
    assert world.issue(request_id).credential is not None
    assert world.issue(request_id).credential is None
    assert [g.status for g in world.store.state.grants.values()] == [GrantStatus.ACTIVE]
    assert verify_chain(world.store.state.events).ok


def test_approvers_of_an_auto_approved_request_may_revoke_it(world: World) -> None:
    world.oncall.put_on_call("U0ONCALL2", ML_PRIMARY)
    request_id = world.request()
    world.issue(request_id)

    world.now += timedelta(minutes=5)
    access.revoke_access(
        uow=world.store,
        policy=POLICY,
        broker=world.broker,
        request_id=request_id,
        by_user="U0LEAD2",
        clock=world.clock,
    )

    assert world.state(request_id) is RequestState.REVOKED
    assert world.broker.live == {}


def test_a_requester_not_on_call_waits_for_approvers(world: World) -> None:
    world.oncall.put_on_call("U0ONCALL1", ML_PRIMARY)  # someone else is on call

    request_id = world.request()

    assert world.state(request_id) is RequestState.PENDING
    assert world.events(Action.REQUEST_AUTO_APPROVED) == []
    assert world.events(Action.GROUP_LOOKUP_FAILED) == []


def test_on_call_but_not_a_requester_is_still_refused(world: World) -> None:
    world.oncall.put_on_call("U0SEC1", ML_PRIMARY)

    with pytest.raises(NotAllowed, match="Only members of ml-oncall"):
        world.request(by="U0SEC1")


def test_only_the_resource_with_auto_approval_is_approved_by_on_call(world: World) -> None:
    world.oncall.put_on_call("U0ONCALL2", ML_PRIMARY)

    request_id = world.request("feature-store-rw")

    assert world.state(request_id) is RequestState.PENDING
    assert world.oncall.lookups == 0  # feature-store-rw has no dynamic group to look up


@pytest.mark.parametrize(
    "failure",
    [
        "PagerDuty could not be reached (ConnectError) after 3 attempts",
        "PagerDuty did not answer within 3 s",
        "PagerDuty refused the API key (401): check GATEHOUSE_PAGERDUTY_TOKEN",
        "PagerDuty sent an answer Gatehouse could not read",
    ],
)
def test_pagerduty_failing_falls_back_to_approvers_and_says_why(world: World, failure: str) -> None:
    world.oncall.put_on_call("U0ONCALL2", ML_PRIMARY)
    world.oncall.failure = OnCallUnavailable(failure)

    found = world.resolve("inference-logs-ro", "U0ONCALL2")
    request_id = world.request()

    assert found.oncall_error == failure and found.shift is None
    assert found.notes == (
        f"ml-primary (PagerDuty schedule P7ML0NC) could not be looked up: {failure}",
    )
    assert world.state(request_id) is RequestState.PENDING  # never auto-approved on an error
    (audited,) = world.events(Action.GROUP_LOOKUP_FAILED)
    assert failure in str(audited["error"])
    assert world.decide(request_id, "U0LEAD1").approved  # ordinary approval still works


def test_pagerduty_not_configured_is_a_failed_check_with_a_reason(world: World) -> None:
    found = eligibility.resolve_groups(
        policy=POLICY,
        rule=POLICY.resource("inference-logs-ro"),
        requester_id="U0ONCALL2",
        directory=world.directory,
        oncall=None,
    )

    assert found.oncall_error == eligibility.PAGERDUTY_NOT_CONFIGURED
    assert found.shift is None


def test_an_on_call_approver_group_counts_whoever_is_on_call_now(world: World) -> None:
    policy = oncall_example_policy()
    rule = policy.resource("feature-store-rw")
    policy = replace(
        policy,
        resources={**policy.resources, rule.name: replace(rule, approver_groups=("ml-primary",))},
    )
    world.oncall.put_on_call("U0LEAD3", ML_PRIMARY)
    world.oncall.put_on_call("U0SEC2", ML_PRIMARY, level=2)

    found = eligibility.resolve_groups(
        policy=policy,
        rule=policy.resource(rule.name),
        requester_id="U0ONCALL2",
        directory=world.directory,
        oncall=world.oncall,
    )

    assert found.members == {"ml-primary": {"U0LEAD3", "U0SEC2"}}
    assert found.labels == {"ml-primary": "on call in ml-primary"}


# --- Slack user groups ------------------------------------------------------------------------


def test_slack_user_group_members_approve_and_are_named_by_handle(world: World) -> None:
    request_id = world.request("serving-cluster-exec")

    request = world.store.state.requests[request_id]
    assert {"U0PLAT1", "U0PLAT2", "U0LEAD1", "U0ONCALL1"} <= request.eligible_approvers
    assert request.approver_labels == {
        "@platform-leads": {"U0PLAT1", "U0PLAT2"},
        "incident commander": {"U0ONCALL1"},
    }
    assert world.decide(request_id, "U0PLAT2").approved


def test_approvers_are_a_snapshot_taken_when_the_request_is_filed(world: World) -> None:
    request_id = world.request("serving-cluster-exec")
    lookups = world.directory.lookups
    world.directory.add_group("S0PLATLEAD", "platform-leads", ["U0NEWCOMER"])

    with pytest.raises(NotAllowed, match="not an approver"):
        world.decide(request_id, "U0NEWCOMER")
    assert world.decide(request_id, "U0PLAT1").approved
    assert world.directory.lookups == lookups  # deciding looks nothing up


def test_a_slack_user_group_that_cannot_be_read_counts_as_empty(world: World) -> None:
    world.directory.failure = ChatError("Slack refused usergroups.users.list: ratelimited")

    request_id = world.request("serving-cluster-exec")

    request = world.store.state.requests[request_id]
    assert not request.eligible_approvers & {"U0PLAT1", "U0PLAT2"}
    assert request.state is RequestState.PENDING
    (audited,) = world.events(Action.GROUP_LOOKUP_FAILED)
    assert "platform-leads (Slack user group S0PLATLEAD)" in str(audited["error"])


# --- The incident commander as approver -------------------------------------------------------


def test_the_commander_approves_someone_elses_request(world: World) -> None:
    request_id = world.request("serving-cluster-exec", by="U0ONCALL2")

    assert world.decide(request_id, "U0ONCALL1").approved


def test_the_commander_never_approves_their_own_request(world: World) -> None:
    request_id = world.request("serving-cluster-exec", by="U0ONCALL1")

    request = world.store.state.requests[request_id]
    assert "incident commander" not in request.approver_labels
    with pytest.raises(NotAllowed, match="your own request"):
        world.decide(request_id, "U0ONCALL1")


def test_the_commander_approves_only_where_the_policy_says_so(world: World) -> None:
    request_id = world.request("inference-logs-ro", by="U0ONCALL2")

    with pytest.raises(NotAllowed, match="not an approver"):
        world.decide(request_id, "U0ONCALL1")


# --- The close summary ------------------------------------------------------------------------


def test_the_close_summary_says_which_approvals_were_automatic_and_why(world: World) -> None:
    world.oncall.put_on_call("U0ONCALL2", ML_PRIMARY)
    automatic = world.request()
    world.issue(automatic)
    world.oncall.failure = OnCallUnavailable("PagerDuty did not answer within 3 s")
    ordinary = world.request()
    world.decide(ordinary, "U0LEAD1")
    world.issue(ordinary)

    world.now += timedelta(minutes=30)
    closed = world.close()

    lines = {line.request_id: line for line in closed.summary.requests}
    because = lines[automatic].auto_approved_because
    assert because is not None and because.startswith("on call in ml-primary")
    assert lines[automatic].decisions == []
    assert lines[ordinary].auto_approved_because is None
    assert lines[ordinary].lookups_failed == [
        "ml-primary (PagerDuty schedule P7ML0NC) could not be looked up: PagerDuty did not "
        "answer within 3 s"
    ]
    report = closed.summary.to_markdown()
    assert "- Approved automatically: on call in ml-primary (PagerDuty schedule P7ML0NC)" in report
    assert "- Lookup failed: ml-primary (PagerDuty schedule P7ML0NC)" in report


def test_pagerduty_is_asked_once_per_request_when_it_fails(world: World) -> None:
    policy = oncall_example_policy()
    rule = policy.resource("inference-logs-ro")
    backup = DynamicGroup("ml-secondary", GroupSource.PAGERDUTY_ESCALATION_POLICY, "PEPML02")
    policy = replace(
        policy,
        dynamic_groups={**policy.dynamic_groups, backup.name: backup},
        resources={**policy.resources, rule.name: replace(rule, approver_groups=("ml-secondary",))},
    )
    world.oncall.failure = OnCallUnavailable("PagerDuty did not answer within 3 s")

    found = eligibility.resolve_groups(
        policy=policy,
        rule=policy.resource(rule.name),
        requester_id="U0ONCALL2",
        directory=world.directory,
        oncall=world.oncall,
    )

    assert world.oncall.lookups == 1  # the second group does not wait another 3 s
    assert len(found.notes) == 2 and all("within 3 s" in note for note in found.notes)
    assert found.oncall_error == "PagerDuty did not answer within 3 s"
