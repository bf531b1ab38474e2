"""The replay table: a key is accepted once across engines (replicas), old keys are swept."""

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, func, select

from bot.store import create_engine_for
from bot.store.replays import KEEP_FOR, SWEEP_EVERY, SqlSeenRequests
from bot.store.tables import slack_request_keys

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def stored(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(select(func.count()).select_from(slack_request_keys)).scalar_one()
        )


def test_a_key_is_new_once(engine: Engine) -> None:
    seen = SqlSeenRequests(engine)
    assert seen.first_sighting("signature:v0=abc", NOW) is True
    assert seen.first_sighting("signature:v0=abc", NOW) is False
    assert seen.first_sighting("event:Ev0ABC", NOW) is True
    assert stored(engine) == 2


def test_two_engines_racing_on_one_key_accept_it_once(engine: Engine, database_url: str) -> None:
    """Two replicas, each with its own engine, offered the same key at the same moment."""
    other = create_engine_for(database_url)
    try:
        replicas = [SqlSeenRequests(engine), SqlSeenRequests(other)]
        for round_ in range(10):
            key = f"signature:v0={round_}"
            with ThreadPoolExecutor(2) as pool:
                offers = [pool.submit(seen.first_sighting, key, NOW) for seen in replicas]
                answers = [offer.result() for offer in offers]
            assert sorted(answers) == [False, True]
    finally:
        other.dispose()


def test_keys_older_than_the_window_are_swept_and_may_come_again(engine: Engine) -> None:
    seen = SqlSeenRequests(engine)
    assert seen.first_sighting("signature:old", NOW)
    later = NOW + KEEP_FOR + SWEEP_EVERY + timedelta(seconds=1)
    assert seen.first_sighting("signature:new", later)
    assert stored(engine) == 1  # the old key went with that insert's sweep
    assert seen.first_sighting("signature:old", later) is True
