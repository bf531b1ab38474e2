"""Slack answering 429 (Retry-After) or 500 to every Web API call for a while, during an
/incident open, a request and an approval, and again during the close, on two replicas: once
it answers again the new incident has its channel and pinned card, every request card appears,
each /request-access filed one request, each person was told once, the credential reached its
requester once, and the close summary was posted once before the channel was archived.

The same scenario with two-minute outages: `python -m tests.slack_outage --outage-seconds 120`.
"""

from pathlib import Path

import pytest
from sqlalchemy import Engine

from tests.databases import fresh_postgres_database, many_connections
from tests.fleet import running_fleet
from tests.slack_outage import run_outage

pytestmark = [pytest.mark.postgres, many_connections(lane=1)]
OUTAGE_SECONDS = 10  # longer than the Slack client waits out by itself: the late paths run


@pytest.mark.parametrize("status", [429, 500])
def test_nothing_is_lost_or_said_twice_across_a_slack_outage(
    postgres_admin: Engine, tmp_path: Path, status: int
) -> None:
    with (
        fresh_postgres_database(postgres_admin) as url,  # each run counts the incidents it sees
        running_fleet(url, tmp_path, GATEHOUSE_SWEEP_INTERVAL="2") as fleet,
    ):
        replicas = fleet.start(2)
        run = run_outage(fleet, replicas, outage_seconds=OUTAGE_SECONDS, status=status)
        print(run.report())
        assert run.refused_calls > 0
        assert run.failures == [], run.report()
