"""The transactions bench measures one click on SQLite and its numbers hold together, so the
bench keeps working as the bot changes (no timing, no targets asserted)."""

from pathlib import Path

from tests.bench.transactions_bench import VAULT_FLOOR, measure_clicks


def test_one_click_is_measured_and_the_counts_agree(tmp_path: Path) -> None:
    (cost,) = measure_clicks(f"sqlite:///{tmp_path / 'bench.db'}", 1, tmp_path)

    assert cost.transactions > 0 and cost.commits > 0
    assert cost.commits + cost.rollbacks == cost.transactions  # every one ended
    assert sum(cost.transaction_sites.values()) == cost.transactions
    assert cost.claim_transactions == 0 and cost.claim_statements == 0  # claims live in-process
    assert cost.claims["issue"] >= 1
    assert cost.vault_total >= VAULT_FLOOR
    assert cost.vault_requests["database/creds/inference-logs-ro"] == 1  # one credential
    assert cost.slack_calls["chat.postEphemeral"] >= 1  # delivered
    assert all(count > 0 for count in cost.slack_calls.values())
