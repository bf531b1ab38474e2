"""The close race, many rounds: six approvals in flight on PostgreSQL, close sent 0-120 ms after.

    .venv/bin/python -m tests.bench.close_race_bench [--rounds 20] [--seed 1] [--vault]

By default Vault is a fake broker answering in 20-60 ms, in this process. With `--vault` the
bot's side runs in its own process, built by the composition root as the bot is, with the real
Vault broker against the Vault emulator (in this process), which then tells which credentials
it still holds live.

Prints how many rounds the close won (it succeeded, and every credential issued is revoked and
reported in its summary), and what each lost round left behind.
"""

import argparse
import dataclasses
import multiprocessing
import tempfile
import time
from pathlib import Path

from bot import bootstrap
from bot.domain.grant import Grant
from bot.log_setup import configure_logging
from bot.store import migrate
from tests.close_race import Round, play, play_round
from tests.databases import admin_engine, fresh_postgres_database
from tests.emulators.vault import VaultEmulator, running_vault
from tests.fleet import NOWHERE
from tests.harness import bot_settings
from tests.tools.vault_setup import run_setup_script


def bot_side(
    database_url: str,
    vault_url: str,
    role_id: str,
    secret_id: str,
    rounds: int,
    seed: int,
    results: "multiprocessing.Queue[list[Round]]",
) -> None:
    """In its own process: every round through the bot's own broker and unit of work."""
    configure_logging(level="ERROR")
    settings = bot_settings(
        database_url=database_url,
        vault_addr=vault_url,
        vault_auth="approle",
        vault_role_id=role_id,
        vault_secret_id=secret_id,
    )
    gatehouse = bootstrap.build(settings)
    played = [
        play_round(
            gatehouse.uow,
            gatehouse.broker,
            number,
            seed,
            still_live=lambda _grants: 0,  # asked of the emulator afterwards
            policy=gatehouse.policy,
        )
        for number in range(rounds)
    ]
    results.put(played)
    gatehouse.engine.dispose()


def live_in_vault(vault: VaultEmulator, grants: list[Grant]) -> int:
    """Grants whose token or lease the emulator still holds."""
    live = 0
    for grant in grants:
        token = grant.token_accessor and vault.core.tokens.find_by_accessor(grant.token_accessor)
        lease = grant.lease_id and vault.core.leases.get(grant.lease_id)
        live += bool(token or lease)
    return live


def play_with_vault(url: str, rounds: int, seed: int) -> list[Round]:
    with tempfile.TemporaryDirectory() as folder, running_vault(database_detached=True) as vault:
        setup = run_setup_script(vault, NOWHERE, Path(folder))
        context = multiprocessing.get_context("spawn")
        results: multiprocessing.Queue[list[Round]] = context.Queue()
        worker = context.Process(
            target=bot_side,
            args=(url, vault.url, setup.role_id, setup.secret_id, rounds, seed, results),
        )
        worker.start()
        played = results.get(timeout=600)
        worker.join(timeout=60)
        return [
            dataclasses.replace(one, live_leases=live_in_vault(vault, one.grants)) for one in played
        ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--vault", action="store_true", help="the real broker, Vault emulated")
    args = parser.parse_args()
    admin = admin_engine()
    with fresh_postgres_database(admin) as url:
        migrate.upgrade(url)
        started = time.monotonic()
        if args.vault:
            rounds = play_with_vault(url, args.rounds, args.seed)
        else:
            configure_logging(level="ERROR")
            rounds = play(url, args.rounds, seed=args.seed)
        seconds = time.monotonic() - started
    admin.dispose()
    for number, played in enumerate(rounds):
        if not played.won:
            print(f"round {number}: {played.describe()}")
    issued = sum(len(played.issued) for played in rounds)
    late = sum(played.issued_after_close for played in rounds)
    won = sum(played.won for played in rounds)
    print(
        f"close won {won}/{len(rounds)} rounds in {seconds:.1f} s; "
        f"{issued} credentials issued ({late} after the close committed), "
        f"all revoked and reported: {won == len(rounds)}"
    )


if __name__ == "__main__":
    main()
