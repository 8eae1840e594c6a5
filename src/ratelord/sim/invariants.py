"""Invariants: checks a scenario states about its own report.

One check per string, ``METRIC[SELECTOR] OP NUMBER``::

    honest_429s == 0
    utilisation_min >= 0.9                 # every pool, every reset in the run
    utilisation_min[mock:requests:acct-a] >= 0.9
    high_urgency_success >= 0.99
    denials[urgent] == 0                   # any Counts field, per agent group
    wait_p99_seconds[urgent] <= 5

Without a selector a Counts field reads the overall totals.  A metric with no
value (no high-urgency work, no reset reached) fails its check: an invariant
that cannot be shown to hold does not hold.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass

from ratelord.sim.report import Counts, Report, Verdict

_CHECK = re.compile(
    r"^\s*(?P<metric>[a-z_0-9]+)(?:\[(?P<selector>[^\]\s]+)\])?\s*"
    r"(?P<op><=|>=|==|!=|<|>)\s*(?P<value>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$"
)
_OPS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
}
_REPORT_METRICS = ("honest_429s", "utilisation_min", "high_urgency_success")
_COUNT_METRICS = tuple(
    f for f in Counts.__struct_fields__ if f not in ("name", "honest", "urgency")
)
METRICS = _REPORT_METRICS + _COUNT_METRICS


class InvariantError(ValueError):
    """A check that cannot be parsed."""


@dataclass(frozen=True, slots=True)
class Check:
    text: str
    metric: str
    selector: str | None
    op: str
    value: float


def parse_check(text: str) -> Check:
    match = _CHECK.match(text)
    if match is None:
        raise InvariantError(
            f"invariant {text!r}: expected 'METRIC[SELECTOR] OP NUMBER', e.g. 'honest_429s == 0'"
        )
    metric = match["metric"]
    if metric not in METRICS:
        raise InvariantError(
            f"invariant {text!r}: unknown metric {metric!r}; known: {', '.join(METRICS)}"
        )
    if match["selector"] and metric in ("honest_429s", "high_urgency_success"):
        raise InvariantError(f"invariant {text!r}: {metric} takes no [selector]")
    return Check(text.strip(), metric, match["selector"], match["op"], float(match["value"]))


def measure(check: Check, report: Report) -> float | None:
    """The value the check compares, or None when the report has none."""
    if check.metric == "honest_429s":
        return float(report.honest_429s)
    if check.metric == "high_urgency_success":
        return report.high_urgency.success_rate
    if check.metric == "utilisation_min":
        values = [
            p.min_utilisation
            for p in report.pools
            if p.min_utilisation is not None
            and (check.selector is None or p.pool_id == check.selector)
        ]
        return min(values) if values else None
    if check.selector is None:
        counts = report.overall
    else:
        found = [g for g in report.groups if g.name == check.selector]
        if not found:
            return None
        counts = found[0]
    return float(getattr(counts, check.metric))


def evaluate(checks: list[str], report: Report) -> list[Verdict]:
    verdicts = []
    for text in checks:
        check = parse_check(text)
        value = measure(check, report)
        passed = value is not None and _OPS[check.op](value, check.value)
        verdicts.append(Verdict(check=check.text, value=value, passed=passed))
    return verdicts
