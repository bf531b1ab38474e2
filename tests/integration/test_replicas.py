"""Three replicas on one PostgreSQL, grants ending within the same seconds, one replica killed
in the middle: every grant is revoked in Vault, once, and none is missed.

The full-size run (300 grants) is `python -m tests.bench.expiry_bench --replicas 3 --kill`.
"""

from datetime import timedelta
from pathlib import Path

import pytest

from tests.databases import many_connections
from tests.expiries import expired_notices, run_expiries
from tests.fleet import running_fleet

pytestmark = [pytest.mark.postgres, many_connections(lane=2)]
GRANTS = 30
WINDOW = timedelta(seconds=6)


def test_every_grant_is_revoked_once_with_a_replica_killed(
    postgres_url: str, tmp_path: Path
) -> None:
    with running_fleet(postgres_url, tmp_path, GATEHOUSE_SWEEP_INTERVAL="2") as fleet:
        replicas = fleet.start(3)
        run = run_expiries(
            fleet,
            replicas,
            count=GRANTS,
            window=WINDOW,
            lead=timedelta(seconds=12),
            kill=replicas[1],
        )
        print(run.report())
        assert run.killed_at is not None
        assert run.window[0].timestamp() < run.killed_at < run.window[1].timestamp()
        assert run.missed() == []
        assert run.revoked_twice() == []
        notices = expired_notices(fleet, run.channel_id)
        assert len(notices) == GRANTS  # every requester was told, in the card's thread
        assert fleet.orphans() == []
        assert fleet.audit_gaps() == []
