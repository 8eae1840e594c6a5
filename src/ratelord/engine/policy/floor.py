"""The physical floor: a rule every policy has, evaluated before all others.

No policy can approve spending more than a pool holds: when the intent costs
more than the pool's remaining budget, it is deferred until the reset.
"""

from __future__ import annotations

from .compiled import CompiledRule
from .expression import compile_condition
from .model import Action, Kind
from .target import GLOBAL, parse_target
from .template import parse_template

FLOOR_POLICY_ID = "builtin"
FLOOR_RULE_NAME = "physical-floor"
#: Above any priority a policy file is likely to use, so that among rules that
#: also defer, the floor's reason (the plainest one) is the one shown.
FLOOR_PRIORITY = 1000
FLOOR_DESCRIPTION = "an intent costing more than the pool's remaining budget waits for the reset"
FLOOR_REASON = (
    "cost {intent.cost} exceeds the {pool.remaining} remaining in pool {pool.id} until its reset"
)

PHYSICAL_FLOOR_RULE = CompiledRule(
    policy_id=FLOOR_POLICY_ID,
    name=FLOOR_RULE_NAME,
    kind=Kind.HARD,
    action=Action.DEFER,
    priority=FLOOR_PRIORITY,
    condition=compile_condition("pool.remaining < intent.cost"),
    reason=parse_template(FLOOR_REASON, prefix=f"rule {FLOOR_POLICY_ID}/{FLOOR_RULE_NAME}: "),
    target=parse_target(GLOBAL),
    order=-1,
    reason_source=FLOOR_REASON,
    description=FLOOR_DESCRIPTION,
)

FLOOR_POLICY_HEADER = {
    "id": FLOOR_POLICY_ID,
    "target": GLOBAL,
    "kind": str(Kind.HARD),
    "description": "built in, always first",
}
