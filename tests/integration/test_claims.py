"""Claims on PostgreSQL: one holder among replicas and threads, and gone with a killed holder."""

import subprocess
import sys
import threading
import time

import pytest
from sqlalchemy import Engine

from bot.store.claims import PostgresClaims

pytestmark = pytest.mark.postgres

HOLD_AND_SLEEP = """
import sys, time
from bot.store import create_engine_for
from bot.store.claims import PostgresClaims
claims = PostgresClaims(create_engine_for(sys.argv[1]))
with claims.hold("issue:R-CRASHED") as mine:
    print("held" if mine else "refused", flush=True)
    time.sleep(60)
"""


def test_one_holder_among_replicas_and_threads(postgres_engine: Engine) -> None:
    replica, other_replica = PostgresClaims(postgres_engine), PostgresClaims(postgres_engine)
    with replica.hold("revoke:G-1") as mine:
        assert mine
        with other_replica.hold("revoke:G-1") as theirs, replica.hold("revoke:G-1") as again:
            assert not theirs and not again
        with other_replica.hold("revoke:G-2") as unrelated:
            assert unrelated
    with other_replica.hold("revoke:G-1") as free_now:
        assert free_now


def test_a_waiting_worker_gets_the_claim_when_it_is_given_back(postgres_engine: Engine) -> None:
    replica, other_replica = PostgresClaims(postgres_engine), PostgresClaims(postgres_engine)
    order: list[str] = []
    held = threading.Event()

    def first() -> None:
        with replica.hold("incident:INC-1") as mine:
            assert mine
            held.set()
            time.sleep(0.3)
            order.append("first done")

    worker = threading.Thread(target=first)
    worker.start()
    assert held.wait(5)
    with other_replica.hold("incident:INC-1", wait=True) as mine:
        order.append("second in" if mine else "second refused")
    worker.join()
    assert order == ["first done", "second in"]


def test_a_claim_dies_with_a_killed_holder(postgres_engine: Engine) -> None:
    url = postgres_engine.url.render_as_string(hide_password=False)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_AND_SLEEP, url], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        claims = PostgresClaims(postgres_engine)
        with claims.hold("issue:R-CRASHED") as mine:
            assert not mine
        holder.kill()  # SIGKILL: no finally, no unlock
        holder.wait(timeout=10)
        with claims.hold("issue:R-CRASHED", wait=True) as mine:
            assert mine
    finally:
        holder.kill()
        holder.wait(timeout=10)
