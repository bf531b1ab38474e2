"""Read `policy.yaml`, report everything wrong with it, and build the domain's AccessPolicy.

Validation runs in two passes so one run reports every problem, not just the first: pydantic
checks the shape and types of the whole document (`models`, worded by `messages`), then
cross-field checks (`checks`) run on the raw document. `load` ties the passes together, `build`
makes the domain objects and `explain` describes a resource.
"""

from bot.policy.explain import explain_resource, resource_facts
from bot.policy.load import check_policy, load_policy, parse_policy
from bot.policy.models import SUPPORTED_VERSION, policy_json_schema
from bot.policy.problems import PolicyError, PolicyProblem

__all__ = [
    "SUPPORTED_VERSION",
    "PolicyError",
    "PolicyProblem",
    "check_policy",
    "explain_resource",
    "load_policy",
    "parse_policy",
    "policy_json_schema",
    "resource_facts",
]
