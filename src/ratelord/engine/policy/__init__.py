"""The policy engine: YAML rules with CEL conditions, compiled once, evaluated per pool.

Pure code: no clock and no I/O except reading the policy file in
:func:`load_policy_file`.  See ``docs/policy.md`` for the language.
"""

from . import _cel_shell  # noqa: F401 - first: the modules below import cel
from .compiled import CompiledPolicy, CompiledRule
from .floor import PHYSICAL_FLOOR_RULE
from .loader import default_policy, load_policy_file, load_policy_text
from .model import Action, FiredRule, Kind, PolicyError, PolicyOutcome
from .variables import VARIABLES

__all__ = [
    "PHYSICAL_FLOOR_RULE",
    "VARIABLES",
    "Action",
    "CompiledPolicy",
    "CompiledRule",
    "FiredRule",
    "Kind",
    "PolicyError",
    "PolicyOutcome",
    "default_policy",
    "load_policy_file",
    "load_policy_text",
]
