"""Prometheus metrics, served on /metrics in HTTP mode. Names are what deploy/grafana uses.

Labels stay low-cardinality: resource names, states, Slack methods, coarse Vault paths; never
user, request or lease ids.
"""

from prometheus_client import Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
WAIT_BUCKETS = (5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600)

REQUESTS = Counter(
    "gatehouse_requests_total",
    "Access requests reaching a state, by resource and state.",
    ["resource", "state"],
)
TIME_TO_APPROVAL = Histogram(
    "gatehouse_time_to_approval_seconds",
    "From filing a request to its last needed approval.",
    ["resource"],
    buckets=WAIT_BUCKETS,
)
TIME_TO_CREDENTIAL = Histogram(
    "gatehouse_time_to_credential_seconds",
    "From filing a request to the credential delivered.",
    ["resource"],
    buckets=WAIT_BUCKETS,
)
EXTENSIONS = Counter(
    "gatehouse_extensions_total",
    "Extensions of active access reaching an outcome (applied, denied, failed), by resource.",
    ["resource", "outcome"],
)
BREAK_GLASS = Counter(
    "gatehouse_break_glass_total",
    "Break-glass use and its review, by resource and event (used, reviewed, denied).",
    ["resource", "event"],
)
GROUP_LOOKUP_FAILURES = Counter(
    "gatehouse_group_lookup_failures_total",
    "Dynamic groups not looked up when a request was filed (they counted as empty), by source "
    "(slack_usergroup, pagerduty_schedule, pagerduty_escalation_policy).",
    ["source"],
)
ACTIVE_GRANTS = Gauge("gatehouse_active_grants", "Access currently active (set by each sweep).")
REVOCATIONS = Counter(
    "gatehouse_revocations_total",
    "Revocations by outcome: confirmed by Vault, or failed (retried by the sweep).",
    ["outcome"],
)
SWEEP_DURATION = Histogram(
    "gatehouse_sweep_duration_seconds",
    "How long each periodic job ran.",
    ["job"],
    buckets=LATENCY_BUCKETS,
)
SWEEP_LAG = Gauge(
    "gatehouse_sweep_lag_seconds",
    "How late the most overdue expiry was when the sweep reached it.",
)
SWEEP_ITEMS = Counter("gatehouse_sweep_items_total", "Items the sweeps handled.", ["job"])
SLACK_CALLS = Histogram(
    "gatehouse_slack_call_seconds",
    "Slack Web API call latency.",
    ["method"],
    buckets=LATENCY_BUCKETS,
)
SLACK_ERRORS = Counter(
    "gatehouse_slack_call_errors_total", "Slack Web API calls that failed.", ["method", "error"]
)
VAULT_CALLS = Histogram(
    "gatehouse_vault_call_seconds",
    "Vault call latency, retries included.",
    ["path"],
    buckets=LATENCY_BUCKETS,
)
VAULT_ERRORS = Counter(
    "gatehouse_vault_call_errors_total", "Vault calls that failed.", ["path", "kind"]
)
ACK_SECONDS = Histogram(
    "gatehouse_ack_seconds",
    "Time to acknowledge a Slack request (HTTP mode).",
    buckets=LATENCY_BUCKETS,
)
SLACK_REJECTED = Counter(
    "gatehouse_slack_rejected_total",
    "Requests to /slack/events refused before Bolt, by HTTP status: 401 unsigned, badly signed, "
    "stale or replayed; 413 over the size cap; 400 signed but not a Slack payload.",
    ["status"],
)
VAULT_STATES = ("active", "standby", "sealed", "uninitialized", "unreachable", "error")
VAULT_STATE = Gauge(
    "gatehouse_vault_state",
    "Vault's health as this replica last saw it: 1 for the current state, 0 for the others.",
    ["state"],
)


def set_vault_state(state: str) -> None:
    for known in VAULT_STATES:
        VAULT_STATE.labels(known).set(1 if known == state else 0)


AUDIT_EXPORT_BACKLOG = Gauge(
    "gatehouse_audit_export_backlog",
    "Audit records (events and checkpoints) a sink has not received yet.",
    ["sink"],
)
AUDIT_EXPORT_OLDEST_AGE = Gauge(
    "gatehouse_audit_export_oldest_undelivered_seconds",
    "Age of the oldest audit record a sink has not received (0 when it has everything).",
    ["sink"],
)
AUDIT_EXPORT_DELIVERED = Counter(
    "gatehouse_audit_export_delivered_total", "Audit records a sink accepted.", ["sink"]
)
AUDIT_EXPORT_FAILURES = Counter(
    "gatehouse_audit_export_failures_total",
    "Failed deliveries to a sink: unavailable (retried with backoff) or misconfigured (retried "
    "slowly until an operator fixes the settings).",
    ["sink", "kind"],
)


def vault_path_label(path: str) -> str:
    """A coarse, bounded label: the first three segments, no lease or token ids."""
    return "/".join(path.strip("/").split("/")[:3]) or "other"
