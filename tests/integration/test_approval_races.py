"""Approval races across three processes on PostgreSQL: three approvers at once, every click
delivered 1-4 times; exactly one credential per request, never two.

The full-size run (10,000 races) is `python -m tests.bench.race_bench`.
"""

import pytest

from bot.store import migrate
from tests.databases import many_connections
from tests.races import file_requests, race, recorded_outcomes

pytestmark = [pytest.mark.postgres, many_connections(lane=2)]
RACES = 90


def test_three_processes_racing_issue_exactly_one_credential_per_request(
    postgres_url: str,
) -> None:
    migrate.upgrade(postgres_url)
    requests = file_requests(postgres_url, RACES)
    result = race(postgres_url, requests, processes=3, batch=20)
    print(result.report())
    assert result.double_issued == []
    assert set(result.issued) == set(requests)
    assert result.outcomes["same click again"] > 0 and result.outcomes["already approved"] > 0
    assert recorded_outcomes(postgres_url, requests) == {"active=True grants=1 approvals=2": RACES}
