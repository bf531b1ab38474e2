"""`gatehouse policy explain RESOURCE --user U...` against the Slack and PagerDuty emulators:
the same lookups the bot makes when a request is filed, explained."""

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from bot.cli import app
from tests.emulators.pagerduty import PagerDutyEmulator, running_pagerduty
from tests.emulators.slack import SlackEmulator, running_slack

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "deploy" / "policy.oncall.example.yaml"
SCOPES = yaml.safe_load((REPO / "deploy" / "slack-app-manifest.yaml").read_text())["oauth_config"][
    "scopes"
]["bot"]


@dataclass
class Lookups:
    slack: SlackEmulator
    pagerduty: PagerDutyEmulator


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Lookups]:
    with running_slack(scopes=SCOPES) as slack, running_pagerduty() as pagerduty:
        slack.add_user("U0ONCALL1", "ada", email="ada@example.com")
        slack.add_user("U0ONCALL2", "grace", email="grace@example.com")
        slack.add_usergroup("platform-leads", ["U0PLAT1", "U0PLAT2"], group_id="S0PLATLEAD")
        ada = pagerduty.add_user("Ada Lovelace", "ada@example.com")
        pagerduty.add_user("Grace Hopper", "grace@example.com")
        pagerduty.put_on_call(ada, escalation_policy="PEPML01", schedule="P7ML0NC")
        monkeypatch.chdir(tmp_path)  # no .env of the working tree
        for name, value in {
            "SLACK_BOT_TOKEN": slack.bot_token,
            "GATEHOUSE_SLACK_API_URL": slack.api_url,
            "GATEHOUSE_PAGERDUTY_TOKEN": pagerduty.token,
            "GATEHOUSE_PAGERDUTY_API_URL": pagerduty.url,
            "GATEHOUSE_PAGERDUTY_TIMEOUT": "1",
            "GATEHOUSE_POLICY": str(EXAMPLE),
        }.items():
            monkeypatch.setenv(name, value)
        yield Lookups(slack, pagerduty)


def explain(resource: str, user: str) -> str:
    result = CliRunner().invoke(app, ["policy", "explain", resource, "--user", user])
    assert result.exit_code == 0, result.output
    return result.stdout


@pytest.mark.usefixtures("lookups")
def test_a_requester_on_call_would_be_auto_approved() -> None:
    text = explain("inference-logs-ro", "U0ONCALL1")

    assert "U0ONCALL1 and inference-logs-ro, now:" in text
    assert "May request:        yes: member of ml-oncall" in text
    assert (
        "Auto-approved:      yes: on call in ml-primary (PagerDuty schedule P7ML0NC): "
        "escalation policy PEPML01 level 1 via schedule P7ML0NC, until " in text
    )


@pytest.mark.usefixtures("lookups")
def test_a_requester_not_on_call_would_wait_for_approvers() -> None:
    text = explain("inference-logs-ro", "U0ONCALL2")

    assert "Auto-approved:      no: not on call in ml-primary (PagerDuty schedule P7ML0NC)" in text
    assert "Who could approve:  ml-leads (U0LEAD1, U0LEAD2, U0LEAD3)" in text


@pytest.mark.usefixtures("lookups")
def test_slack_user_group_members_are_listed() -> None:
    text = explain("serving-cluster-exec", "U0ONCALL2")

    assert "platform-leads (U0PLAT1, U0PLAT2)" in text
    assert "Approvals required: 1 of 5 people now plus the incident's commander" in text


def test_pagerduty_down_is_explained_not_fatal(lookups: Lookups) -> None:
    lookups.pagerduty.stop()

    text = explain("inference-logs-ro", "U0ONCALL1")

    assert (
        "Auto-approved:      no: on-call could not be checked: PagerDuty could not be reached"
        in text
    )
    assert "Lookups that failed (those groups count as empty):" in text
