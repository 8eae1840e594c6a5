"""The scenario file: what a simulation runs (pools, identities, agents, failures, checks).

A scenario is YAML decoded strictly into the structs below: an unknown key, a
wrong type or an impossible value (a negative limit, an agent on an identity
nobody declared) is a :class:`ScenarioError` naming the file and the key.  The
format is documented in ``docs/simulator.md``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import yaml

from ratelord.engine.policy import CompiledPolicy, PolicyError, default_policy, load_policy_text
from ratelord.schema import Urgency
from ratelord.service.assembly import EngineSettings
from ratelord.sim.invariants import InvariantError, parse_check

Positive = Annotated[float, msgspec.Meta(gt=0)]
NonNegative = Annotated[float, msgspec.Meta(ge=0)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=100, pattern=r"^[^\s]+$")]

#: 2026-01-01T00:00:00Z, the same default as ManualClock: results never depend on the wall clock.
DEFAULT_START = 1_767_225_600.0


class ScenarioError(Exception):
    """A scenario that cannot be run; the message names the file and what is wrong."""


class _Strict(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """Strict, immutable settings.  Subclasses repeat ``kw_only``/``frozen``: msgspec applies
    ``kw_only`` to a class's own fields only, and type checkers want ``frozen`` stated."""


# --------------------------------------------------------------------------- agents


class Greedy(_Strict, tag_field="kind", tag="greedy", kw_only=True, frozen=True):
    """One piece of work at a time, the next one ``think_seconds`` after the last ended."""

    think_seconds: Positive = 1.0


class Poisson(_Strict, tag_field="kind", tag="poisson", kw_only=True, frozen=True):
    """Work arrives at random, ``rate_per_second`` on average, whatever happened before."""

    rate_per_second: Positive


class Periodic(_Strict, tag_field="kind", tag="periodic", kw_only=True, frozen=True):
    """Work every ``every_seconds``, each arrival shifted by up to ``jitter_seconds``."""

    every_seconds: Positive
    jitter_seconds: NonNegative = 0.0


class Bursty(_Strict, tag_field="kind", tag="bursty", kw_only=True, frozen=True):
    """``burst`` pieces of work ``spacing_seconds`` apart, every ``every_seconds``."""

    every_seconds: Positive
    burst: Annotated[int, msgspec.Meta(ge=1)]
    spacing_seconds: NonNegative = 0.0


Behaviour = Greedy | Poisson | Periodic | Bursty


class Constant(_Strict, tag_field="kind", tag="constant", kw_only=True, frozen=True):
    value: Positive = 1.0


class Uniform(_Strict, tag_field="kind", tag="uniform", kw_only=True, frozen=True):
    min: Positive
    max: Positive


class Choice(_Strict, tag_field="kind", tag="choice", kw_only=True, frozen=True):
    values: Annotated[list[Positive], msgspec.Meta(min_length=1)]
    weights: list[Positive] | None = None


CostModel = Constant | Uniform | Choice


Factor = Annotated[float, msgspec.Meta(gt=0, le=1000)]


class Spread(_Strict, kw_only=True, frozen=True):
    """A multiplier drawn uniformly from [min, max] (not rounded)."""

    min: Factor
    max: Factor


class AgentGroup(_Strict, kw_only=True, frozen=True):
    """``count`` agents that behave alike; agent ids are ``<name>-01``, ``<name>-02``..."""

    name: Name
    count: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 1
    #: One identity for all, or several: agent i uses identities[i % len].
    identities: Annotated[list[Name], msgspec.Meta(min_length=1)]
    #: The pool each call spends from; or ``workload``, a key of the scenario's
    #: ``workloads`` whose every resource each call spends (then ``cost`` scales them).
    resource: Name | None = None
    workload: Name | None = None
    behaviour: Behaviour
    cost: CostModel = Constant()
    urgency: Urgency = "normal"
    #: False: the agent never asks ratelord (a saboteur, a legacy script) under any strategy.
    honest: bool = True
    #: What the agent does with a denial: try the same work later, or give it up.
    on_deny: Literal["retry", "drop"] = "retry"
    retry_after_seconds: Positive = 30.0
    #: Phases (by name) in which the agent generates work; empty means always.
    phases: list[Name] = []
    #: Arrivals are spread over [0, start_spread_seconds) so they need not all wake at once.
    start_spread_seconds: NonNegative = 0.0
    #: What a call really costs, as a multiple of what the agent asked for (the estimate);
    #: the agent reports the actual cost afterwards.  Default: exactly the estimate.
    actual_cost_factor: Spread | None = None
    #: Seconds a call takes; the provider counts it when it starts.
    latency_seconds: NonNegative = 0.0
    #: Work not done this many seconds after it arrived counts as not served.
    deadline_seconds: Positive | None = None
    #: Which responses' rate-limit headers the agent reports to ratelord: only a 429's
    #: (the default), or every response's, as the SDK transport does (``always``).
    reports_headers: Literal["on-429", "always"] = "on-429"


# --------------------------------------------------------------------------- world


class LimitChange(_Strict, kw_only=True, frozen=True):
    """From ``at`` seconds into the run, the pool's limit is ``limit``."""

    at: NonNegative
    limit: Positive


class SimPool(_Strict, kw_only=True, frozen=True):
    """One pool of the simulated provider (the mock provider's fields, and more)."""

    limit: Positive
    window_seconds: Positive = 3600.0
    remaining: NonNegative | None = None  # start partly spent; default: full
    burn_per_second: NonNegative = 0.0  # steady consumption behind ratelord's back
    unit: str = "requests"
    #: Seconds from the run's start to the first reset; default: a whole window.
    first_reset_seconds: Positive | None = None
    #: Resets happen this much after (positive) or before (negative) the announced time...
    reset_shift_seconds: float = 0.0
    #: ... and each one up to this much earlier or later at random.
    reset_jitter_seconds: NonNegative = 0.0
    limits: list[LimitChange] = []


class SimPrincipal(_Strict, kw_only=True, frozen=True):
    pools: dict[Name, SimPool]


class Restart(_Strict, kw_only=True, frozen=True):
    """The daemon restarts ``at`` seconds into the run and replays its event log."""

    at: NonNegative


class Identity(_Strict, kw_only=True, frozen=True):
    id: Name
    principal: Name


class Phase(_Strict, kw_only=True, frozen=True):
    name: Name
    start: NonNegative
    end: Positive


class Failure(_Strict, kw_only=True, frozen=True):
    """A provider outage: polls (and optionally agents' calls) fail between start and end."""

    start: NonNegative
    end: Positive
    kind: Literal["server", "timeout", "network", "rate_limited"] = "server"
    #: Principals affected; empty means all.
    principals: list[Name] = []
    calls_fail: bool = True


class External(_Strict, kw_only=True, frozen=True):
    """Consumption that bypasses ratelord: ``amount`` every ``every_seconds`` in [start, end)."""

    principal: Name
    resource: Name
    amount: Positive
    every_seconds: Positive
    start: NonNegative = 0.0
    end: Positive | None = None


class TokenBucket(_Strict, kw_only=True, frozen=True):
    """The token-bucket baseline's burst: this many seconds' worth of the static rate."""

    burst_seconds: NonNegative = 60.0


class Scenario(_Strict, kw_only=True, frozen=True):
    name: Name
    description: str = ""
    seed: int = 0
    duration_seconds: Positive
    start: float = DEFAULT_START
    poll_interval_seconds: Positive = 5.0
    #: principal → resource → pool (the mock provider's format).
    pools: dict[Name, SimPrincipal]
    identities: Annotated[list[Identity], msgspec.Meta(min_length=1)]
    agents: Annotated[list[AgentGroup], msgspec.Meta(min_length=1)]
    workloads: dict[str, dict[str, float]] = {}
    #: Policy YAML text; ``policy_file`` names a file (relative to the scenario) instead.
    policy: str | None = None
    policy_file: str | None = None
    engine: EngineSettings = EngineSettings()
    phases: list[Phase] = []
    failures: list[Failure] = []
    external: list[External] = []
    token_bucket: TokenBucket = TokenBucket()
    restarts: list[Restart] = []
    invariants: list[str] = []
    #: Where the file lives, for relative paths; set by the loader, not by the file.
    base_dir: str = "."

    def charges(self, group: AgentGroup, cost: float) -> dict[str, float]:
        """Resource → units one call of ``group`` spends, for an estimate of ``cost``."""
        if group.workload is not None:
            return {r: c * cost for r, c in self.workloads[group.workload].items()}
        assert group.resource is not None
        return {group.resource: cost}

    def compiled_policy(self) -> CompiledPolicy:
        if self.policy is not None and self.policy_file is not None:
            raise ScenarioError(f"{self.name}: give either 'policy' or 'policy_file', not both")
        try:
            if self.policy_file is not None:
                path = Path(self.base_dir) / self.policy_file
                return load_policy_text(path.read_text(encoding="utf-8"), str(path))
            if self.policy is not None:
                return load_policy_text(self.policy, f"{self.name}: policy")
        except (PolicyError, OSError) as exc:
            raise ScenarioError(f"{self.name}: policy rejected: {exc}") from None
        return default_policy()

    def principal_of(self, identity_id: str) -> str:
        return next(i.principal for i in self.identities if i.id == identity_id)


def parse_scenario(text: str, source: str = "<scenario>", base_dir: str = ".") -> Scenario:
    """Decode and check scenario YAML; raises :class:`ScenarioError`."""
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ScenarioError(f"{source}: expected a mapping with name, pools, identities, agents")
    return scenario_from_data(data, source, base_dir)


def scenario_from_data(data: dict[str, Any], source: str, base_dir: str = ".") -> Scenario:
    """Check decoded scenario data (a YAML mapping); raises :class:`ScenarioError`."""
    try:
        scenario = msgspec.convert({**data, "base_dir": base_dir}, Scenario)
    except msgspec.ValidationError as exc:
        raise ScenarioError(f"{source}: {exc}") from None
    _check(scenario, source)
    return scenario


def load_scenario(path: str | Path) -> Scenario:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"{path}: cannot read the scenario: {exc.strerror}") from None
    return parse_scenario(text, str(path), str(path.parent))


def _check(scenario: Scenario, source: str) -> None:
    """Cross-references msgspec cannot check: every name used is declared."""
    identities = {i.id for i in scenario.identities}
    phases = {p.name for p in scenario.phases}
    problems: list[str] = []
    for identity in scenario.identities:
        if identity.principal not in scenario.pools:
            problems.append(
                f"identity {identity.id!r}: principal {identity.principal!r} has no pools"
            )
    for group in scenario.agents:
        for identity_id in group.identities:
            if identity_id not in identities:
                problems.append(f"agents {group.name!r}: unknown identity {identity_id!r}")
        for phase in group.phases:
            if phase not in phases:
                problems.append(f"agents {group.name!r}: unknown phase {phase!r}")
        if (group.resource is None) == (group.workload is None):
            problems.append(f"agents {group.name!r}: give either 'resource' or 'workload'")
        elif group.workload is not None and group.workload not in scenario.workloads:
            problems.append(f"agents {group.name!r}: unknown workload {group.workload!r}")
        for identity_id in sorted(set(group.identities) & identities):
            spec = scenario.pools.get(scenario.principal_of(identity_id))
            if (
                spec is not None
                and group.resource is not None
                and group.resource not in spec.pools
                and not scenario.workloads
            ):
                problems.append(
                    f"agents {group.name!r}: principal of {identity_id!r} has no pool "
                    f"{group.resource!r}"
                )
        spread = group.actual_cost_factor
        if spread is not None and spread.min > spread.max:
            problems.append(f"agents {group.name!r}: actual_cost_factor min is above max")
        if isinstance(group.cost, Uniform) and group.cost.min > group.cost.max:
            problems.append(f"agents {group.name!r}: cost min is above max")
        if (
            isinstance(group.cost, Choice)
            and group.cost.weights is not None
            and len(group.cost.weights) != len(group.cost.values)
        ):
            problems.append(f"agents {group.name!r}: cost weights and values differ in length")
    names = [g.name for g in scenario.agents]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"agents: the name {name!r} is used twice")
    for item in scenario.external:
        if item.principal not in scenario.pools:
            problems.append(f"external: unknown principal {item.principal!r}")
    for failure in scenario.failures:
        unknown = [p for p in failure.principals if p not in scenario.pools]
        problems += [f"failures: unknown principal {p!r}" for p in unknown]
    for text in scenario.invariants:
        try:
            parse_check(text)
        except InvariantError as exc:
            problems.append(str(exc))
    if problems:
        raise ScenarioError(f"{source}: " + "; ".join(problems))
