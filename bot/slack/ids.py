"""Every action id, callback id and block id the app uses, in one place."""

APPROVE = "gatehouse.approve"
DENY = "gatehouse.deny"
DENY_REASON_VIEW = "gatehouse.deny_reason"
DENY_REASON_BLOCK = "deny_reason"
DENY_REASON_INPUT = "reason"

OPEN_INCIDENT_VIEW = "gatehouse.open_incident"
TITLE_BLOCK = "title"
TITLE_INPUT = "title"
SEVERITY_BLOCK = "severity"
SEVERITY_INPUT = "severity"

REQUEST_ACCESS_VIEW = "gatehouse.request_access"
RESOURCE_BLOCK = "resource"
RESOURCE_INPUT = "resource"
DURATION_BLOCK = "duration"
DURATION_INPUT = "duration"
REASON_BLOCK = "reason"
REASON_INPUT = "reason"
BREAK_GLASS_BLOCK = "break_glass"
BREAK_GLASS_INPUT = "break_glass"

REVOKE = "gatehouse.revoke"  # the requester's Revoke button on App Home: ends their access now
EXTEND = "gatehouse.extend"  # the requester's Extend button: opens the extend form
EXTEND_VIEW = "gatehouse.extend_form"
EXTEND_DURATION_BLOCK = "extend_duration"
EXTEND_DURATION_INPUT = "duration"
EXTEND_REASON_BLOCK = "extend_reason"
EXTEND_REASON_INPUT = "reason"
EXTEND_APPROVE = "gatehouse.extend_approve"
EXTEND_DENY = "gatehouse.extend_deny"
EXTEND_DENY_VIEW = "gatehouse.extend_deny_reason"

# The incident card's buttons (their value is the incident id) and the forms they open.
INCIDENT_REQUEST = "gatehouse.incident_request"  # opens the request form
INCIDENT_HAND_OFF = "gatehouse.incident_hand_off"
INCIDENT_CLOSE = "gatehouse.incident_close"
HAND_OFF_VIEW = "gatehouse.hand_off"
HAND_OFF_BLOCK = "commander"
HAND_OFF_INPUT = "commander"
CLOSE_VIEW = "gatehouse.close"
RESOLUTION_BLOCK = "resolution"
RESOLUTION_INPUT = "resolution"
