"""A grant another transaction holds is still live: reconcile and the metrics must count it."""

import pytest
from sqlalchemy import Engine, text

from bot.domain.access import Verdict
from bot.domain.grant import GrantStatus
from bot.services import access, issuing, sweeps
from bot.store import SqlUnitOfWorkFactory
from tests.integration.test_services_on_store import POLICY, T0, clock, open_and_request
from tests.unit.fakes import FakeBroker


@pytest.mark.postgres
def test_a_locked_live_grant_is_still_counted(postgres_engine: Engine) -> None:
    uow = SqlUnitOfWorkFactory(postgres_engine)
    _, request_id = open_and_request(uow)
    access.decide_request(
        uow=uow,
        request_id=request_id,
        approver_id="U0LEAD1",
        verdict=Verdict.APPROVE,
        reason=None,
        now=T0,
    )
    issuing.issue_access(
        uow=uow, policy=POLICY, broker=FakeBroker(), request_id=request_id, clock=clock
    )
    with postgres_engine.connect() as other:
        other.execute(text("SELECT id FROM grants FOR UPDATE"))  # another worker holds it
        with uow() as tx:
            assert tx.grants.list_by_status([GrantStatus.ACTIVE], 10) == []  # work is skipped
            assert tx.grants.count_in([GrantStatus.ACTIVE], resource="inference-logs-ro") == 1
        assert sweeps.count_active(uow=uow) == 1
        other.rollback()
