"""Engine assembly in one place: the daemon, the simulator and the tests build it here."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Annotated

import msgspec

from ratelord.engine.budgets import Budget, PriceTable
from ratelord.engine.core import Engine, EngineConfig
from ratelord.engine.events import IdFactory
from ratelord.engine.policy import CompiledPolicy
from ratelord.engine.state import State


class EngineSettings(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """The engine's tunables as written in a config file or a scenario."""

    #: drift threshold as a fraction of the pool's limit (SPEC §4: 5 %)
    drift_threshold: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.05
    #: an observation older than this makes a forecast stale
    stale_after_seconds: Annotated[float, msgspec.Meta(gt=0)] = 300.0
    #: consecutive auth failures after which an identity is quarantined (0 = never)
    quarantine_after_auth_failures: Annotated[int, msgspec.Meta(ge=0)] = 3


def build_engine(
    settings: EngineSettings,
    policy: CompiledPolicy,
    *,
    workloads: Mapping[str, dict[str, float]] | None = None,
    default_windows: Mapping[str, Callable[[str], float | None]] | None = None,
    ids: IdFactory | None = None,
    state: State | None = None,
    budgets: Sequence[Budget] = (),
    prices: PriceTable | None = None,
) -> Engine:
    """An engine with every setting carried over (none silently dropped)."""
    config = EngineConfig(
        workloads=dict(workloads or {}),
        drift_threshold=settings.drift_threshold,
        stale_after_seconds=settings.stale_after_seconds,
        quarantine_after_auth_failures=settings.quarantine_after_auth_failures,
        budgets=tuple(budgets),
        prices=prices,
    )
    return Engine(config, policy, ids=ids, state=state, default_windows=default_windows)


def engine_over(
    engine: Engine,
    state: State,
    *,
    policy: CompiledPolicy | None = None,
    ids: IdFactory | None = None,
) -> Engine:
    """A private engine set up as ``engine`` (its settings, providers' windows and, unless
    another is given, policy) over ``state``: the web UI's state at an instant and its
    what-if replays read past state through it, never touching the live engine."""
    return Engine(
        engine.config,
        policy or engine.policy,
        ids=ids,
        state=state,
        default_windows=engine.default_windows,
    )
