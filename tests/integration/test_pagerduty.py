"""The PagerDuty client against the PagerDuty emulator (checked against the PagerDuty contract,
`tests/specs/pagerduty/contract.yaml`), with Slack's user lookups against the Slack emulator:
who is on call, the cache, and every way PagerDuty fails."""

import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from bot.domain.errors import OnCallUnavailable
from bot.domain.rules import DynamicGroup, GroupSource
from integrations import oncall
from integrations.oncall import PagerDutyOnCall
from integrations.slack_web import SlackDirectory, make_web_client
from tests.emulators.pagerduty import PagerDutyEmulator, contract, running_pagerduty
from tests.emulators.slack import SlackEmulator, running_slack

SCHEDULE = DynamicGroup("ml-primary", GroupSource.PAGERDUTY_SCHEDULE, "P7ML0NC")
POLICY = DynamicGroup("ml-escalation", GroupSource.PAGERDUTY_ESCALATION_POLICY, "PEPML01")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Setup:
    slack: SlackEmulator
    pagerduty: PagerDutyEmulator
    clock: FakeClock
    ada: str  # PagerDuty id of the user on call at level 1
    grace: str  # on call at level 2 through the escalation policy only

    def client(self, **kwargs: float) -> PagerDutyOnCall:
        directory = SlackDirectory(
            make_web_client(self.slack.bot_token, base_url=self.slack.api_url), clock=self.clock
        )
        options = {"timeout": 2.0, "cache_seconds": 60.0, **kwargs}
        return PagerDutyOnCall(
            token=self.pagerduty.token,
            directory=directory,
            base_url=self.pagerduty.url,
            clock=self.clock,
            sleep=lambda seconds: None,
            timeout=options["timeout"],
            cache_seconds=options["cache_seconds"],
        )


@pytest.fixture
def setup() -> Iterator[Setup]:
    with running_slack() as slack, running_pagerduty() as pagerduty:
        slack.add_user("U0ONCALL1", "ada", email="ada@example.com")
        slack.add_user("U0ONCALL2", "grace", email="Grace@Example.com")
        slack.add_user("U0LEAD1", "linus", email="linus@example.com")
        slack.add_user("U0NOMAIL", "nomail")
        ada = pagerduty.add_user("Ada Lovelace", "ada@example.com")
        grace = pagerduty.add_user("Grace Hopper", "grace@example.com")
        pagerduty.add_user("Linus", "linus@example.com")  # has an account, is not on call
        pagerduty.add_user("Ada Namesake", "ada.namesake@example.com")  # a near match
        pagerduty.name("P7ML0NC", "ML primary")
        pagerduty.name("PEPML01", "ML escalation")
        pagerduty.put_on_call(ada, escalation_policy="PEPML01", schedule="P7ML0NC", level=1)
        pagerduty.put_on_call(ada, escalation_policy="PEPML01", schedule="P7ML0NC", level=3)
        pagerduty.put_on_call(grace, escalation_policy="PEPML01", level=2)
        yield Setup(slack, pagerduty, FakeClock(), ada, grace)


# --- The emulator is checked against the PagerDuty contract -----------------------------------


def test_the_emulator_refuses_what_the_contract_does_not_allow(setup: Setup) -> None:
    base = setup.pagerduty.url
    good = {"Authorization": f"Token token={setup.pagerduty.token}"}
    unauthorized = httpx.get(f"{base}/oncalls", headers={"Authorization": "Token token=nope"})
    misspelt = httpx.get(f"{base}/oncalls", params={"schedule_ids": "P7ML0NC"}, headers=good)
    bad_include = httpx.get(f"{base}/oncalls", params={"include[]": "teams"}, headers=good)
    bad_limit = httpx.get(f"{base}/users", params={"limit": "ten"}, headers=good)
    bad_since = httpx.get(f"{base}/oncalls", params={"since": "yesterday"}, headers=good)

    assert unauthorized.status_code == 401
    assert (misspelt.status_code, bad_include.status_code) == (400, 400)
    assert (bad_limit.status_code, bad_since.status_code) == (400, 400)
    assert "schedule_ids is not a parameter" in misspelt.json()["error"]["errors"][0]
    operation = contract.operation("GET", "/oncalls")
    for status, answer in ((401, unauthorized), (400, misspelt), (400, bad_include)):
        assert contract.conforms(operation.response_schema(status), answer.json()) == []


def test_the_emulator_answers_in_the_shapes_of_the_contract(setup: Setup) -> None:
    base = setup.pagerduty.url
    good = {"Authorization": f"Token token={setup.pagerduty.token}"}
    plain = httpx.get(f"{base}/oncalls", params=[("schedule_ids[]", "P7ML0NC")], headers=good)
    users = httpx.get(f"{base}/users", params={"query": "ada"}, headers=good)

    schema = contract.operation("GET", "/oncalls").response_schema(200)
    assert contract.conforms(schema, plain.json()) == []
    assert [e["user"]["type"] for e in plain.json()["oncalls"]] == ["user_reference"] * 2
    assert {u["email"] for u in users.json()["users"]} == {
        "ada@example.com",
        "ada.namesake@example.com",
    }
    # a broken shape is caught by the same check the emulator runs on every answer
    broken = {**plain.json(), "more": "no"}
    assert contract.conforms(schema, broken)


# --- Who is on call ---------------------------------------------------------------------------


def test_a_slack_user_on_call_gets_their_lowest_entry(setup: Setup) -> None:
    shift = setup.client().shift_of("U0ONCALL1", SCHEDULE)

    assert shift is not None
    assert (shift.user_id, shift.pagerduty_user_id) == ("U0ONCALL1", setup.ada)
    assert (shift.escalation_policy_id, shift.schedule_id) == ("PEPML01", "P7ML0NC")
    assert shift.escalation_level == 1
    assert shift.start is not None and shift.end is not None and shift.start < shift.end
    sent = setup.pagerduty.calls
    assert [c.path for c in sent] == ["/users", "/oncalls"]
    assert ("query", "ada@example.com") in sent[0].query
    assert ("schedule_ids[]", "P7ML0NC") in sent[1].query
    assert ("include[]", "users") in sent[1].query
    for call in sent:
        assert call.headers["authorization"] == f"Token token={setup.pagerduty.token}"
        assert call.headers["accept"] == "application/vnd.pagerduty+json;version=2"
        assert call.status == 200
    assert setup.slack.calls_to("users.info")[0].args == {"user": "U0ONCALL1"}


def test_people_not_on_call_without_an_account_or_an_email_are_not(setup: Setup) -> None:
    client = setup.client()

    assert client.shift_of("U0LEAD1", SCHEDULE) is None  # in PagerDuty, not on call
    assert client.shift_of("U0NOMAIL", SCHEDULE) is None  # no e-mail in Slack
    assert client.shift_of("U0ONCALL2", SCHEDULE) is None  # on call, not via this schedule
    shift = client.shift_of("U0ONCALL2", POLICY)  # e-mails match whatever their case
    assert shift is not None and shift.escalation_level == 2 and shift.schedule_id is None


def test_everyone_on_call_is_found_in_slack_by_email(setup: Setup) -> None:
    client = setup.client()

    assert client.users_on_call(POLICY) == {"U0ONCALL1", "U0ONCALL2"}
    assert client.users_on_call(SCHEDULE) == {"U0ONCALL1"}
    looked_up = {c.args["email"] for c in setup.slack.calls_to("users.lookupByEmail")}
    assert looked_up == {"ada@example.com", "grace@example.com"}


def test_answers_are_cached_briefly_and_failures_are_not(setup: Setup) -> None:
    client = setup.client(cache_seconds=60)
    client.shift_of("U0ONCALL1", SCHEDULE)
    client.shift_of("U0ONCALL1", SCHEDULE)
    assert len(setup.pagerduty.calls) == 2  # one /users, one /oncalls

    setup.clock.now += 61
    setup.pagerduty.fail_next(400)
    with pytest.raises(OnCallUnavailable, match="refused the lookup"):
        client.shift_of("U0ONCALL1", SCHEDULE)
    assert client.shift_of("U0ONCALL1", SCHEDULE) is not None  # asked again, not the failure
    assert len(setup.pagerduty.calls) == 5


# --- When PagerDuty fails ---------------------------------------------------------------------


def test_pagerduty_down(setup: Setup) -> None:
    client = setup.client()
    setup.pagerduty.stop()

    with pytest.raises(OnCallUnavailable, match=r"could not be reached .* after 3 attempts"):
        client.shift_of("U0ONCALL1", SCHEDULE)


def test_pagerduty_slower_than_the_timeout(setup: Setup) -> None:
    client = setup.client(timeout=0.3)
    setup.pagerduty.answer_slowly(1.5)
    started = time.monotonic()

    with pytest.raises(OnCallUnavailable, match=r"did not answer within 0.3 s"):
        client.shift_of("U0ONCALL1", SCHEDULE)
    assert time.monotonic() - started < 1.2  # a timeout is not retried


def test_pagerduty_refuses_the_key(setup: Setup) -> None:
    client = setup.client()
    setup.pagerduty.revoke_token()

    with pytest.raises(OnCallUnavailable, match=r"refused the API key \(401\)"):
        client.users_on_call(SCHEDULE)
    assert [c.status for c in setup.pagerduty.calls] == [401]  # not retried


@pytest.mark.parametrize(
    "raw",
    [b"<html>502 Bad Gateway", b'{"oncalls": {"user": "PXXXXXX"}}', b'{"oncalls": [{"user": {}}]}'],
    ids=["not-json", "not-a-list", "entry-without-fields"],
)
def test_pagerduty_answers_malformed(setup: Setup, raw: bytes) -> None:
    client = setup.client()
    setup.pagerduty.send_malformed_next(raw=raw)

    with pytest.raises(OnCallUnavailable, match="could not read"):
        client.users_on_call(SCHEDULE)


def test_server_errors_are_retried_then_given_up(setup: Setup) -> None:
    client = setup.client()
    setup.pagerduty.fail_next(503, count=2)
    assert client.users_on_call(SCHEDULE) == {"U0ONCALL1"}
    assert [c.status for c in setup.pagerduty.calls_to("/oncalls")] == [503, 503, 200]

    setup.pagerduty.fail_next(500, count=3)
    with pytest.raises(OnCallUnavailable, match="answered 500 after 3 attempts"):
        client.users_on_call(POLICY)


def test_slack_failing_to_say_who_someone_is_is_a_failed_check(setup: Setup) -> None:
    client = setup.client()
    setup.slack.fail_next("users.info", "ratelimited")

    with pytest.raises(OnCallUnavailable, match="matching people by e-mail failed"):
        client.shift_of("U0ONCALL1", SCHEDULE)


def test_more_entries_than_it_reads_is_a_failed_check_not_a_partial_list(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(oncall, "PAGE_SIZE", 1)
    monkeypatch.setattr(oncall, "MAX_PAGES", 2)  # reads 2 entries; the policy has 3
    with pytest.raises(OnCallUnavailable, match="more than 2 on-call entries"):
        setup.client().users_on_call(POLICY)
    assert setup.client().users_on_call(SCHEDULE) == {"U0ONCALL1"}  # 2 entries: all read
